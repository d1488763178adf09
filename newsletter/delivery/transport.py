"""Transports: hand one finished message to a mail server, a folder or a list in memory.

Every transport has three methods (``open``, ``send``, ``close``) and ``send`` raises only
the delivery errors of ``newsletter.errors``, so the sender never sees smtplib. The errors
of smtplib, socket and ssl are translated in exactly one place, ``delivery_error``:

==========================================================  =========================
failure                                                     raised
==========================================================  =========================
any 4xx reply (greeting, EHLO, AUTH, MAIL, RCPT, DATA)      TransientDeliveryError
5xx to RCPT TO (``SMTPRecipientsRefused``)                  PermanentDeliveryError
5xx to DATA or to the message (``SMTPDataError``)           PermanentDeliveryError
530, or "relay access denied", to RCPT or DATA              DeliveryConfigError
5xx to DATA with status 5.3, 5.5, 5.6 or 5.7 (the message)  DeliveryConfigError
5xx to MAIL FROM (``SMTPSenderRefused``)                    DeliveryConfigError
5xx to AUTH (``SMTPAuthenticationError``)                   DeliveryConfigError
5xx to EHLO/HELO, to STARTTLS, or as the greeting           DeliveryConfigError
STARTTLS or AUTH not offered (``SMTPNotSupportedError``)    DeliveryConfigError
certificate not trusted (``ssl.SSLCertVerificationError``)  DeliveryConfigError
any other TLS failure (``ssl.SSLError``)                    TransientDeliveryError
disconnect, refused, reset, timeout, DNS (``OSError``)      TransientDeliveryError
any other ``SMTPException``, an unreadable reply            TransientDeliveryError
no 4xx/5xx final reply once the message data was sent       UncertainDeliveryError
==========================================================  =========================

When the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one write
and their three replies are read in order before the first refusal is raised: each
reply maps as in the table, and the connection is left ready for RSET.

A failure caused by the timeout (no greeting, no reply to a command) is marked
``timed_out`` on whichever error it becomes, so the sender can tell a server that has
stopped answering from one that refuses.

A 5xx that is about our own setup (login, sender, TLS) would fail every recipient alike:
``DeliveryConfigError`` is transient (never a bounce, so nobody is suppressed for it) and
a ``ConfigError`` (so the campaign can stop). Only RCPT and DATA refusals blame the
recipient, and not even those when they say the relay will not relay for us or wants a
login first, or, for DATA, when the enhanced status (RFC 3463) refuses the message itself
(too big, content, spam, DMARC) rather than the mailbox: with one bounce enough to
suppress an address, such a reply counted as a bounce would suppress every recipient of
the campaign for good. "Once the data was sent" means the payload and its final dot left this process
and no final reply came (timeout or disconnect): the server may have queued the message
(RFC 1047), so it must be neither retried at once nor marked failed.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import secrets
import smtplib
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from newsletter.errors import (
    ConfigError,
    DeliveryConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from newsletter.settings import Secret, Settings


class WireMessage(bytes):
    """A message that is already SMTP DATA text, all but the final dot.

    Whoever makes one promises: every line ends in CRLF (no bare CR or LF), the last line
    too, and no line starts with ``.``. ``MessageFactory.build`` returns one (its headers
    are checked for CR and LF, folded lines start with a space, the parts are base64), so
    the SMTP transport sends it as it is instead of scanning and copying it again (CPU
    per 81 KB message 763 -> 326 µs, ``benchmarks/transport.py``). Any other ``bytes``
    are still made safe for DATA.
    """

    __slots__ = ()


class Transport(Protocol):
    """Something that delivers one message to one recipient."""

    def open(self) -> None:
        """Prepare to send (connect); sending opens on demand, so this is optional."""

    def close(self) -> None:
        """Release the connection; never raises."""

    def send(self, mail_from: str, recipient: str, data: bytes) -> str:
        """Deliver ``data`` to ``recipient``; return the server's reply text.

        Raises TransientDeliveryError | PermanentDeliveryError | UncertainDeliveryError.
        """


def transport_for(settings: Settings) -> Transport:
    """Return the transport the settings ask for: SMTP when configured, else a folder.

    SMTP with a base URL that recipients cannot reach is a ``RefusingTransport``.
    """
    if settings.smtp_url:
        problem = settings.base_url_problem()
        if problem:
            return RefusingTransport(problem)
        ca_file = settings.smtp_ca_file if str(settings.smtp_ca_file) not in ("", ".") else None
        return SmtpTransport(
            settings.smtp_url,
            timeout=settings.smtp_timeout,
            ca_file=ca_file,
            dsn=bool(settings.bounce_address),
        )
    return DirectoryTransport(settings.outbox)


class RefusingTransport:
    """Sends nothing: every message would carry links that do not work (the reason given).

    Each send raises ``DeliveryConfigError``, as a server that refuses our login does, so
    the sender gives the row back and pauses the campaign with the reason.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to release."""

    def send(self, mail_from: str, recipient: str, data: bytes) -> str:
        """Refuse, naming the setting to fix."""
        raise DeliveryConfigError(self.reason)


# The one place where smtplib, socket and ssl errors become delivery errors -------------


def delivery_error(exc: BaseException, *, after_data: bool = False) -> DeliveryError:
    """Translate one smtplib/socket/ssl failure into the error that says what to do next.

    ``after_data`` is true when the message and its final dot were transmitted and the
    failure happened while waiting for the final reply. The caller raises the result
    ``from exc``.
    """
    code, reply = _reply_of(exc)
    kind = code // 100 if code is not None and 400 <= code < 600 else 0  # 4, 5 or 0: no answer
    if after_data and not (kind and isinstance(exc, smtplib.SMTPDataError)):
        return UncertainDeliveryError(
            f"no reply after the message was sent ({_describe(exc)}); it may have been delivered",
            smtp_code=code,
            smtp_reply=reply,
            timed_out=_timed_out(exc),
        )
    if _timed_out(exc):  # no answer at all (so no reply code): try again later
        return TransientDeliveryError(_describe(exc), timed_out=True)
    if kind == 4:
        return TransientDeliveryError(f"SMTP {code} {reply}", smtp_code=code, smtp_reply=reply)
    if kind == 5:
        blames_recipient = isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError)
        if blames_recipient and not _refuses_our_setup(exc, code, reply):
            return PermanentDeliveryError(f"SMTP {code} {reply}", smtp_code=code, smtp_reply=reply)
        return DeliveryConfigError(
            f"the mail server refuses our {_step_of(exc)}: SMTP {code} {reply}; check the settings",
            smtp_code=code,
            smtp_reply=reply,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryConfigError(f"the mail server does not support it: {exc}; check the URL")
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = getattr(exc, "verify_message", "") or _describe(exc)  # set by ssl, not by hand
        return DeliveryConfigError(
            f"the mail server's certificate is not trusted ({reason}); for a relay whose "
            f"certificate a private CA signed, set {CA_FILE_SETTING} to that CA's PEM file"
        )
    return TransientDeliveryError(_describe(exc), smtp_code=code, smtp_reply=reply)


def _reply_of(exc: BaseException) -> tuple[int | None, str]:
    """Return the SMTP reply code and text an exception carries, if any."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, text = next(iter(exc.recipients.values()))
        return code, _text(text)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code, _text(exc.smtp_error)
    return None, ""


#: Wordings of relays that refuse to relay for an unknown or unauthenticated client
#: (Postfix, Sendmail, Exim, Exchange); "relay recipient table" (unknown user) is not one.
#: Postfix answers its client, HELO and sender checks only at RCPT (smtpd_delay_reject).
_SETUP_REFUSAL = re.compile(
    r"relay(ing)? (access )?(denied|not (permitted|allowed))"
    r"|(unable|not (permitted|allowed)|denied) to relay"
    r"|authentication (is )?required|not authenticated"
    r"|(client host|sender address|helo command) rejected",
    re.IGNORECASE,
)


#: Enhanced status classes (RFC 3463) that, in reply to the message data, refuse the
#: message and not the mailbox: 3 mail system (5.3.4 too big), 5 protocol, 6 content,
#: 7 security or policy (spam, DMARC). 1 (address) and 2 (mailbox) blame the recipient.
_MESSAGE_REFUSAL = re.compile(r"5\.[3567]\.\d{1,3}\b")


def _refuses_our_setup(exc: BaseException, code: int | None, reply: str) -> bool:
    """True when a refusal is about our login, relaying rights or message (530: RFC 4954)."""
    if code == 530 or _SETUP_REFUSAL.search(reply):
        return True
    return isinstance(exc, smtplib.SMTPDataError) and bool(_MESSAGE_REFUSAL.match(reply))


def _step_of(exc: BaseException) -> str:
    """Name the session step a refusing exception belongs to, for the message."""
    steps = {
        smtplib.SMTPRecipientsRefused: "relaying or login (RCPT TO)",
        smtplib.SMTPDataError: "message (DATA)",
        smtplib.SMTPSenderRefused: "sender address (MAIL FROM)",
        smtplib.SMTPAuthenticationError: "login (AUTH)",
        smtplib.SMTPHeloError: "greeting (EHLO)",
        smtplib.SMTPConnectError: "connection",
    }
    return next((name for kind, name in steps.items() if isinstance(exc, kind)), "session")


def _describe(exc: BaseException) -> str:
    """One line naming the failure without any secret (no exception repr carries one)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _text(value: bytes | str) -> str:
    """Decode a server reply to one line of text."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(value.split())[:300]


# SMTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to connect, parsed from ``NEWSLETTER_SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str
    password: Secret


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def split_server_url(
    url: str, name: str, schemes: tuple[str, str], ports: tuple[int, int], example: str
) -> tuple[SplitResult, int, bool]:
    """The parts, port and STARTTLS flag of a mail server's URL, checked; ConfigError if wrong.

    ``schemes`` and ``ports`` are (plain, implicit TLS), e.g. ("smtp", "smtps"), (25, 465);
    ``name`` is the setting named in the messages, ``example`` a URL of the right shape.
    """
    secure = schemes[1]
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name} must look like {example}")
    try:
        port = parts.port or (ports[1] if parts.scheme == secure else ports[0])
    except ValueError:
        raise ConfigError(f"{name} has a port that is not a number") from None
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"starttls"})
    if unknown:
        raise ConfigError(f"{name}: unknown option {unknown[0]!r} (known: starttls)")
    flag = options.get("starttls", "0").lower()
    if flag not in _TRUE + _FALSE:
        raise ConfigError(f"{name}: starttls must be 1 or 0, not {flag!r}")
    starttls = flag in _TRUE
    if starttls and parts.scheme == secure:
        raise ConfigError(f"{name}: {secure}:// is already encrypted; drop starttls=1")
    return parts, port, starttls


def parse_smtp_url(url: str) -> SmtpServer:
    """Parse ``smtp://user:pass@host:587?starttls=1`` or ``smtps://…``; ConfigError if wrong."""
    name = "NEWSLETTER_SMTP_URL"
    example = "smtp://user:pass@host:587?starttls=1"
    parts, port, starttls = split_server_url(url, name, ("smtp", "smtps"), (25, 465), example)
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not (username + password).isascii():
        raise ConfigError(f"{name}: the user name and password must be ASCII (SMTP AUTH)")
    if password and not username:
        raise ConfigError(f"{name} has a password but no user name")
    return SmtpServer(
        parts.hostname, port, parts.scheme == "smtps", starttls, username, Secret(password)
    )


class _Step(enum.Enum):
    """How far one send got, to tell a lost reply from a message never sent."""

    CONNECT = "connect"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    REPLY = "reply"  # payload and final dot sent, waiting for the final reply


CA_FILE_SETTING = "NEWSLETTER_SMTP_CA_FILE"


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The client TLS context: the system's CAs, or only those of ``ca_file`` (PEM).

    Certificates and host names are always verified. ConfigError names the setting when
    the file cannot be read or holds no certificate.
    """
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        ssl_error = isinstance(exc, ssl.SSLError)  # a subclass of OSError
        reason = "no PEM certificate in it" if ssl_error else (exc.strerror or str(exc))
        raise ConfigError(f"{CA_FILE_SETTING}: cannot use {ca_file}: {reason}") from None


class SmtpTransport:
    """One SMTP connection, reused across sends and reopened after a disconnect.

    Not thread-safe: each worker process (or thread) keeps its own transport, which is
    what bounds the uncertain window to one message per worker.
    """

    def __init__(
        self, url: str, *, timeout: float = 30.0, ca_file: Path | None = None, dsn: bool = False
    ) -> None:
        self.server = parse_smtp_url(url)
        self.dsn = dsn  # ask for RET=HDRS and NOTIFY=FAILURE where the server offers DSN
        self.timeout = timeout
        self.tls = tls_context(ca_file)
        self._connection: smtplib.SMTP | None = None
        self._step = _Step.CONNECT

    def open(self) -> None:
        """Connect, greet, start TLS and log in, unless already connected."""
        if self._connection is not None:
            return
        try:
            self._connection = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            raise delivery_error(exc) from exc

    def close(self) -> None:
        """Say QUIT politely and drop the connection; never raises."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()

    def send(self, mail_from: str, recipient: str, data: bytes) -> str:
        """Send in steps (MAIL, RCPT, DATA) so a lost final reply is told from a refusal."""
        _check_envelope(mail_from, recipient)
        payload = _smtp_payload(data)
        for attempt in (1, 2):
            reused = self._connection is not None
            try:
                return self._transaction(mail_from, recipient, payload)
            except (smtplib.SMTPException, OSError) as exc:
                step = self._step
                self._recover(exc, step)
                if attempt == 1 and reused and step is _Step.MAIL and _went_stale(exc):
                    continue  # the idle connection had died (server restart): nothing was sent
                raise delivery_error(exc, after_data=step is _Step.REPLY) from exc
        raise AssertionError("unreachable")

    def _connect(self) -> smtplib.SMTP:
        """Open a fresh, greeted, encrypted (if asked) and logged-in connection."""
        server, context = self.server, self.tls
        connection: smtplib.SMTP
        if server.implicit_tls:
            connection = smtplib.SMTP_SSL(
                server.host, server.port, timeout=self.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        try:
            connection.ehlo_or_helo_if_needed()
            if server.starttls:
                connection.starttls(context=context)
                connection.ehlo_or_helo_if_needed()
            if server.username:
                connection.login(server.username, server.password.reveal())
        except BaseException:
            connection.close()
            raise
        return connection

    def _transaction(self, mail_from: str, recipient: str, payload: bytes) -> str:
        """Run one MAIL/RCPT/DATA transaction, recording the step reached.

        When the server offers PIPELINING (RFC 2920) the three commands go out in one
        write and their replies are read after it: two round trips instead of four.
        """
        self._step = _Step.CONNECT
        if self._connection is None:
            self._connection = self._connect()
        connection = self._connection
        options = _dsn_options(connection) if self.dsn else _NO_OPTIONS
        if connection.has_extn("pipelining"):
            self._pipelined_envelope(connection, mail_from, recipient, options)
        else:
            self._envelope(connection, mail_from, recipient, options)
        connection.send(payload)
        self._step = _Step.REPLY
        code, reply = connection.getreply()
        if not 200 <= code < 300:
            raise smtplib.SMTPDataError(code, reply)
        return f"{code} {_text(reply)}"

    def _envelope(
        self, connection: smtplib.SMTP, mail_from: str, recipient: str, options: _Options
    ) -> None:
        """MAIL, RCPT and DATA one at a time, each waiting for its reply."""
        self._step = _Step.MAIL
        _check_reply(_Step.MAIL, *connection.mail(mail_from, options[0]), mail_from, recipient)
        self._step = _Step.RCPT
        _check_reply(_Step.RCPT, *connection.rcpt(recipient, options[1]), mail_from, recipient)
        self._step = _Step.DATA
        _check_reply(_Step.DATA, *connection.docmd("data"), mail_from, recipient)

    def _pipelined_envelope(
        self, connection: smtplib.SMTP, mail_from: str, recipient: str, options: _Options
    ) -> None:
        """MAIL, RCPT and DATA in one write; then their three replies, in order.

        Every reply is read before the first refusal is raised, so the connection is
        left between transactions (RSET works). A server that answers DATA with 354
        although it refused the envelope (RFC 2920 section 3.1 forbids it) gets an
        empty message's final dot, and its reply is read and dropped.
        """
        self._step = _Step.MAIL
        mail_options, rcpt_options = ("".join(" " + o for o in group) for group in options)
        commands = (
            f"mail FROM:{smtplib.quoteaddr(mail_from)}{mail_options}\r\n"
            f"rcpt TO:{smtplib.quoteaddr(recipient)}{rcpt_options}\r\nDATA\r\n"
        )
        connection.send(commands)
        refusal: smtplib.SMTPException | None = None
        for step in (_Step.MAIL, _Step.RCPT, _Step.DATA):
            try:
                code, reply = connection.getreply()
            except (smtplib.SMTPException, OSError):
                if refusal is None:
                    raise
                connection.close()  # the refusal stands; the connection cannot go on
                raise refusal from None
            if refusal is None:
                self._step = step
                try:
                    _check_reply(step, code, reply, mail_from, recipient)
                except smtplib.SMTPException as exc:
                    refusal = exc
            elif step is _Step.DATA and code == 354:
                _end_empty_message(connection, refusal)
        if refusal is not None:
            raise refusal

    def _recover(self, exc: BaseException, step: _Step) -> None:
        """Leave the connection usable: RSET after a plain refusal, else drop it.

        After a timeout the late reply could still arrive and answer the next command,
        so anything but a clean refusal closes the connection.
        """
        code, _ = _reply_of(exc)
        refused = (
            code is not None and 400 <= code < 600 and code != 421 and step is not _Step.CONNECT
        )
        if refused and self._connection is not None:
            try:
                self._connection.rset()
                return
            except (smtplib.SMTPException, OSError):
                pass
        if self._connection is not None:
            self._connection.close()
            self._connection = None


#: ESMTP parameters of MAIL and of RCPT.
_Options = tuple[tuple[str, ...], tuple[str, ...]]
_NO_OPTIONS: _Options = ((), ())
#: RFC 3461: a report only on failure, quoting only the headers (it names the message and,
#: through the VERP return path, the outbox row; the body would only cost the bounce
#: mailbox space).
_DSN_OPTIONS: _Options = (("RET=HDRS",), ("NOTIFY=FAILURE",))


def _dsn_options(connection: smtplib.SMTP) -> _Options:
    """The DSN parameters, when the server offers DSN (asking one that does not is a 555)."""
    return _DSN_OPTIONS if connection.has_extn("dsn") else _NO_OPTIONS


def _end_empty_message(connection: smtplib.SMTP, refusal: smtplib.SMTPException) -> None:
    """Close a DATA the server opened after refusing the envelope: a lone final dot."""
    try:
        connection.send(b".\r\n")
        connection.getreply()
    except (smtplib.SMTPException, OSError):
        connection.close()
        raise refusal from None


def _check_reply(step: _Step, code: int, reply: bytes, mail_from: str, recipient: str) -> None:
    """Raise the smtplib error ``delivery_error`` maps, unless the reply accepts the step."""
    if step is _Step.MAIL and code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, mail_from)
    if step is _Step.RCPT and code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    if step is _Step.DATA and code != 354:
        raise smtplib.SMTPDataError(code, reply)


def _timed_out(exc: BaseException) -> bool:
    """True when the failure is the timeout running out, however smtplib wrapped it.

    smtplib turns a read that timed out into ``SMTPServerDisconnected("Connection
    unexpectedly closed: timed out")``, raised while handling the ``TimeoutError``, so
    the timeout is found on the chain of causes and contexts.
    """
    seen: BaseException | None = exc
    for _ in range(5):  # the chain is short; a cycle must not loop forever
        if seen is None:
            return False
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _went_stale(exc: BaseException) -> bool:
    """True when a reused connection turned out closed at the first command.

    A connection that timed out was not closed: the server hangs, and trying again at
    once would only wait a second timeout for the same row.
    """
    code, _ = _reply_of(exc)
    closed = isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError)
    return code == 421 or (closed and not _timed_out(exc))


def _check_envelope(mail_from: str, recipient: str) -> None:
    """Refuse envelope addresses smtplib would choke on or that could inject a command."""
    for value, label in ((mail_from, "sender"), (recipient, "recipient")):
        if value.isascii() and "@" in value and not re.search(r"[\x00-\x20<>\x7f]", value):
            continue
        # The whole address (up to the outbox column's 320): erasure scrubs it from errors.
        message = f"the envelope {label} {value[:320]!r} is not a plain ASCII address"
        if label == "sender":
            raise DeliveryConfigError(message)
        raise PermanentDeliveryError(message)


def _smtp_payload(data: bytes) -> bytes:
    """Return the DATA payload: CRLF line ends, leading dots doubled, final dot appended.

    A ``WireMessage`` already has the first two, so it only gets its final dot.
    """
    if isinstance(data, WireMessage):
        return data + b".\r\n"
    crlf = data.count(b"\r\n")
    if crlf != data.count(b"\n") or crlf != data.count(b"\r"):
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if data.startswith(b".") or b"\n." in data:
        data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


# A folder of .eml files --------------------------------------------------------------


_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


class DirectoryTransport:
    """Write each message as ``<folder>/<hash>.eml``, atomically, for the demo and previews.

    The name comes from the Message-ID and the recipient, so sending the same message
    again replaces its file instead of adding a second one.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._ready = False

    def open(self) -> None:
        """Create the folder; a folder that cannot be made is a configuration error."""
        if self._ready:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryConfigError(f"{self.folder}: cannot create the outbox: {exc}") from exc
        self._ready = True

    def close(self) -> None:
        """Nothing to release."""

    def send(self, mail_from: str, recipient: str, data: bytes) -> str:
        """Write to a temporary file, flush it to disk, then rename: never half a file."""
        self.open()
        path = self.folder / self.file_name(recipient, data)
        temporary = self.folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise TransientDeliveryError(f"{path}: cannot write the message: {exc}") from exc
        return f"250 written {path}"

    @staticmethod
    def file_name(recipient: str, data: bytes) -> str:
        """Return the stable file name of one message to one recipient."""
        head = data.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        identity = found.group(1) if found else hashlib.sha256(data).digest()
        digest = hashlib.sha256(identity + b"\0" + recipient.encode("utf-8", "replace"))
        return digest.hexdigest()[:32] + ".eml"


# In memory, for tests ----------------------------------------------------------------


class MemoryTransport:
    """Keep every message in ``sent``; raise queued errors first. For tests.

    ``fail_next(error, ...)`` makes the next sends raise those errors in order. An
    ``UncertainDeliveryError`` still records the message first, as a slow real server
    does: it kept the message but its reply came too late.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []
        self.failures: deque[DeliveryError] = deque()
        self.opened = 0
        self.closed = 0
        self._lock = threading.Lock()

    def open(self) -> None:
        """Count the call."""
        with self._lock:
            self.opened += 1

    def close(self) -> None:
        """Count the call."""
        with self._lock:
            self.closed += 1

    def fail_next(self, *errors: DeliveryError) -> None:
        """Queue errors for the next sends, one per send."""
        with self._lock:
            self.failures.extend(errors)

    def send(self, mail_from: str, recipient: str, data: bytes) -> str:
        """Record the message (unless a queued error says it was refused)."""
        with self._lock:
            error = self.failures.popleft() if self.failures else None
            if error is None or isinstance(error, UncertainDeliveryError):
                self.sent.append((mail_from, recipient, data))
        if error is not None:
            raise error
        return "250 2.0.0 OK kept in memory"
