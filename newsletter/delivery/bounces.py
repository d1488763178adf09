"""Read one bounce message: bytes in, what it reports out. No I/O, no database.

``read_report(raw)`` tells, in this order:

1. an RFC 3464 DSN (``multipart/report; report-type=delivery-status``): one finding per
   recipient whose ``Action`` is ``failed``, with its ``Status`` and ``Diagnostic-Code``
   (delays, deliveries and relays are no failure);
2. an RFC 5965 ARF complaint (``report-type=feedback-report``): one finding for the
   complaining recipient (``Original-Rcpt-To``, else the quoted message's ``To``);
3. an auto-reply (RFC 3834 ``Auto-Submitted: auto-replied`` from a person, ``X-Autoreply``,
   ``Precedence: auto_reply``, an out-of-office subject): never a failure;
4. a bounce in a format of its own (Exchange, Exim, qmail, older Postfix, Yahoo …):
   the Mailman project's detectors, ``flufl.bounce``, find the failed addresses;
5. otherwise nothing known (``UNKNOWN``).

Mail daemons mark their bounces ``Auto-Submitted: auto-replied`` too (Postfix, Exim), so a
message from ``MAILER-DAEMON``/``postmaster`` is only called an auto-reply when no detector
finds a failure in it.

Besides the findings, a report carries what leads back to the message that failed: the
addresses it was sent to (the VERP return path, ``newsletter.delivery.verp``) and the
Message-IDs of the original quoted in it. Whether any of them names a message we sent is
for the caller to check; nothing here trusts the report.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

from flufl.bounce import all_failures

HARD = "hard"
SOFT = "soft"
COMPLAINT = "complaint"

BOUNCE = "bounce"
FEEDBACK = "complaint"
AUTOREPLY = "autoreply"
UNKNOWN = "unknown"

#: Headers naming where a report was delivered: the VERP return path it came back to.
_DELIVERED_TO = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MESSAGE_ID = re.compile(r"^message-id:[ \t]*(<[^>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)
_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
#: Out-of-office subjects: Outlook/Exchange, Gmail, Lithuanian clients.
_AWAY_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|autoreply"
    r"|vacation|away from|automatinis atsakymas|nesu darbe|atostogauju|atostogose)",
    re.IGNORECASE,
)
_MAX_DIAGNOSTIC = 300

# flufl.bounce logs every detector it runs at INFO.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Finding:
    """One recipient the report says failed (or complained)."""

    recipient: str  # lower-case address as the report names it
    kind: str  # HARD | SOFT | COMPLAINT
    status: str = ""  # RFC 3463 enhanced status, e.g. "5.1.1"
    diagnostic: str = ""  # one line: the remote server's words, or the complaint's type


@dataclass(frozen=True)
class Report:
    """What one message reports, and what leads back to the message it is about."""

    kind: str  # BOUNCE | FEEDBACK | AUTOREPLY | UNKNOWN
    fingerprint: str  # the report's own identity: its Message-ID, else its bytes' SHA-256
    findings: tuple[Finding, ...] = ()
    addressed_to: tuple[str, ...] = ()  # where it was delivered, and the original's Return-Path
    message_ids: tuple[str, ...] = ()  # Message-IDs of the original message quoted in it
    detector: str = ""  # "dsn", "arf" or the flufl.bounce detector that found it
    notes: list[str] = field(default_factory=list, compare=False)


def read_report(raw: bytes) -> Report:
    """Read one message; never raises (a message that cannot be read is ``UNKNOWN``)."""
    fingerprint = _fingerprint(raw)
    try:
        message = email.message_from_bytes(raw)
        return _classify(message, raw, fingerprint)
    except Exception as exc:  # a broken message must never stop a mailbox run
        return Report(UNKNOWN, fingerprint, notes=[f"unreadable: {type(exc).__name__}"])


def _fingerprint(raw: bytes) -> str:
    """The report's Message-ID (a DSN read twice has the same one), else its bytes' hash."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = _MESSAGE_ID.search(head.decode("latin-1"))
    identity = found.group(1).encode("latin-1") if found else raw
    return hashlib.sha256(identity).hexdigest()


def _classify(message: Message, raw: bytes, fingerprint: str) -> Report:
    original = _original_headers(message)
    addressed_to = _addressed_to(message, original)
    message_ids = _quoted_message_ids(message, raw, original)
    leads = {"addressed_to": addressed_to, "message_ids": message_ids}
    report_type = message.get_param("report-type", "", header="content-type")
    report_type = (
        str(report_type).lower() if message.get_content_type() == "multipart/report" else ""
    )
    if report_type == "delivery-status" or _part(message, "message/delivery-status"):
        return Report(BOUNCE, fingerprint, _dsn_findings(message), detector="dsn", **leads)
    if report_type == "feedback-report" or _part(message, "message/feedback-report"):
        found = _complaint(message, original)
        return Report(FEEDBACK, fingerprint, found, detector="arf", **leads)
    if _looks_automatic(message) and not _from_daemon(message):
        return Report(AUTOREPLY, fingerprint, **leads)
    found, detector = _detected(message)
    if found:
        return Report(BOUNCE, fingerprint, found, detector=detector, **leads)
    if _looks_automatic(message):
        return Report(AUTOREPLY, fingerprint, **leads)
    return Report(UNKNOWN, fingerprint, **leads)


# RFC 3464 ---------------------------------------------------------------------------


def _part(message: Message, content_type: str) -> Message | None:
    """The first part of this type anywhere in the message."""
    return next((p for p in message.walk() if p.get_content_type() == content_type), None)


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a ``message/delivery-status`` or ``feedback-report`` part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = part.get_payload(decode=True) or b""
    blocks = re.split(rb"\r?\n[ \t]*\r?\n", text.strip())
    return [email.message_from_bytes(block) for block in blocks if block.strip()]


def _dsn_findings(message: Message) -> tuple[Finding, ...]:
    """One finding per recipient whose Action is ``failed``."""
    part = _part(message, "message/delivery-status")
    if part is None:
        return ()
    found = []
    for block in _field_blocks(part)[1:] or _field_blocks(part):
        if str(block.get("action", "")).strip().lower() != "failed":
            continue
        recipient = _typed_address(block.get("final-recipient") or block.get("original-recipient"))
        if not recipient:
            continue
        status = _status(str(block.get("status", "")))
        diagnostic = _one_line(str(block.get("diagnostic-code", "")))
        kind = SOFT if status.startswith("4") else HARD
        found.append(Finding(recipient, kind, status or "5.0.0", diagnostic))
    return tuple(found)


def _typed_address(value: object) -> str:
    """``rfc822; ona@example.lt`` → ``ona@example.lt``."""
    text = str(value or "").strip()
    if ";" in text:
        kind, _, text = text.partition(";")
        if kind.strip().lower() not in ("rfc822", ""):
            return ""
    return _plain_address(text)


def _plain_address(text: str) -> str:
    addresses = [address for _, address in getaddresses([text]) if "@" in address]
    return addresses[0].strip().lower() if addresses else ""


def _status(text: str) -> str:
    found = _STATUS.search(text)
    return ".".join(found.groups()) if found else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_MAX_DIAGNOSTIC]


# RFC 5965 ---------------------------------------------------------------------------


def _complaint(message: Message, original: Message | None) -> tuple[Finding, ...]:
    """The complaining recipient: Original-Rcpt-To, else the quoted message's To."""
    part = _part(message, "message/feedback-report")
    fields = _field_blocks(part)[0] if part is not None and _field_blocks(part) else Message()
    feedback = _one_line(str(fields.get("feedback-type", "abuse"))).lower() or "abuse"
    recipient = _plain_address(str(fields.get("original-rcpt-to", "")))
    if not recipient and original is not None:
        recipient = _plain_address(str(original.get("to", "")))
    if not recipient:
        return ()
    agent = _one_line(str(fields.get("user-agent", "")))
    diagnostic = f"complaint ({feedback})" + (f" from {agent}" if agent else "")
    return (Finding(recipient, COMPLAINT, "", diagnostic[:_MAX_DIAGNOSTIC]),)


def _original_headers(message: Message) -> Message | None:
    """The headers of the original message a report quotes (message/rfc822 or rfc822-headers)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        if kind == "text/rfc822-headers":
            return email.message_from_bytes(part.get_payload(decode=True) or b"")
    return None


# What leads back to our message -------------------------------------------------------


def _addressed_to(message: Message, original: Message | None) -> tuple[str, ...]:
    """Where the report was delivered, and the quoted original's Return-Path (ARF)."""
    found: list[str] = []
    for name in _DELIVERED_TO:
        for value in message.get_all(name, []):
            found += [address.lower() for _, address in getaddresses([str(value)]) if address]
    if original is not None:
        found += [_plain_address(str(v)) for v in original.get_all("return-path", [])]
    feedback = _part(message, "message/feedback-report")
    for block in _field_blocks(feedback)[:1] if feedback is not None else ():
        found.append(_plain_address(str(block.get("original-mail-from", ""))))
    return tuple(dict.fromkeys(a for a in found if a))


def _quoted_message_ids(message: Message, raw: bytes, original: Message | None) -> tuple[str, ...]:
    """Message-IDs in the report other than its own: the original's, quoted back."""
    own = str(message.get("message-id", "")).strip()
    found = [str(original.get("message-id", "")).strip()] if original is not None else []
    # Bounces that quote the original as plain text (qmail, Exim, Exchange).
    body = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[-1][:200_000].decode("latin-1")
    found += _MESSAGE_ID.findall(body)
    return tuple(dict.fromkeys(m for m in found if m and m != own))


# Auto-replies --------------------------------------------------------------------------


def _looks_automatic(message: Message) -> bool:
    """RFC 3834 and the headers and subjects of common out-of-office replies."""
    submitted = str(message.get("auto-submitted", "")).strip().lower()
    precedence = str(message.get("precedence", "")).strip().lower()
    return (
        submitted.startswith("auto-")
        or bool(message.get("x-autoreply") or message.get("x-autorespond"))
        or precedence == "auto_reply"
        or bool(_AWAY_SUBJECT.match(_subject(message)))
    )


def _subject(message: Message) -> str:
    """The subject, RFC 2047 words decoded."""
    try:
        return str(make_header(decode_header(str(message.get("subject", "")))))
    except (ValueError, LookupError, UnicodeError):
        return str(message.get("subject", ""))


def _from_daemon(message: Message) -> bool:
    sender = _plain_address(str(message.get("from", "")))
    return bool(_DAEMON.match(sender)) or str(message.get("return-path", "")).strip() == "<>"


# Other formats: flufl.bounce -----------------------------------------------------------


def _detected(message: Message) -> tuple[tuple[Finding, ...], str]:
    """The failed addresses the flufl.bounce detectors find, with what the text says of each."""
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping over a strange message is no finding
        return (), ""
    text = _body_text(message)
    found = []
    for addresses, kind in ((permanent, HARD), (temporary - permanent, SOFT)):
        for raw_address in sorted(addresses):
            address = raw_address.decode("ascii", "replace").strip().strip("<>").lower()
            if "@" not in address:
                continue
            diagnostic = _said_of(text, address)
            status = _status(diagnostic) or ("5.0.0" if kind == HARD else "4.0.0")
            if kind == HARD and status.startswith("4"):
                status = "5.0.0"
            found.append(Finding(address, kind, status, diagnostic))
    return tuple(found), "flufl.bounce"


def _body_text(message: Message) -> str:
    """The text parts, decoded, up to 200 KB (enough for any bounce's explanation)."""
    chunks = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            data = part.get_payload(decode=True) or b""
            chunks.append(data.decode(part.get_content_charset() or "latin-1", "replace"))
    return "\n".join(chunks)[:200_000]


def _said_of(text: str, address: str) -> str:
    """What the bounce says of the address: the first line near it with an SMTP status.

    Else the line after the one naming it (qmail, Exim and Exchange put the remote
    server's words there).
    """
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if address not in line.lower():
            continue
        near = [x.strip() for x in lines[index : index + 5] if x.strip()]
        with_status = [x for x in near if _STATUS.search(x) or re.match(r"[45]\d\d\b", x)]
        return _one_line((with_status or near[1:2] or near)[0])
    return ""
