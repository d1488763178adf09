"""Addresses are stored in one spelling, suppressed by keyed HMAC, and lists are named by slug."""

from __future__ import annotations

import pytest

from newsletter import db
from newsletter.audience.subscribers import email_hmac, normalise_email, resolve_lists
from newsletter.errors import InputError, NotFoundError
from tests.audience.factories import add_list

KEY = b"test-secret-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Jonas.Petraitis@Kaunas.Example", "jonas.petraitis@kaunas.example"),
        ("  ona@vilnius.example \t", "ona@vilnius.example"),
        ("meras@Šalčininkai.example", "meras@xn--alininkai-mfb53g.example"),
        ("meras@xn--alininkai-mfb53g.example", "meras@xn--alininkai-mfb53g.example"),
    ],
)
def test_normalise_lowercases_and_punycodes_the_domain(given: str, stored: str) -> None:
    assert normalise_email(given) == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("ne-adresas", "@-sign"),
        ("jūratė@vilnius.example", "Internationalized characters before the @-sign"),
        ("a@b", "period"),
        ("x@y.test", "special-use"),
        ("ona@vilnius.example\nBcc: x@y.example", "control character"),
        ("", "empty"),
    ],
)
def test_invalid_addresses_raise_input_error_with_the_reason(given: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        normalise_email(given)


def test_hmac_is_keyed_hex_sha256_and_case_insensitive_after_normalising() -> None:
    one = email_hmac(KEY, normalise_email("Ona@Vilnius.example"))
    assert one == email_hmac(KEY, normalise_email("ona@VILNIUS.EXAMPLE"))
    assert len(one) == 64 and int(one, 16) >= 0
    assert one != email_hmac(b"another-key", "ona@vilnius.example")


def test_resolve_lists_keeps_order_and_names_an_unknown_slug(database_url: str) -> None:
    with db.transaction(database_url) as session:
        add_list(session, "savivaldybes")
        add_list(session, "bibliotekos")
    with db.transaction(database_url) as session:
        found = resolve_lists(session, ["bibliotekos", "savivaldybes", "bibliotekos"])
        assert [m.slug for m in found] == ["bibliotekos", "savivaldybes"]
        with pytest.raises(
            NotFoundError, match="no list 'remejai'; lists: bibliotekos, savivaldybes"
        ):
            resolve_lists(session, ["savivaldybes", "remejai"])


def _outcome(normalise: object, text: str) -> str:
    try:
        return normalise(text)  # type: ignore[operator,no-any-return]
    except InputError as exc:
        return f"error: {exc}"


def test_the_cached_fast_path_agrees_with_the_full_check() -> None:
    import random

    from newsletter.audience.subscribers import validated_email

    curated = [
        "a@b.example",
        "A.B+tag@Sub.Example",
        "a..b@x.example",
        ".a@x.example",
        "a.@x.example",
        '"quoted@local"@x.example',
        "a@-x.example",
        "a@x-.example",
        "a@x..example",
        "a@x.example.",
        "a@123.example",
        "a@x.123",
        "a@[127.0.0.1]",
        "a@localhost",
        "a@x.test",
        "a@šalčininkai.example",
        "a@xn--bad-.example",
        "x" * 64 + "@x.example",
        "x" * 65 + "@x.example",
        "a@" + "x" * 63 + ".example",
        "a@" + "x" * 64 + ".example",
        "a@" + ".".join(["x" * 60] * 4) + ".example",
        "a@b@c.example",
        "a b@c.example",
        "ą@c.example",
        "a@c.exa_mple",
    ]
    rng = random.Random(7)
    domains = ["x.example", "Šalčininkai.Example", "x..example", "-x.example", "x.test", "a", ""]
    locals_ = "ab.-_+\"'!Šx1 @"
    generated = [
        "".join(rng.choice(locals_) for _ in range(rng.randint(0, 8))) + "@" + rng.choice(domains)
        for _ in range(3000)
    ]
    accepted = 0
    for text in [t for t in curated + generated if t.strip()]:
        outcome = _outcome(normalise_email, text)
        assert outcome == _outcome(validated_email, text.strip()), text
        accepted += not outcome.startswith("error")
    assert accepted > 150  # both paths were exercised
