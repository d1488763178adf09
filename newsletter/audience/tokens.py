"""Unsubscribe and preferences tokens: short, URL-safe, signed with the instance's secret.

A token is ``base64url(version || varint(subscriber_id) || varint(list_id or 0) || mac)``
where ``mac`` is the first 16 bytes (128 bits) of HMAC-SHA256 under a key derived
from the secret for this purpose only. Nothing is stored: a token is checked by
recomputing its MAC, so it cannot be forged or guessed without the secret, and it
works for as long as the secret is kept (old newsletters' links keep working).

``read_token`` answers ``None`` for every bad token alike (garbage, tampered, wrong
key, non-canonical spelling), so a page can behave the same for all of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from newsletter.settings import Settings

_VERSION = 1
_MAC_BYTES = 16
_ALPHABET = re.compile(r"[A-Za-z0-9_-]{20,64}")


def _token_key(key: bytes) -> bytes:
    """Derive the token key, so a token MAC can never double as an address HMAC."""
    return hmac.new(key, b"newsletter/token/v1", hashlib.sha256).digest()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, start: int) -> tuple[int, int]:
    """Return (value, next offset); ValueError on truncated or over-long input."""
    value = shift = 0
    for offset in range(start, min(len(data), start + 9)):
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset + 1
        shift += 7
    raise ValueError("bad varint")


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(_token_key(key), payload, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(key: bytes, subscriber_id: int, list_id: int | None) -> str:
    """Return a signed token naming a subscriber and a list (None: all lists), ~30 chars."""
    if subscriber_id < 1 or (list_id is not None and list_id < 1):
        raise ValueError("ids in a token must be positive")
    payload = bytes([_VERSION]) + _varint(subscriber_id) + _varint(list_id or 0)
    return base64.urlsafe_b64encode(payload + _mac(key, payload)).rstrip(b"=").decode("ascii")


def read_token(key: bytes, token: str) -> tuple[int, int | None] | None:
    """Return (subscriber_id, list_id or None) for a genuine token, else None; never raises."""
    try:
        if not isinstance(token, str) or not _ALPHABET.fullmatch(token):
            return None
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        # Several spellings can decode to the same bytes (unused trailing bits): accept
        # only the one make_token produces.
        if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != token:
            return None
        payload, mac = data[:-_MAC_BYTES], data[-_MAC_BYTES:]
        if not payload or not hmac.compare_digest(mac, _mac(key, payload)):
            return None
        if payload[0] != _VERSION:
            return None
        subscriber_id, offset = _read_varint(payload, 1)
        list_id, offset = _read_varint(payload, offset)
        if offset != len(payload) or subscriber_id < 1:
            return None
        return subscriber_id, list_id or None
    except (ValueError, TypeError, binascii.Error):
        return None


def unsubscribe_url(settings: Settings, token: str) -> str:
    """The one-click unsubscribe page for ``token``."""
    return f"{settings.base_url.rstrip('/')}/u/{token}"


def preferences_url(settings: Settings, token: str) -> str:
    """The preferences page for ``token``."""
    return f"{settings.base_url.rstrip('/')}/p/{token}"


def view_url(settings: Settings, campaign_id: int, token: str) -> str:
    """The view-in-browser page of a campaign for ``token``."""
    return f"{settings.base_url.rstrip('/')}/v/{campaign_id}/{token}"
