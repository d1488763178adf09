"""Unsubscribing, preferences and bounces change consent once and leave an event each."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from newsletter import db
from newsletter.audience.subscribers import (
    _SqliteLeaves,
    email_hmac,
    is_suppressed,
    leave_list_at_once,
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


def _queued_behind_a_writer(url: str, calls: list[tuple[int, int]]) -> list[Future[bool]]:
    """Start ``leave_list_at_once`` for each call while this thread holds the writer turn.

    Returns once all of them wait: the first for the turn, the others queued behind it.
    """
    queue = _SqliteLeaves.of(url)
    pool = ThreadPoolExecutor(max_workers=len(calls))
    futures = []
    for number, (person, list_id) in enumerate(calls):
        futures.append(pool.submit(leave_list_at_once, url, person, list_id, "one-click"))
        # The first takes its batch (itself) out of the queue and waits for the turn; the
        # others stay in the queue.
        deadline = time.monotonic() + 30
        while not (queue.writing and len(queue.queue) == number):
            assert time.monotonic() < deadline, "the calls did not queue"
            time.sleep(0.001)
    pool.shutdown(wait=False)
    return futures


def test_concurrent_one_clicks_on_sqlite_share_one_commit(settings) -> None:  # type: ignore[no-untyped-def]
    """Calls arriving while a batch is written go together in the next, one event each."""
    url = settings.database
    db.migrate(url)
    with db.transaction(url) as s:
        towns = add_list(s, "savivaldybes")
        people = [add_subscriber(s, f"p{n}@kaunas.example", {towns: "active"}).id for n in range(6)]
        towns_id = towns.id
    commits: list[object] = []
    engine = db.engine_for(url)

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(engine, "commit", count)
    try:
        with db._writer_turn(url):
            # people[1] twice, as a provider's retry arriving at once
            calls = [(p, towns_id) for p in people] + [(people[1], towns_id)]
            futures = _queued_behind_a_writer(url, calls)
        answers = [future.result(timeout=30) for future in futures]
    finally:
        event.remove(engine, "commit", count)
    assert answers.count(True) == len(people)  # the retry finds nothing left to mark
    assert len(commits) == 2  # the first call alone, then the six queued behind it
    with db.transaction(url) as s:
        assert set(s.scalars(select(Membership.status))) == {"unsubscribed"}
        recorded = s.scalars(
            select(ConsentEvent.subscriber_id).where(ConsentEvent.kind == "unsubscribe")
        )
        assert sorted(recorded) == sorted(people)


def test_a_failed_sqlite_batch_fails_every_caller_and_the_next_still_writes(settings) -> None:  # type: ignore[no-untyped-def]
    url = settings.database
    db.migrate(url)
    with db.transaction(url) as s:
        towns = add_list(s, "savivaldybes")
        people = [add_subscriber(s, f"p{n}@kaunas.example", {towns: "active"}).id for n in range(3)]
        towns_id = towns.id
    with db.engine_for(url).begin() as connection:
        connection.exec_driver_sql("ALTER TABLE consent_events RENAME TO consent_events_away")
    with db._writer_turn(url):
        futures = _queued_behind_a_writer(url, [(p, towns_id) for p in people])
    for future in futures:
        with pytest.raises(OperationalError, match="consent_events"):
            future.result(timeout=30)
    with db.engine_for(url).begin() as connection:
        connection.exec_driver_sql("ALTER TABLE consent_events_away RENAME TO consent_events")
    with db.transaction(url) as s:  # nothing half-written: the memberships rolled back too
        assert set(s.scalars(select(Membership.status))) == {"active"}
    assert leave_list_at_once(url, people[0], towns_id, "one-click")
    assert not leave_list_at_once(url, people[0], towns_id, "one-click")
