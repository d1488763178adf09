"""Unsubscribe tokens cannot be forged, guessed or altered, and bad ones all look alike."""

from __future__ import annotations

import base64
import string

import pytest

from newsletter.audience.tokens import (
    make_token,
    preferences_url,
    read_token,
    unsubscribe_url,
    view_url,
)
from newsletter.settings import Settings

KEY = b"test-secret-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("subscriber_id", "list_id"), [(1, None), (1, 1), (127, 128), (2**31 - 1, 2**31 - 1)]
)
def test_round_trip_is_short_and_url_safe(subscriber_id: int, list_id: int | None) -> None:
    token = make_token(KEY, subscriber_id, list_id)
    assert read_token(KEY, token) == (subscriber_id, list_id)
    assert len(token) <= 40
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")


def test_every_single_character_change_is_refused() -> None:
    token = make_token(KEY, 42, 7)
    alphabet = string.ascii_letters + string.digits + "-_"
    for position in range(len(token)):
        for char in alphabet:
            if char != token[position]:
                forged = token[:position] + char + token[position + 1 :]
                assert read_token(KEY, forged) is None, forged


def test_a_token_for_another_subscriber_cannot_be_made_from_a_genuine_one() -> None:
    genuine = base64.urlsafe_b64decode(make_token(KEY, 42, 7) + "==")
    # Same MAC, payload pointing at subscriber 43: the MAC no longer matches.
    forged_payload = bytes([1, 43, 7]) + genuine[3:]
    forged = base64.urlsafe_b64encode(forged_payload).rstrip(b"=").decode()
    assert read_token(KEY, forged) is None
    assert read_token(b"another-instance-key", make_token(KEY, 42, 7)) is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "x",
        "a" * 36,
        "a" * 500,
        "../../etc/passwd",
        "AQEB" + "A" * 30 + "=",
        "🙂" * 30,
        None,
        42,
    ],
)
def test_garbage_is_none_and_never_raises(garbage: object) -> None:
    assert read_token(KEY, garbage) is None  # type: ignore[arg-type]


def test_a_non_canonical_spelling_of_a_genuine_token_is_refused() -> None:
    token = make_token(KEY, 5, None)
    data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(data) % 3 != 0  # the last character carries unused bits
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    twins = [
        token[:-1] + c
        for c in alphabet
        if c != token[-1]
        and base64.urlsafe_b64decode(token[:-1] + c + "=" * (-len(token) % 4)) == data
    ]
    assert twins
    assert all(read_token(KEY, twin) is None for twin in twins)


def test_urls(settings: Settings) -> None:
    token = make_token(settings.key(), 3, 2)
    base = "https://naujienos.bibliotekos-pazangai.example"
    assert unsubscribe_url(settings, token) == f"{base}/u/{token}"
    assert preferences_url(settings, token) == f"{base}/p/{token}"
    assert view_url(settings, 12, token) == f"{base}/v/12/{token}"
