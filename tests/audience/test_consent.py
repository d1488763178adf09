"""Unsubscribing, preferences and bounces change consent once and leave an event each."""

from __future__ import annotations

from sqlalchemy import select

from newsletter import db
from newsletter.audience.subscribers import (
    email_hmac,
    is_suppressed,
    record_bounce,
    set_preferences,
    take_write_lock,
    unsubscribe,
)
from newsletter.models import ConsentEvent, Membership, Subscriber, Suppression
from tests.audience.factories import add_list, add_subscriber

KEY = b"test-secret-key-0123456789abcdef"
EMAIL = "meras@kaunas.example"


def _setup(database_url: str) -> tuple[int, int, int]:
    with db.transaction(database_url) as s:
        towns, libraries = add_list(s, "savivaldybes"), add_list(s, "bibliotekos")
        person = add_subscriber(s, EMAIL, {towns: "active", libraries: "active"})
        return person.id, towns.id, libraries.id


def _state(database_url: str, person: int) -> tuple[str, dict[int, str], list[str], bool]:
    with db.transaction(database_url) as s:
        subscriber = s.get(Subscriber, person)
        memberships = {m.list_id: m.status for m in s.scalars(select(Membership))}
        kinds = list(s.scalars(select(ConsentEvent.kind).order_by(ConsentEvent.id)))
        return subscriber.status, memberships, kinds, is_suppressed(s, KEY, EMAIL.upper())


def test_unsubscribe_from_one_list_keeps_the_row_and_is_idempotent(database_url: str) -> None:
    person, towns, libraries = _setup(database_url)
    for expected in (True, False):
        with db.transaction(database_url) as s:
            assert unsubscribe(s, KEY, person, towns, "web") is expected
    status, memberships, kinds, suppressed = _state(database_url, person)
    assert (status, memberships) == ("active", {towns: "unsubscribed", libraries: "active"})
    assert kinds == ["unsubscribe"] and not suppressed


def test_unsubscribe_from_all_suppresses_the_address(database_url: str) -> None:
    person, towns, libraries = _setup(database_url)
    for expected in (True, False):
        with db.transaction(database_url) as s:
            assert unsubscribe(s, KEY, person, None, "one-click") is expected
    status, memberships, kinds, suppressed = _state(database_url, person)
    assert status == "unsubscribed"
    assert memberships == {towns: "unsubscribed", libraries: "unsubscribed"}
    assert kinds == ["unsubscribe"] and suppressed
    with db.transaction(database_url) as s:
        event = s.scalar(select(ConsentEvent))
        assert (event.source, event.list_id, event.detail) == ("one-click", None, {"scope": "all"})


def test_unsubscribe_from_a_list_never_joined_is_remembered(database_url: str) -> None:
    person, _, _ = _setup(database_url)
    with db.transaction(database_url) as s:
        other = add_list(s, "partneriai").id
        assert unsubscribe(s, KEY, person, other, "web")
    assert _state(database_url, person)[1][other] == "unsubscribed"


def test_unknown_subscriber_or_list_changes_nothing(database_url: str) -> None:
    person, towns, _ = _setup(database_url)
    with db.transaction(database_url) as s:
        assert not unsubscribe(s, KEY, person + 1000, towns, "web")
        assert not unsubscribe(s, KEY, person, towns + 1000, "web")
    assert _state(database_url, person)[2] == []


def test_preferences_choose_lists_and_can_undo_an_unsubscribe_from_all(database_url: str) -> None:
    person, towns, libraries = _setup(database_url)
    with db.transaction(database_url) as s:
        unsubscribe(s, KEY, person, None, "web")
    with db.transaction(database_url) as s:
        assert set_preferences(s, KEY, person, [libraries, 999], "preferences page")
    status, memberships, kinds, suppressed = _state(database_url, person)
    assert (status, suppressed) == ("active", False)
    assert memberships == {towns: "unsubscribed", libraries: "active"}
    assert kinds == ["unsubscribe", "preferences"]
    with db.transaction(database_url) as s:
        assert not set_preferences(s, KEY, person, [libraries], "preferences page")


def test_bounces_count_up_to_the_threshold_then_suppress(database_url: str) -> None:
    person, towns, _ = _setup(database_url)
    for _ in range(2):
        with db.transaction(database_url) as s:
            record_bounce(s, KEY, person, 3, "550 5.1.1 user unknown")
    assert _state(database_url, person)[0] == "active"
    for _ in range(2):
        with db.transaction(database_url) as s:
            record_bounce(s, KEY, person, 3, "550 5.1.1 user unknown")
    status, _, kinds, suppressed = _state(database_url, person)
    assert (status, kinds, suppressed) == ("bounced", ["bounce"], True)
    with db.transaction(database_url) as s:
        assert s.get(Subscriber, person).bounce_count == 4
        assert s.scalar(select(Suppression.reason)) == "bounced"
        assert s.scalar(select(Suppression.email_hmac)) == email_hmac(KEY, EMAIL)
        assert not set_preferences(s, KEY, person, [towns], "preferences page")
        record_bounce(s, KEY, 10**6, 1, "for an erased subscriber: nothing to do")


def test_consent_changes_take_the_sqlite_write_lock_before_reading(settings) -> None:  # type: ignore[no-untyped-def]
    """A read-then-write SQLite transaction fails at once if another connection commits
    in between; unsubscribe and set_preferences become writers before they read."""
    import sqlite3

    from sqlalchemy.engine import make_url

    url = settings.database
    db.migrate(url)
    person, towns, _ = _setup(url)
    other = sqlite3.connect(make_url(url).database or "", timeout=0.1, isolation_level=None)

    def locked_out() -> bool:
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        other.execute("ROLLBACK")
        return False

    try:
        calls = [
            lambda s: take_write_lock(s),
            # An unknown subscriber: nothing is written, so the lock came first.
            lambda s: unsubscribe(s, KEY, person + 1000, towns, "web"),
            lambda s: set_preferences(s, KEY, person + 1000, [towns], "web"),
        ]
        for call in calls:
            with db.transaction(url) as session:
                call(session)
                assert locked_out()
            assert not locked_out()
    finally:
        other.close()
