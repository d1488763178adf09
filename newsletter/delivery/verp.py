"""VERP return paths: an envelope sender per message that names its outbox row, signed.

With ``NEWSLETTER_BOUNCE_ADDRESS=bounce@naujienos.example`` the message of outbox row 1234
goes out as ``MAIL FROM:<bounce+<token>@naujienos.example>``. A bounce comes back to that
address, so the token alone says which row (and so which campaign and recipient) failed,
whatever the bouncing server wrote about the address.

The token is ``base32(row_id || mac)`` (the id big-endian in as few bytes as it needs), lower case and without padding, where
``mac`` is the first 10 bytes (80 bits) of HMAC-SHA256 under a key derived for this use
only: nobody without the secret can make a token that names another row, so a forged
bounce cannot suppress anyone. Lower case, because some servers lower-case the local part
of the address they bounce to. At most 29 characters (a 63-bit row id), so the local
part stays within RFC 5321's 64 with a bounce local part of up to 32.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

_MAC_BYTES = 10
_TOKEN = re.compile(r"[a-z2-7]{18,29}")
MAX_TOKEN = 29


def _verp_key(key: bytes) -> bytes:
    """A key of its own, so a VERP MAC can never double as another token's."""
    return hmac.new(key, b"newsletter/verp/v1", hashlib.sha256).digest()


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(_verp_key(key), payload, hashlib.sha256).digest()[:_MAC_BYTES]


def verp_token(key: bytes, row_id: int) -> str:
    """The signed token naming outbox row ``row_id`` (18 characters up to row 255)."""
    if not 1 <= row_id < 2**63:
        raise ValueError("an outbox row id is positive and below 2**63")
    payload = row_id.to_bytes((row_id.bit_length() + 7) // 8, "big")
    encoded = base64.b32encode(payload + _mac(key, payload)).decode("ascii")
    return encoded.rstrip("=").lower()


def return_path(bounce_address: str, key: bytes, row_id: int) -> str:
    """``local+token@domain``: the envelope sender of row ``row_id``'s message."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{verp_token(key, row_id)}@{domain}"


def row_of(bounce_address: str, key: bytes, address: str) -> int | None:
    """The row a return path names, when it is ours and its token verifies; else None.

    Letter case is ignored (servers change it); anything else about the address, a
    token of another secret or a changed character gives None. Never raises.
    """
    local, _, domain = bounce_address.lower().rpartition("@")
    their_local, _, their_domain = address.strip().strip("<>").lower().rpartition("@")
    prefix, plus, token = their_local.partition("+")
    if (prefix, plus, their_domain) != (local, "+", domain) or not _TOKEN.fullmatch(token):
        return None
    try:
        data = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    except (binascii.Error, ValueError):
        return None
    payload, mac = data[:-_MAC_BYTES], data[-_MAC_BYTES:]
    if not payload or not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    row_id = int.from_bytes(payload, "big")
    if payload[0] == 0 or not 1 <= row_id < 2**63:  # only the spelling verp_token makes
        return None
    return row_id if verp_token(key, row_id) == token else None
