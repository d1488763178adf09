"""The outbox state machine on real SQLite and PostgreSQL: claims, fencing, leases, the reconciler."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from newsletter.audience.subscribers import erase_subscriber
from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.dispatch import campaign, outbox
from newsletter.models import Campaign, OutboxRow, utcnow
from newsletter.settings import Settings
from tests.dispatch.support import add_people, rows, states


class ListBroker:
    """Collects what the reconciler hands out."""

    def __init__(self, backlog: int = 0) -> None:
        self.published: list[tuple[int, list[int]]] = []
        self.waiting = backlog

    def publish(self, campaign_id: int, row_ids: list[int]) -> None:
        self.published.append((campaign_id, row_ids))

    def backlog(self) -> int:
        return self.waiting

    def ids(self) -> list[int]:
        return sorted(row_id for _, batch in self.published for row_id in batch)


def _campaign(settings: Settings, issue: CompiledIssue, people: int) -> int:
    add_people(settings.database, people)
    return campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id


def _claim(settings: Settings, row_id: int) -> outbox.Claim | None:
    with transaction(settings.database) as session:
        return outbox.claim(session, row_id, settings.lease_seconds)


def _age_leases(settings: Settings, campaign_id: int, seconds: float = 60) -> None:
    """Move every lease of the campaign into the past, as if the worker had died."""
    with transaction(settings.database) as session:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.campaign_id == campaign_id, OutboxRow.lease_until.is_not(None))
            .values(lease_until=utcnow() - timedelta(seconds=seconds))
        )


def test_racing_claims_take_each_row_exactly_once(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _campaign(fast, issue, 120)
    ids = [row.id for row in rows(fast.database, campaign_id)]
    won: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def racer() -> None:
        start.wait()
        for row_id in ids:
            held = _claim(fast, row_id)
            if held is not None:
                with lock:
                    won.append(held.row_id)

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == ids, "every row claimed once, by exactly one of four racing claimers"
    assert states(fast.database, campaign_id) == {"sending": 120}
    assert {row.attempts for row in rows(fast.database, campaign_id)} == {1}


def test_claim_needs_a_running_campaign_and_a_due_row(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _campaign(fast, issue, 2)
    first, second = (row.id for row in rows(fast.database, campaign_id))
    campaign.pause(fast, campaign_id)
    assert _claim(fast, first) is None
    campaign.resume(fast, campaign_id)
    with transaction(fast.database) as session:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == second)
            .values(not_before=utcnow() + timedelta(minutes=5))
        )
    assert _claim(fast, second) is None
    held = _claim(fast, first)
    assert held is not None and held.attempt == 1 and held.email.endswith("@savivaldybe.example")
    assert _claim(fast, first) is None, "a row in sending cannot be claimed again"


def test_a_result_is_fenced_by_its_attempt(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _campaign(fast, issue, 1)
    (row,) = rows(fast.database, campaign_id)
    old = _claim(fast, row.id)
    assert old is not None
    _age_leases(fast, campaign_id)
    with transaction(fast.database) as session:
        outbox.expire_leases(session, fast.max_attempts)
    new = _claim(fast, row.id)
    assert new is not None and new.attempt == 2 and new.uncertain_before
    with transaction(fast.database) as session:
        assert not outbox.mark_sent(session, old, "<old@x>", "250 late"), "stale attempt"
        assert outbox.mark_sent(session, new, "<new@x>", "250 2.0.0 OK")
    (row,) = rows(fast.database, campaign_id)
    assert (row.state, row.message_id, row.attempts, row.smtp_code) == ("sent", "<new@x>", 2, 250)
    assert row.uncertain_before and row.last_error == outbox.WORKER_LOST


def test_a_late_result_stands_when_nobody_claimed_again(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _campaign(fast, issue, 1)
    (row,) = rows(fast.database, campaign_id)
    held = _claim(fast, row.id)
    assert held is not None
    _age_leases(fast, campaign_id)
    with transaction(fast.database) as session:
        assert outbox.expire_leases(session, fast.max_attempts).requeued_lost == 1
    with transaction(fast.database) as session:
        assert outbox.mark_sent(session, held, "<m@x>", "250 OK")
    (row,) = rows(fast.database, campaign_id)
    assert row.state == "sent" and not row.uncertain_before and row.last_error == ""


def test_expired_leases_come_back_marked_and_attempts_are_capped(
    fast: Settings, issue: CompiledIssue
) -> None:
    settings = fast.replace(max_attempts=2)
    campaign_id = _campaign(settings, issue, 3)
    lost, timed_out, poison = (row.id for row in rows(settings.database, campaign_id))
    for row_id in (lost, timed_out, poison):
        assert _claim(settings, row_id) is not None
    with transaction(settings.database) as session:
        held = outbox.Claim(timed_out, campaign_id, None, None, "", 1, False)
        outbox.mark_uncertain(session, held, "no reply after DATA", "<t@x>", 5)
        session.execute(update(OutboxRow).where(OutboxRow.id == poison).values(attempts=2))
    _age_leases(settings, campaign_id)
    with transaction(settings.database) as session:
        done = outbox.expire_leases(session, settings.max_attempts)
    assert (done.requeued_lost, done.requeued_uncertain, done.exhausted) == (1, 1, 1)
    found = {row.id: row for row in rows(settings.database, campaign_id)}
    assert found[lost].state == "queued" and found[lost].uncertain_before
    assert found[lost].last_error == outbox.WORKER_LOST
    assert found[timed_out].state == "queued" and found[timed_out].uncertain_before
    assert found[poison].state == "uncertain" and found[poison].lease_until is None
    assert "gave up after 2 attempts" in found[poison].last_error


def test_a_second_unknown_outcome_is_final(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _campaign(fast, issue, 1)
    (row,) = rows(fast.database, campaign_id)
    held = _claim(fast, row.id)
    assert held is not None
    with transaction(fast.database) as session:
        outbox.mark_uncertain(session, held, "timeout", "<u@x>", fast.lease_seconds)
    _age_leases(fast, campaign_id)
    with transaction(fast.database) as session:
        outbox.expire_leases(session, fast.max_attempts)
    again = _claim(fast, row.id)
    assert again is not None and again.uncertain_before
    with transaction(fast.database) as session:
        outbox.mark_uncertain(session, again, "timeout again", "<u@x>", fast.lease_seconds)
    (row,) = rows(fast.database, campaign_id)
    assert row.state == "uncertain" and row.lease_until is None, "retried once, then reported"
    with transaction(fast.database) as session:
        assert outbox.finish_campaigns(session) == 1


def test_retries_back_off_with_jitter_until_attempts_run_out(
    fast: Settings, issue: CompiledIssue
) -> None:
    settings = fast.replace(max_attempts=3, retry_seconds=10.0)
    campaign_id = _campaign(settings, issue, 1)
    (row,) = rows(settings.database, campaign_id)
    for attempt, low, high in ((1, 5, 15), (2, 10, 30)):
        with transaction(settings.database) as session:
            session.execute(update(OutboxRow).where(OutboxRow.id == row.id).values(not_before=None))
        held = _claim(settings, row.id)
        assert held is not None and held.attempt == attempt
        before = utcnow()
        with transaction(settings.database) as session:
            outbox.mark_retry(session, held, "451 try later", max_attempts=3, base_seconds=10.0)
        (row,) = rows(settings.database, campaign_id)
        delay = (outbox.aware(row.not_before) - before).total_seconds()
        assert row.state == "queued" and low - 1 <= delay <= high + 1
    with transaction(settings.database) as session:
        session.execute(update(OutboxRow).where(OutboxRow.id == row.id).values(not_before=None))
    held = _claim(settings, row.id)
    assert held is not None
    with transaction(settings.database) as session:
        outbox.mark_retry(session, held, "451 try later", max_attempts=3, base_seconds=10.0)
    (row,) = rows(settings.database, campaign_id)
    assert row.state == "failed" and "gave up after 3 attempts" in row.last_error


def test_backoff_doubles_and_is_capped() -> None:
    import random

    rng = random.Random(7)
    delays = [outbox.backoff_seconds(n, 60, rng) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        nominal = min(outbox.MAX_BACKOFF_SECONDS, 60 * 2 ** (n - 1))
        assert 0.5 * nominal <= delay <= 1.5 * nominal


def test_reconciler_hands_out_due_rows_once_and_again_only_when_lost(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _campaign(fast, issue, 120)
    ids = [row.id for row in rows(fast.database, campaign_id)]
    first = ListBroker()
    done = campaign.tick(fast, first)
    assert first.ids() == ids and done.published == 120
    assert all(len(batch) <= outbox.BATCH_SIZE for _, batch in first.published)
    second = ListBroker()
    campaign.tick(fast, second)
    assert second.published == [], "handed out already and not stale"
    busy = ListBroker(backlog=3)
    campaign.tick(fast, busy, stale_after=0)
    assert busy.published == [], "the broker still holds work: nothing is stale yet"
    lost = ListBroker()
    campaign.tick(fast, lost, stale_after=0)
    assert lost.ids() == ids, "an empty broker after the stale age: everything again"


def test_reconciler_keeps_the_broker_backlog_bounded_and_hands_out_the_rest_later(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _campaign(fast, issue, 230)
    ids = [row.id for row in rows(fast.database, campaign_id)]
    first = ListBroker()
    done = campaign.tick(fast, first, max_backlog=2)
    assert done.published == 2 * outbox.BATCH_SIZE and first.ids() == ids[:100]
    topped = ListBroker(backlog=1)  # one of the two tasks still waits
    campaign.tick(fast, topped, max_backlog=2)
    assert topped.ids() == ids[100:150], "only room for one more task"
    full = ListBroker(backlog=2)
    campaign.tick(fast, full, max_backlog=2)
    assert full.published == [], "the broker is full"
    rest = ListBroker()
    campaign.tick(fast, rest, max_backlog=100, stale_after=3600)
    assert rest.ids() == ids[150:], "the rest, never handed out, and nothing twice"
    assert states(fast.database, campaign_id) == {"queued": 230}


def test_reconciler_skips_paused_and_future_rows_and_ends_cancelled(
    fast: Settings, issue: CompiledIssue
) -> None:
    paused = _campaign(fast, issue, 3)
    add_people(fast.database, 2, ["bibliotekos"], prefix="biblioteka")
    later = campaign.create(fast, issue, ["bibliotekos"], {}).campaign_id
    with transaction(fast.database) as session:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.campaign_id == later)
            .values(not_before=utcnow() + timedelta(minutes=1))
        )
    campaign.pause(fast, paused)
    broker = ListBroker()
    campaign.tick(fast, broker)
    assert broker.published == []
    assert campaign.cancel(fast, paused) == 3
    assert states(fast.database, paused) == {"cancelled": 3}


def test_campaign_is_done_only_when_nothing_can_be_attempted(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _campaign(fast, issue, 2)
    first, second = (row.id for row in rows(fast.database, campaign_id))
    for row_id in (first, second):
        _claim(fast, row_id)
    with transaction(fast.database) as session:
        held = outbox.Claim(first, campaign_id, None, None, "", 1, False)
        outbox.mark_sent(session, held, "<a@x>", "250 OK")
        assert outbox.finish_campaigns(session) == 0, "one row still sending"
        held = outbox.Claim(second, campaign_id, None, None, "", 1, False)
        outbox.mark_failed(session, held, "550 no such user", 550)
        assert outbox.finish_campaigns(session) == 1
    with transaction(fast.database) as session:
        found = session.get(Campaign, campaign_id)
        assert found is not None and found.status == "done" and found.finished_at is not None


def test_a_pass_hands_each_row_out_once_however_many_chunks(
    fast: Settings, issue: CompiledIssue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "RECONCILE_CHUNK", 10)
    campaign_id = _campaign(fast, issue, 25)
    broker = ListBroker()
    campaign.tick(fast, broker, stale_after=0)  # the in-process runner's setting
    assert broker.ids() == [row.id for row in rows(fast.database, campaign_id)]


@pytest.mark.parametrize("outcome", ["sent", "failed", "retry", "uncertain"])
def test_an_outcome_recorded_after_erasure_never_stores_the_address(
    fast: Settings, issue: CompiledIssue, outcome: str
) -> None:
    """The erasure ran between the claim and the server's answer, and nobody waited."""
    campaign_id = _campaign(fast, issue, 2)
    first, second = rows(fast.database, campaign_id)
    held, other = _claim(fast, first.id), _claim(fast, second.id)
    assert held is not None and other is not None
    with transaction(fast.database) as session:
        erasure = erase_subscriber(session, fast.key(), first.email.upper())
    assert erasure.in_flight == (first.id,)

    def quoting(address: str) -> str:
        return f"550 5.1.1 <{address.upper()}>: mailbox {address} unavailable"

    with transaction(fast.database) as session:
        for claim in (held, other):
            text = quoting(claim.email)
            if outcome == "sent":
                outbox.mark_sent(session, claim, "<id@x>", f"250 OK queued for <{claim.email}>")
            elif outcome == "failed":
                outbox.mark_failed(session, claim, f"SMTP {text}", 550, text)
            elif outcome == "retry":
                outbox.mark_retry(session, claim, text, max_attempts=5, base_seconds=1)
            else:
                outbox.mark_uncertain(session, claim, f"no reply for {claim.email}", "<id>", 5)
    erased, kept = rows(fast.database, campaign_id)
    assert erased.state == kept.state == {"retry": "queued"}.get(outcome, outcome)
    assert first.email not in (erased.smtp_reply + erased.last_error).lower()
    assert "[erased]" in erased.smtp_reply + erased.last_error
    assert second.email in kept.smtp_reply + kept.last_error, "the others' replies stay verbatim"


def test_a_send_time_with_an_offset_starts_at_that_moment(
    fast: Settings, issue: CompiledIssue
) -> None:
    from datetime import UTC, timezone

    add_people(fast.database, 3)
    vilnius = timezone(timedelta(hours=2))
    due = (utcnow() + timedelta(hours=1)).astimezone(vilnius)
    created = campaign.create(fast, issue, ["savivaldybes"], {}, send_at=due)
    assert created.status == "scheduled"
    with transaction(fast.database) as session:
        stored = outbox.aware(session.get(Campaign, created.campaign_id).send_at)
    assert stored == due, "the stored time is the same moment, not the same wall time"
    before, after = (due.astimezone(UTC) + timedelta(seconds=s) for s in (-60, 1))
    assert campaign.start_due(fast, now=before) == []
    assert campaign.start_due(fast, now=after) == [created.campaign_id]


def test_a_batch_claim_takes_only_claimable_rows_in_the_order_asked(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _campaign(fast, issue, 4)
    first, second, third, fourth = (row.id for row in rows(fast.database, campaign_id))
    assert _claim(fast, second) is not None  # held by another worker
    with transaction(fast.database) as session:
        taken = outbox.claim_many(session, [fourth, second, first], fast.lease_seconds)
    assert [held.row_id for held in taken] == [fourth, first]
    assert all(held.attempt == 1 for held in taken)
    with transaction(fast.database) as session:
        assert outbox.release(session, taken[0]), "a row never sent goes back"
    found = {row.id: row for row in rows(fast.database, campaign_id)}
    assert (found[fourth].state, found[fourth].attempts) == ("queued", 0)
    assert (found[first].state, found[third].state) == ("sending", "queued")


def test_batch_results_are_fenced_by_their_attempts(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _campaign(fast, issue, 3)
    ids = [row.id for row in rows(fast.database, campaign_id)]
    with transaction(fast.database) as session:
        held = outbox.claim_many(session, ids, fast.lease_seconds)
    _age_leases(fast, campaign_id)
    with transaction(fast.database) as session:
        outbox.expire_leases(session, fast.max_attempts)
    newer = _claim(fast, ids[0])  # another worker took the first row meanwhile
    assert newer is not None
    accepted = [(claim, f"<m{claim.row_id}@x>", "250 OK") for claim in held]
    with transaction(fast.database) as session:
        assert outbox.mark_sent_many(session, accepted) == 2
    found = {row.id: row for row in rows(fast.database, campaign_id)}
    assert found[ids[0]].state == "sending" and found[ids[0]].attempts == 2
    assert all(found[i].state == "sent" and not found[i].uncertain_before for i in ids[1:])
