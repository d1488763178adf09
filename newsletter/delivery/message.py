"""Per-recipient MIME messages: headers made safe once per campaign, the body assembled fast.

``MessageFactory`` is built once per campaign: it checks and encodes everything that is
the same for every recipient (From, Reply-To, Subject, List-Id, the MIME skeleton, the
DKIM key). ``build`` then does only the per-recipient work: fill the placeholders, check
and encode To and the unsubscribe URL, and join the two parts' quoted-printable.

Why quoted-printable in pieces: the issue's text between placeholders is the same for
every recipient, so each literal piece is encoded once per campaign (``qp_piece``; a
piece starts and ends at a line start, so pieces encoded apart join into one valid
body) and only the filled values are encoded per recipient. Base64 of the whole
personalised body, as before, cost about 155 µs for 55 KB per recipient and grew the
message by a third; quoted-printable of mostly-ASCII HTML grows it far less. The body
stays 7-bit with lines of at most 76 characters: an 8-bit body (8BITMIME) would be
smaller still, but a relay that forwards to a server without 8BITMIME must convert it
to 7-bit, which changes the signed body and breaks DKIM (RFC 6376 5.3), and the sender
cannot see what lies past its relay. The stdlib ``EmailMessage`` path, which picks
pure-Python quoted-printable for the whole body, cost about 11 ms per recipient of a
100 KB email.

Header safety: every value that reaches a header is checked first (``check_header_text``,
from ``newsletter.headers``, which the list import applies too):
CR, LF, NUL and other control characters are refused, and so are encoded words that
decode to them (``=?UTF-8?Q?=0A?=Bcc:``, CVE-2024-6923, which CPython 3.11.7 still lets
through). The caller learns whose fault it is from the error: ``PermanentDeliveryError``
for one recipient's values, ``IssueError`` for the subject, ``InputError`` for the list,
``ConfigError`` for settings. Addresses stay ASCII (no SMTPUTF8): domains are punycoded,
non-ASCII local parts refused.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

import dkim
import dkim.crypto
import idna

from newsletter.delivery.transport import WireMessage
from newsletter.delivery.verp import return_path
from newsletter.errors import ConfigError, InputError, IssueError, PermanentDeliveryError
from newsletter.headers import UnsafeValueError, check_header_text
from newsletter.settings import PREFIX, Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    #: A personalised document as ``(is_literal, text)`` pieces: the literal ones are the
    #: same strings for every recipient (``newsletter.compose.slots.FillPlan.fill_parts``).
    Pieces = Sequence[tuple[bool, str]]

#: Headers the DKIM signature covers; a missing one is signed as absent, so it cannot be
#: added later. RFC 8058 asks for both List-Unsubscribe headers to be covered.
DKIM_HEADERS = (
    "From", "Reply-To", "To", "Subject", "Date", "Message-ID", "List-Id",
    "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
    "Content-Language",
)  # fmt: skip
#: Signed once more than they occur ("oversigned"), so a second copy added in transit,
#: e.g. another List-Unsubscribe above ours, breaks the signature instead of riding on it.
DKIM_OVERSIGNED = (
    "From", "To", "Subject", "Date", "Message-ID", "List-Id",
    "List-Unsubscribe", "List-Unsubscribe-Post",
)  # fmt: skip

_MAX_LINE = 998  # RFC 5322 2.1.1: MUST; 78 is only a SHOULD
_WORD_BYTES = 39  # -> 52 base64 characters, a 64-character encoded word (RFC 2047: <= 75)
_BASE64_LINE = 76  # RFC 2045 6.8


class Personalisable(Protocol):
    """What the factory needs of ``newsletter.compose.render.CompiledIssue``."""

    slug: str
    subject: str
    lang: str

    def personalise(self, values: Mapping[str, str]) -> tuple[str, str]: ...


@runtime_checkable
class InPieces(Protocol):
    """An issue that can also give its personalised HTML and text in pieces."""

    def personalise_parts(self, values: Mapping[str, str]) -> tuple[Pieces, Pieces]: ...


@dataclass(frozen=True)
class Recipient:
    """One addressee and the values that personalise their copy."""

    email: str
    name: str = ""
    municipality: str = ""
    unsubscribe_url: str = ""
    preferences_url: str = ""
    view_url: str = ""


# Checking values ----------------------------------------------------------------------

_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def ascii_address(address: str) -> str:
    """Return the address with its domain punycoded; refuse anything that needs SMTPUTF8."""
    check_header_text(address)
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise UnsafeValueError("is not an email address")
    if not local.isascii():
        raise UnsafeValueError("has a non-ASCII part before @ (SMTPUTF8 is not supported)")
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise UnsafeValueError("has characters not allowed before @")
    return f"{local}@{ascii_domain(domain)}"


@functools.lru_cache(maxsize=4096)
def ascii_domain(domain: str) -> str:
    """Return the domain in lower-case ASCII (IDNA 2008 with UTS 46 mapping)."""
    name = domain.rstrip(".")
    try:
        name = name.lower() if name.isascii() else idna.encode(name, uts46=True).decode()
    except idna.IDNAError:
        raise UnsafeValueError("has a domain that cannot be punycoded") from None
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeValueError("has an invalid domain")
    return name


_URL = re.compile(r"https?://[!#-;=?-~]+")  # printable ASCII without space, '"', '<', '>'


def check_url(url: str) -> str:
    """Return the URL if it may stand between angle brackets in a header."""
    if len(url) > 900 or not _URL.fullmatch(url):
        raise UnsafeValueError("is not a plain http(s) URL of printable ASCII")
    return url


# Encoding values ----------------------------------------------------------------------

_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]{1,200}")


def encoded_words(text: str) -> list[str]:
    """Split UTF-8 text into RFC 2047 B-encoded words, never cutting a character."""
    data, words, start = text.encode("utf-8"), [], 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1  # do not split a multi-byte character
        words.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode("ascii") + "?=")
        start = end
    return words


def encode_phrase(text: str) -> str:
    """Encode a display name: atoms as they are, else a quoted string, else encoded words."""
    text = check_header_text(text).strip()
    if text.isascii() and "=?" not in text:
        if _ATOMS.fullmatch(text):
            return text
        if len(text) <= 200:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "\r\n ".join(encoded_words(text))


def encode_unstructured(text: str, header: str) -> str:
    """Encode a Subject-like value: ASCII folded at spaces, anything else as encoded words."""
    check_header_text(text)
    if text.isascii() and "=?" not in text:
        folded = _fold_at_spaces(text, len(header) + 2)
        if all(len(line) <= _MAX_LINE - len(header) - 2 for line in folded.split("\r\n")):
            return folded
    return "\r\n ".join(encoded_words(text))


def _fold_at_spaces(text: str, used: int) -> str:
    """Break before single spaces so lines stay near 78 characters; unfolding restores it."""
    if used + len(text) <= 78:
        return text
    lines, start, limit, last = [], 0, 78 - used, 0
    for cut in [m.start() for m in re.finditer(r" (?=\S)", text)] + [len(text)]:
        if cut - start > limit and last > start:
            lines.append(text[start:last])
            start, limit = last, 78
        last = cut
    lines.append(text[start:])
    return "\r\n".join(lines)


def format_address(name: str, address: str) -> str:
    """Return ``name <address>`` with the name encoded, or the bare address."""
    phrase = encode_phrase(name) if name.strip() else ""
    return f"{phrase} <{address}>" if phrase else address


_LIST_ID = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+")


def encode_list_id(value: str, domain: str) -> str:
    """Check and encode a List-Id (RFC 2919) given as ``name <id>``, ``<id>`` or a bare slug.

    A value without angle brackets (``savivaldybes`` or ``a.b``) is a label of ours and
    gets the sender's domain appended: ``<savivaldybes.bibliotekos-pazangai.example>``.
    """
    check_header_text(value)
    match = re.fullmatch(r"(.*?)\s*<([^<>]*)>", value.strip())
    if match:
        phrase, ident = match.group(1), match.group(2)
    else:
        phrase, ident = "", f"{value.strip()}.{ascii_domain(domain)}"
    if not _LIST_ID.fullmatch(ident) or len(ident) > 255:
        raise UnsafeValueError(f"has an invalid list identifier {ident[:80]!r}")
    return f"{encode_phrase(phrase)} <{ident}>" if phrase.strip() else f"<{ident}>"


def message_id(key: bytes, campaign_id: int, email: str, domain: str) -> str:
    """Return ``<c{campaign}.{hmac}@{domain}>``: the same for a retry, unguessable by others.

    The campaign number is readable so a bounce report leads back to its campaign; the
    128-bit HMAC tag keeps Message-IDs of other recipients impossible to guess.
    """
    subject = f"message-id\0{campaign_id}\0{email.strip().lower()}".encode()
    tag = hmac.new(key, subject, hashlib.sha256).hexdigest()[:32]
    return f"<c{campaign_id}.{tag}@{ascii_domain(domain)}>"


# The body -----------------------------------------------------------------------------


def qp_piece(text: str) -> bytes:
    """Quoted-printable of one piece of a body, starting and ending at a line start.

    Hard line breaks become CRLF; a piece that does not end with one ends with a soft
    break (``=`` CRLF), so the next piece, encoded apart, starts a line too and the two
    join into one valid body. No line is longer than 76 characters (RFC 2045 6.7) and
    none starts with ``.`` (it is written ``=2E``), as ``WireMessage`` requires.
    """
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    encoded = binascii.b2a_qp(data.replace(b"\n", b"\r\n"), istext=True)
    if b"\n" not in data:  # b2a_qp ends soft lines like the first line end it met: none
        encoded = encoded.replace(b"\n", b"\r\n")
    if encoded and not encoded.endswith(b"\r\n"):
        encoded += b"=\r\n"
    longest = max(map(len, encoded.split(b"\r\n")))
    if encoded.startswith(b".") or b"\n." in encoded or longest > _QP_LINE:
        encoded = _safe_lines(encoded)
    return encoded


_QP_LINE = 76


def _safe_lines(encoded: bytes) -> bytes:
    """Write a leading ``.`` as ``=2E`` and cut lines over 76 characters with soft breaks."""
    out = []
    for line in encoded.split(b"\r\n"):
        while True:
            if line.startswith(b"."):
                line = b"=2E" + line[1:]
            if len(line) <= _QP_LINE:
                break
            cut = _QP_LINE - 1
            while b"=" in line[cut - 2 : cut]:  # never inside an =XX escape
                cut -= 1
            out.append(line[:cut] + b"=")
            line = line[cut:]
        out.append(line)
    return b"\r\n".join(out)


def base64_body(text: str) -> bytes:
    """Return the text as CRLF-terminated UTF-8 in base64 lines of 76 characters."""
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    encoded = binascii.b2a_base64(data.replace(b"\n", b"\r\n"), newline=False)
    step = _BASE64_LINE
    return b"\r\n".join([encoded[i : i + step] for i in range(0, len(encoded), step)])


# DKIM ---------------------------------------------------------------------------------


class DkimSigner:
    """Sign messages with one RSA key, read and checked once (dkimpy, relaxed/simple).

    dkimpy computes RSA with Python integers: about 10 ms per 180 KB message, two thirds
    of it in ``pow`` (``benchmarks/build_message.py``), so signing, not building, bounds
    one worker to roughly 100 signed messages per second.
    """

    def __init__(self, key: bytes, selector: str, domain: str) -> None:
        try:
            dkim.crypto.parse_pem_private_key(key)
        except dkim.crypto.UnparsableKeyError as exc:
            raise ConfigError(
                f"{PREFIX}DKIM_KEY_FILE is not a PEM RSA private key: {exc}"
            ) from None
        if not re.fullmatch(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*", selector):
            raise ConfigError(f"{PREFIX}DKIM_SELECTOR {selector!r} is not a DNS label")
        self.key = key
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")
        names = DKIM_HEADERS + DKIM_OVERSIGNED
        self.headers = [name.lower().encode("ascii") for name in names]

    @classmethod
    def from_settings(cls, settings: Settings, from_domain: str) -> DkimSigner | None:
        """Return a signer when a key file and selector are set, else None."""
        if str(settings.dkim_key_file) in ("", "."):
            return None
        try:
            key = Path(settings.dkim_key_file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{PREFIX}DKIM_KEY_FILE {settings.dkim_key_file}: {exc}") from None
        try:
            domain = ascii_domain(settings.dkim_domain or from_domain)
        except UnsafeValueError as exc:
            raise ConfigError(f"{PREFIX}DKIM_DOMAIN {exc}") from None
        return cls(key, settings.dkim_selector, domain)

    def sign(self, message: bytes) -> bytes:
        """Return the ``DKIM-Signature`` header (CRLF-terminated) to put on top."""
        try:
            return bytes(
                dkim.sign(
                    message, self.selector, self.domain, self.key,
                    canonicalize=(b"relaxed", b"simple"), include_headers=self.headers,
                )
            )  # fmt: skip
        except dkim.DKIMException as exc:
            raise ConfigError(f"DKIM signing failed: {exc}") from None


# The factory --------------------------------------------------------------------------


class MessageFactory:
    """Build the raw message for each recipient of one campaign."""

    def __init__(
        self,
        compiled: Personalisable,
        settings: Settings,
        *,
        campaign_id: int,
        list_id_header: str,
        test: bool = False,
    ) -> None:
        self.compiled = compiled
        self.campaign_id = campaign_id
        self.test = test
        self.mail_from = _setting(ascii_address, settings.from_address, "FROM_ADDRESS")
        self.domain = self.mail_from.rpartition("@")[2]
        self._key = settings.key()
        if test:  # repeated test sends must not share a Message-ID (readers drop duplicates)
            self._key += secrets.token_bytes(16)
        self._mailto = _setting(
            ascii_address, settings.unsubscribe_mailto or f"unsubscribe@{self.domain}",
            "UNSUBSCRIBE_MAILTO",
        )  # fmt: skip
        self._head = self._fixed_head(compiled, settings, list_id_header)
        boundary = "=_nl_" + secrets.token_hex(12)  # '=_' never occurs in base64
        self._mime = (
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
            + self._content_language(compiled)
            + "\r\n"
        ).encode("ascii")
        part = f"\r\n--{boundary}\r\nContent-Type: text/%s; charset=utf-8\r\n"
        part += "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        self._parts = (
            (part % "plain").encode("ascii"),
            (part % "html").encode("ascii"),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        )
        self._dkim = DkimSigner.from_settings(settings, self.domain)
        # The quoted-printable of each literal piece of the issue, encoded once.
        self._encoded: dict[str, bytes] = {}
        self._bounce_address = settings.bounce_address
        self._verp_key = settings.key()

    def _fixed_head(self, compiled: Personalisable, settings: Settings, list_id: str) -> str:
        """Encode From, Reply-To, Subject and List-Id once for the whole campaign."""
        from_name = _setting(encode_phrase, settings.from_name, "FROM_NAME")
        lines = [
            f"From: {from_name} <{self.mail_from}>" if from_name else f"From: {self.mail_from}"
        ]
        if settings.reply_to:
            reply_to = _setting(ascii_address, settings.reply_to, "REPLY_TO")
            lines.append(f"Reply-To: {format_address(settings.from_name, reply_to)}")
        subject = ("[TEST] " if self.test else "") + compiled.subject
        if not subject.strip():
            raise IssueError(f"issue {compiled.slug!r}: the subject is empty")
        try:
            lines.append("Subject: " + encode_unstructured(subject, "Subject"))
        except UnsafeValueError as exc:
            raise IssueError(f"issue {compiled.slug!r}: the subject {exc}") from None
        if list_id:
            try:
                lines.append("List-Id: " + encode_list_id(list_id, self.domain))
            except UnsafeValueError as exc:
                raise InputError(f"List-Id {list_id[:80]!r}: {exc}") from None
        return "".join(line + "\r\n" for line in lines)

    @staticmethod
    def _content_language(compiled: Personalisable) -> str:
        """Return the Content-Language line for the issue's language, if it is a tag."""
        lang = getattr(compiled, "lang", "")
        if re.fullmatch(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*", lang or ""):
            return f"Content-Language: {lang}\r\n"
        return ""

    def envelope(self, recipient: Recipient, row_id: int | None = None) -> tuple[str, str]:
        """Return ``(mail_from, rcpt_to)`` for the transport: plain ASCII addresses.

        With a bounce address set, the sender is the VERP return path naming ``row_id``
        (``newsletter.delivery.verp``), so the bounce leads back to the row.
        """
        mail_from = self.mail_from
        if self._bounce_address and row_id is not None:
            mail_from = return_path(self._bounce_address, self._verp_key, row_id)
        try:
            return mail_from, ascii_address(recipient.email)
        except UnsafeValueError as exc:
            raise PermanentDeliveryError(
                f"recipient {_shown(recipient.email)}: email {exc}"
            ) from None

    def build(self, recipient: Recipient) -> tuple[str, WireMessage]:
        """Return ``(message_id, raw message)`` for one recipient, ready for SMTP DATA.

        CRLF line ends only and no line starting with ``.`` (see ``WireMessage``): header
        values were checked for CR and LF, every folded line starts with a space (ours and
        dkimpy's), and the parts are base64 between boundary lines.

        Raises ``PermanentDeliveryError`` when one of the recipient's own values cannot be
        put in a header; nothing of the message is built then.
        """
        address, to, unsubscribe = self._recipient_headers(recipient)
        ident = message_id(self._key, self.campaign_id, address, self.domain)
        html, text = self._pieces(_placeholder_values(recipient))
        date = format_datetime(datetime.now(UTC))
        head = f"{self._head}To: {to}\r\nDate: {date}\r\nMessage-ID: {ident}\r\n{unsubscribe}"
        text_part, html_part, closing = self._parts
        body = (text_part, self._qp_body(text), html_part, self._qp_body(html), closing)
        raw = b"".join((head.encode("ascii"), self._mime, *body))
        if self._dkim is not None:
            return ident, WireMessage(self._dkim.sign(raw) + raw)
        return ident, WireMessage(raw)

    def _pieces(self, values: Mapping[str, str]) -> tuple[Pieces, Pieces]:
        """The personalised (html, text) as pieces; whole values when the issue has none."""
        if isinstance(self.compiled, InPieces):
            return self.compiled.personalise_parts(values)
        html, text = self.compiled.personalise(values)
        return [(False, html)], [(False, text)]

    def _qp_body(self, pieces: Pieces) -> bytes:
        """The body's quoted-printable: literal pieces from the cache, values encoded now."""
        encoded = self._encoded
        chunks = []
        for literal, text in pieces:
            if not text:
                continue
            if not literal:
                chunks.append(qp_piece(text))
                continue
            chunk = encoded.get(text)
            if chunk is None:
                chunk = encoded[text] = qp_piece(text)
            chunks.append(chunk)
        body = b"".join(chunks)
        return body[:-3] if body.endswith(b"=\r\n") else body

    def _recipient_headers(self, recipient: Recipient) -> tuple[str, str, str]:
        """Check and encode the recipient's address, To and List-Unsubscribe lines."""
        field = "email"
        try:
            address = ascii_address(recipient.email)
            field = "name"
            to = format_address(recipient.name, address)
            field = "unsubscribe_url"
            unsubscribe = self._unsubscribe_lines(recipient.unsubscribe_url)
        except UnsafeValueError as exc:
            raise PermanentDeliveryError(
                f"recipient {_shown(recipient.email)}: {field} {exc}"
            ) from None
        return address, to, unsubscribe

    def _unsubscribe_lines(self, url: str) -> str:
        """Return the RFC 8058 headers: one plain line each, never encoded words.

        Omitted when the recipient has no unsubscribe URL (a test copy). The mailto
        target carries the same token in its subject, for readers without HTTP.
        """
        if not url:
            return ""
        targets = [f"<{check_url(url)}>"]
        token = re.search(r"/([A-Za-z0-9_.~=-]{1,200})/?$", urlsplit(url).path)
        if token:
            targets.append(f"<mailto:{self._mailto}?subject=unsubscribe-{token.group(1)}>")
        value = ", ".join(targets)
        if len(value) + len("List-Unsubscribe: ") > _MAX_LINE:
            value = ",\r\n ".join(targets)  # fold between the two URIs, never inside one
        return f"List-Unsubscribe: {value}\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"


def _shown(email: str) -> str:
    """The address as errors quote it: whole (up to the outbox column's 320 characters), so
    that erasure, which scrubs the address from a row's recorded error, finds all of it."""
    return repr(email[:320])


def _placeholder_values(recipient: Recipient) -> dict[str, str]:
    """Return the values ``CompiledIssue.personalise`` fills in."""
    return {
        "name": recipient.name,
        "municipality": recipient.municipality,
        "email": recipient.email,
        "unsubscribe_url": recipient.unsubscribe_url,
        "preferences_url": recipient.preferences_url,
        "view_url": recipient.view_url,
    }


def _setting(encode: Callable[[str], str], value: str, name: str) -> str:
    """Apply a check/encode function to a setting, turning a refusal into ConfigError."""
    try:
        return encode(value)
    except UnsafeValueError as exc:
        raise ConfigError(f"{PREFIX}{name} {exc}") from None
