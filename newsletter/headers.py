"""Whether a text may go into a mail header: the one check, for the importer and the builder.

A value that will reach a header (a subscriber's name or address, a subject, a setting) is
checked with ``check_header_text`` wherever it enters: an imported list refuses the row,
``newsletter.delivery.message`` refuses to build the message. CR, LF, NUL and the other
control characters are refused, and so are encoded words that decode to them
(``=?UTF-8?Q?=0A?=Bcc:``, CVE-2024-6923, which CPython 3.11.7 still lets through): a
receiver decodes them and would see the line break. Values in, verdict out; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re

#: C0 and C1 controls, Unicode line/paragraph separators and lone surrogates: never allowed
#: in a value that may end up in a mail header (a line break there forges new headers).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?([^?\s]*)\?=")


class UnsafeValueError(ValueError):
    """A value cannot go into a header; the message says why (without the value)."""


def check_header_text(value: str) -> str:
    """Return ``value`` if it may go into a header, else raise ``UnsafeValueError``.

    Encoded words are decoded (up to three levels deep) and their text checked too,
    because a receiver decodes them and would see the line break.
    """
    text = value
    for _ in range(4):
        found = CONTROL_CHARACTERS.search(text)
        if found:
            raise UnsafeValueError(f"contains the control character U+{ord(found.group()):04X}")
        decoded = _ENCODED_WORD.sub(_decode_word, text) if "=?" in text else text
        if decoded == text:
            return value
        text = decoded
    raise UnsafeValueError("contains encoded words nested too deep")


def _decode_word(match: re.Match[str]) -> str:
    """Decode one RFC 2047 encoded word as a mail reader would."""
    charset, encoding, payload = match.groups()
    try:
        if encoding in "bB":
            raw = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
        else:
            raw = binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        raise UnsafeValueError("contains a malformed encoded word") from None
    try:
        return raw.decode(charset.split("*")[0] or "ascii", "replace")
    except LookupError:
        return raw.decode("latin-1")
