"""Where bounces are read from: an IMAP folder, one message file, an mbox, a Maildir.

Each source yields the raw bytes of one message at a time, so memory stays bounded by the
largest message (capped at ``MAX_MESSAGE_BYTES``; a DSN asked for with ``RET=HDRS`` is a
few KB), not by the number of messages: a 10,000-message mbox is read line by line.

The IMAP folder is never emptied by deleting: a message is moved (``UID MOVE``, RFC 6851,
or COPY then expunge of that one UID where MOVE is not offered) to ``<folder>.processed``
or ``<folder>.unmatched`` (the server's own hierarchy separator), created when missing,
and only after the caller has recorded what it read.

Knows nothing of the database.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from newsletter.delivery.transport import split_server_url, tls_context
from newsletter.errors import ConfigError, InputError, MailboxError
from newsletter.settings import Secret

#: Bytes of one message kept; the rest is dropped (the report's parts come first).
MAX_MESSAGE_BYTES = 2_000_000
PROCESSED = "processed"
UNMATCHED = "unmatched"
_SETTING = "NEWSLETTER_BOUNCE_IMAP_URL"


# Files -------------------------------------------------------------------------------


def read_messages(path: str) -> Iterator[bytes]:
    """Every message in ``path``: a Maildir, an mbox, one message, or ``-`` (standard input).

    InputError names the path when it cannot be read.
    """
    if path == "-":
        yield from _stream(sys.stdin.buffer)
        return
    where = Path(path)
    try:
        if where.is_dir():
            yield from _maildir(where)
            return
        with open(where, "rb") as handle:
            yield from _stream(handle)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def _maildir(folder: Path) -> Iterator[bytes]:
    """The messages of a Maildir's ``new`` and ``cur``, in name order."""
    if not (folder / "cur").is_dir() and not (folder / "new").is_dir():
        raise InputError(f"{folder}: a folder, but not a Maildir (no cur/ or new/ in it)")
    for sub in ("new", "cur"):
        for file in sorted((folder / sub).glob("*")) if (folder / sub).is_dir() else ():
            if file.is_file() and not file.name.startswith("."):
                with open(file, "rb") as handle:
                    yield handle.read(MAX_MESSAGE_BYTES)


def _stream(handle: BinaryIO) -> Iterator[bytes]:
    """An mbox (first line ``From ``) message by message, or the whole input as one."""
    first = handle.readline()
    if not first.startswith(b"From "):
        rest = handle.read(max(0, MAX_MESSAGE_BYTES - len(first)))
        if first or rest:
            yield first + rest
        return
    yield from _mbox(handle)


def _mbox(handle: BinaryIO) -> Iterator[bytes]:
    """The messages after the first ``From `` line; ``>From `` lines are unquoted (mboxrd)."""
    lines: list[bytes] = []
    size = 0
    for line in handle:
        if line.startswith(b"From "):
            if lines:
                yield _without_final_blank(b"".join(lines))
            lines, size = [], 0
            continue
        if size < MAX_MESSAGE_BYTES:
            if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
                line = line[1:]
            lines.append(line)
            size += len(line)
    if lines:
        yield _without_final_blank(b"".join(lines))


def _without_final_blank(data: bytes) -> bytes:
    """Drop the blank line an mbox puts before the next ``From ``."""
    if data.endswith(b"\r\n\r\n"):
        return data[:-2]
    if data.endswith(b"\n\n"):
        return data[:-1]
    return data


# IMAP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapAccount:
    """Where the bounce folder is, parsed from ``NEWSLETTER_BOUNCE_IMAP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str
    password: Secret
    folder: str


def parse_imap_url(url: str) -> ImapAccount:
    """``imaps://user:pass@host[:993]/INBOX`` or ``imap://…[?starttls=1]``; ConfigError if wrong."""
    example = "imaps://user:pass@host/INBOX"
    parts, port, starttls = split_server_url(url, _SETTING, ("imap", "imaps"), (143, 993), example)
    if not parts.username or parts.password is None:
        raise ConfigError(
            f"{_SETTING} needs a user name and password: imaps://user:pass@host/INBOX"
        )
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if not re.fullmatch(r"[\w .\-/]{1,200}", folder):
        raise ConfigError(
            f"{_SETTING}: the folder {folder!r} has characters IMAP would need quoted"
        )
    return ImapAccount(
        parts.hostname,
        port,
        parts.scheme == "imaps",
        starttls,
        unquote(parts.username),
        Secret(unquote(parts.password)),
        folder,
    )


class ImapMailbox:
    """The bounce folder on an IMAP server; use as a context manager.

    ``uids()`` lists the folder's messages, ``fetch(uid)`` reads one without marking it
    seen, ``move(uid, PROCESSED | UNMATCHED)`` files it away. Every failure of the server
    or the network is a ``MailboxError`` (a refused login a ``ConfigError``).
    """

    def __init__(self, url: str, *, timeout: float = 30.0, ca_file: Path | None = None) -> None:
        self.account = parse_imap_url(url)
        self.timeout = timeout
        self.tls = tls_context(ca_file)
        self._imap: imaplib.IMAP4 | None = None
        self._targets: dict[str, str] = {}
        self._can_move = False

    def __enter__(self) -> ImapMailbox:
        account = self.account
        where = f"{account.host}:{account.port}"
        try:
            imap = self._connect()
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(
                f"{_SETTING}: cannot reach the IMAP server at {where}: {exc}"
            ) from None
        self._imap = imap
        try:
            imap.login(account.username, account.password.reveal())
        except imaplib.IMAP4.error:
            self.__exit__()
            raise ConfigError(f"{_SETTING}: the IMAP server at {where} refused the login") from None
        self._call("select", _quoted(account.folder))
        # What the server offers once logged in (the greeting's list may be shorter).
        self._can_move = b"MOVE" in b" ".join(self._call("capability")).upper().split()
        separator = self._separator()
        for name in (PROCESSED, UNMATCHED):
            target = f"{account.folder}{separator}{name}"
            self._targets[name] = target
            imap.create(_quoted(target))  # "already exists" is an answer, not a failure
        return self

    def _connect(self) -> imaplib.IMAP4:
        account = self.account
        if account.implicit_tls:
            return imaplib.IMAP4_SSL(
                account.host, account.port, ssl_context=self.tls, timeout=self.timeout
            )
        imap = imaplib.IMAP4(account.host, account.port, timeout=self.timeout)
        if account.starttls:
            imap.starttls(ssl_context=self.tls)
        return imap

    def __exit__(self, *exc: object) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            imap.logout()

    def _call(self, command: str, *args: str) -> list[bytes]:
        """Run one command; MailboxError unless the server answers OK."""
        assert self._imap is not None, "use ImapMailbox as a context manager"
        try:
            status, data = getattr(self._imap, command)(*args)
        except (OSError, imaplib.IMAP4.error) as exc:  # ssl and timeouts are OSErrors
            raise MailboxError(f"{_SETTING}: IMAP {command.upper()} failed: {exc}") from None
        if status != "OK":
            raise MailboxError(
                f"{_SETTING}: IMAP {command.upper()} answered {status}: {data!r}"[:300]
            )
        return list(data)

    def _separator(self) -> str:
        """The server's hierarchy separator (``.`` or ``/``), from LIST."""
        listed = self._call("list", '""', '""')
        found = re.search(rb'\(.*?\) "(.)"', listed[0] or b"") if listed else None
        return found.group(1).decode() if found else "."

    def uids(self, limit: int = 500) -> list[bytes]:
        """The UIDs of up to ``limit`` messages in the folder, oldest first."""
        data = self._call("uid", "SEARCH", "ALL")
        return (data[0] or b"").split()[:limit]

    def fetch(self, uid: bytes) -> bytes:
        """One message's bytes, leaving it unseen; b'' when it is gone."""
        data = self._call("uid", "FETCH", uid.decode(), "(BODY.PEEK[])")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return bytes(item[1])[:MAX_MESSAGE_BYTES]
        return b""

    def move(self, uid: bytes, where: str) -> None:
        """File the message into the processed or unmatched folder; nothing is deleted first."""
        target = _quoted(self._targets[where])
        if self._can_move:
            self._call("uid", "MOVE", uid.decode(), target)
            return
        self._call("uid", "COPY", uid.decode(), target)
        self._call("uid", "STORE", uid.decode(), "+FLAGS.SILENT", r"(\Deleted)")
        self._call("uid", "EXPUNGE", uid.decode())


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
