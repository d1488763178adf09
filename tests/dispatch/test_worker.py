"""Real Celery worker processes, a real Redis and a real SMTP server: the faults that matter.

Each test starts ``celery worker --pool=prefork -c 1`` (with beat, which runs the
reconciler tick) as a subprocess in its own process group, against a SQLite file in WAL
mode (or PostgreSQL), a private redis-server and an SMTP sink on loopback. Waits are
bounded and say what they waited for; nothing here asserts on speed.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select

from newsletter.audience.subscribers import unsubscribe
from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.dispatch import campaign, outbox
from newsletter.dispatch.sender import ROWS_HELD
from newsletter.dispatch.tasks import CeleryBroker, make_app
from newsletter.models import OutboxRow, Subscriber, utcnow
from newsletter.settings import Settings
from tests.dispatch.conftest import WorkerFactory
from tests.dispatch.support import (
    EveryBatchTwice,
    Worker,
    add_people,
    message_ids_by_address,
    outcome_summary,
    recipients_of,
    rows,
    states,
    wait_until,
)
from tests.support.services import RedisServer
from tests.support.smtp import SmtpSink

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _campaign(settings: Settings, issue: CompiledIssue, people: int) -> int:
    add_people(settings.database, people)
    return campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id


def _wait_done(settings: Settings, campaign_id: int, worker: Worker, timeout: float = 90) -> None:
    def done() -> bool:
        return campaign.progress(settings, campaign_id).status == "done"

    wait_until(
        done,
        timeout,
        lambda: (
            f"campaign not done: {outcome_summary(settings.database, campaign_id)}\n"
            f"worker log:\n{worker.tail()}"
        ),
        interval=0.2,
    )


def _exactly_once(sink: SmtpSink, settings: Settings, campaign_id: int) -> None:
    expected = {row.email for row in rows(settings.database, campaign_id)}
    copies = recipients_of(sink.received)
    missing = expected - set(copies)
    twice = {address: n for address, n in copies.items() if n > 1}
    assert not missing, f"{len(missing)} recipients never got the issue"
    assert not twice, f"sent more than once: {twice}"
    assert set(copies) == expected


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_500_recipients_each_get_it_exactly_once(
    database: str,
    request: pytest.FixtureRequest,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    base: Settings = request.getfixturevalue(
        f"{'sqlite' if database == 'sqlite' else 'postgres'}_fast"
    )
    settings = base.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url)
    campaign_id = _campaign(settings, issue, 500)
    worker = start_worker(settings)
    _wait_done(settings, campaign_id, worker)
    _exactly_once(smtp_sink, settings, campaign_id)
    assert states(settings.database, campaign_id) == {"sent": 500}
    assert len(smtp_sink.received) == 500


def test_kill_9_of_the_worker_loses_nobody_and_reports_each_possible_duplicate(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    patient_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=patient_sink.url)
    campaign_id = _campaign(settings, issue, 200)
    # Message 61 stalls: the server has it but has not answered when the worker dies,
    # the one window no sender can close.
    patient_sink.handler.slow_seconds = 3.0
    patient_sink.fail_next(*["250"] * 60, "slow")
    worker = start_worker(settings)
    wait_until(lambda: not patient_sink.handler.script, 60, lambda: worker.tail())
    worker.kill()
    caught = [row.email for row in rows(settings.database, campaign_id) if row.state == "sending"]
    sent_before = len(patient_sink.received)
    worker.start()
    _wait_done(settings, campaign_id, worker)

    copies = recipients_of(patient_sink.received)
    duplicates = {address: n - 1 for address, n in copies.items() if n > 1}
    assert set(copies) == {row.email for row in rows(settings.database, campaign_id)}, (
        "nobody missing"
    )
    assert sum(duplicates.values()) <= len(caught), (duplicates, caught)
    assert set(duplicates) <= set(caught)
    ids = message_ids_by_address(patient_sink.received)
    assert all(len(set(ids[address])) == 1 for address in duplicates), (
        "a pair shares its Message-ID"
    )
    report = {line.email: line.outcome for line in campaign.report(settings, campaign_id)}
    assert all(report[address] == "uncertain (possible duplicate)" for address in duplicates)
    # The rows held are reported; of them, only the stalled message went out twice.
    assert 1 <= len(caught) <= ROWS_HELD and len(duplicates) == 1, (caught, duplicates)
    print(
        f"kill -9 (stalled reply): delivered before kill {sent_before}, sending at kill "
        f"{len(caught)}, duplicates {sum(duplicates.values())}, received {len(patient_sink.received)}"
    )


def test_kill_9_at_full_speed_then_restart(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url)
    campaign_id = _campaign(settings, issue, 300)
    worker = start_worker(settings)
    wait_until(lambda: len(smtp_sink.received) >= 80, 60, lambda: worker.tail())
    worker.kill()
    caught = {row.email for row in rows(settings.database, campaign_id) if row.state == "sending"}
    worker.start()
    _wait_done(settings, campaign_id, worker)
    copies = recipients_of(smtp_sink.received)
    duplicates = {address for address, n in copies.items() if n > 1}
    assert len(copies) == 300, "nobody missing"
    assert duplicates <= caught and sum(copies.values()) - 300 <= len(caught)
    report = {line.email: line.outcome for line in campaign.report(settings, campaign_id)}
    assert all(report[address] == "uncertain (possible duplicate)" for address in duplicates)
    ids = message_ids_by_address(smtp_sink.received)
    assert all(len(set(ids[address])) == 1 for address in duplicates)
    print(
        f"kill -9 (full speed): sending at kill {len(caught)}, duplicates {len(duplicates)}, "
        f"received {len(smtp_sink.received)} for 300"
    )


def test_redis_killed_and_restarted_empty_the_reconciler_finishes(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    patient_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=patient_sink.url)
    campaign_id = _campaign(settings, issue, 200)
    patient_sink.handler.slow_seconds = 2.0  # hold the worker mid-campaign while Redis dies
    patient_sink.fail_next(*["250"] * 30, "slow")
    worker = start_worker(settings)
    wait_until(lambda: not patient_sink.handler.script, 60, lambda: worker.tail())
    with redis.Redis.from_url(redis_server.url) as client:
        queued_in_redis = client.llen("newsletter.send")
    sending = sum(row.state == "sending" for row in rows(settings.database, campaign_id))
    redis_server.kill()  # no persistence: every queued task is gone
    restarted = utcnow()
    redis_server.start()
    _wait_done(settings, campaign_id, worker, timeout=120)
    copies = recipients_of(patient_sink.received)
    assert len(copies) == 200, "nobody missing"
    assert sum(copies.values()) - 200 <= sending
    assert queued_in_redis > 0, "tasks were waiting in Redis when it died"
    handed_again = [
        row
        for row in rows(settings.database, campaign_id)
        if row.enqueued_at is not None and outbox.aware(row.enqueued_at) > restarted
    ]
    assert handed_again, "the reconciler handed the lost rows out again"
    print(
        f"redis restart: tasks lost in Redis {queued_in_redis}, rows handed out again "
        f"{len(handed_again)}, sending at kill {sending}, received {len(patient_sink.received)}"
    )


def test_two_workers_racing_for_the_same_rows_send_each_once(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url)
    campaign_id = _campaign(settings, issue, 300)
    first = start_worker(settings, "w1", beat=False)
    second = start_worker(settings, "w2", beat=False)
    for worker in (first, second):
        wait_until(lambda w=worker: "ready." in w.tail(200), 60, lambda w=worker: w.tail())

    app = make_app(settings)
    try:
        campaign.tick(settings, EveryBatchTwice(CeleryBroker(app)))
    finally:
        app.close()
    wait_until(lambda: len(smtp_sink.received) >= 300, 90, lambda: first.tail() + second.tail())
    time.sleep(0.5)
    _exactly_once(smtp_sink, settings, campaign_id)
    by_worker = [
        sum(map(int, re.findall(r"send_rows\[.*\] succeeded in .*?: (\d+)", w.tail(10_000))))
        for w in (first, second)
    ]
    assert sum(by_worker) == 300, by_worker
    assert all(count > 0 for count in by_worker), f"both workers sent: {by_worker}"
    print(f"two workers: sent by each {by_worker}, received {len(smtp_sink.received)} for 300")


def test_pause_stops_within_a_second_then_resume_finishes(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url, rate=40.0)
    campaign_id = _campaign(settings, issue, 150)
    worker = start_worker(settings)
    wait_until(lambda: len(smtp_sink.received) >= 20, 60, lambda: worker.tail())
    campaign.pause(settings, campaign_id)
    at_pause = len(smtp_sink.received)
    time.sleep(1.0)
    after_grace = len(smtp_sink.received)
    time.sleep(2.0)
    later = len(smtp_sink.received)
    assert after_grace - at_pause <= 1, "only the message already in the worker's hands"
    assert later == after_grace, "nothing at all after the grace second"
    found = states(settings.database, campaign_id)
    assert found["sent"] == later and found["sending"] == 0 and found["queued"] == 150 - later
    print(f"pause: received at pause {at_pause}, after 1 s {after_grace}, after 3 s {later}")
    assert campaign.resume(settings, campaign_id) == "running"
    _wait_done(settings, campaign_id, worker)
    _exactly_once(smtp_sink, settings, campaign_id)


def test_cancel_leaves_the_rest_unsent(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url, rate=40.0)
    campaign_id = _campaign(settings, issue, 150)
    worker = start_worker(settings)
    wait_until(lambda: len(smtp_sink.received) >= 20, 60, lambda: worker.tail())
    campaign.cancel(settings, campaign_id)
    time.sleep(1.0)
    settled = len(smtp_sink.received)
    time.sleep(2.0)
    assert len(smtp_sink.received) == settled, "nothing after the cancel settled"
    found = states(settings.database, campaign_id)
    assert found["sent"] == settled and found["cancelled"] == 150 - settled
    assert campaign.progress(settings, campaign_id).status == "cancelled"
    assert max(recipients_of(smtp_sink.received).values()) == 1
    print(f"cancel: sent {settled}, cancelled {found['cancelled']}")


def test_an_unsubscribe_committed_mid_campaign_stops_mail_to_that_person(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url, rate=40.0)
    campaign_id = _campaign(settings, issue, 100)
    leaving = [row for row in rows(settings.database, campaign_id)][-5:]
    worker = start_worker(settings)
    wait_until(lambda: len(smtp_sink.received) >= 10, 60, lambda: worker.tail())
    with transaction(settings.database) as session:
        for row in leaving:
            unsubscribe(session, settings.key(), row.subscriber_id, None, "test")
    _wait_done(settings, campaign_id, worker)
    copies = recipients_of(smtp_sink.received)
    assert not {row.email for row in leaving} & set(copies)
    assert len(copies) == 95 and max(copies.values()) == 1
    assert states(settings.database, campaign_id) == Counter(sent=95, suppressed=5)


def test_refusals_bounces_and_late_replies_through_the_worker(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    patient_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(
        redis_url=redis_server.url, smtp_url=patient_sink.url, smtp_timeout=0.5
    )
    patient_sink.handler.slow_seconds = 1.5
    campaign_id = _campaign(settings, issue, 6)
    patient_sink.fail_next("421", "451", "550", "slow")
    worker = start_worker(settings)
    _wait_done(settings, campaign_id, worker)
    found = rows(settings.database, campaign_id)
    copies = recipients_of(patient_sink.received)
    retried, refused, bounced, late, *fine = found
    for row in (retried, refused):
        assert (row.state, row.attempts, copies[row.email]) == ("sent", 2, 1)
    assert (bounced.state, bounced.attempts, bounced.smtp_code) == ("failed", 1, 550)
    assert bounced.email not in copies
    with transaction(settings.database) as session:
        person = session.execute(
            select(Subscriber).where(Subscriber.id == bounced.subscriber_id)
        ).scalar_one()
        assert person.status == "bounced"
    assert (late.state, late.uncertain_before, copies[late.email]) == ("sent", True, 2)
    assert set(message_ids_by_address(patient_sink.received)[late.email]) == {late.message_id}
    assert all((row.state, copies[row.email]) == ("sent", 1) for row in fine)
    report = {line.email: line.outcome for line in campaign.report(settings, campaign_id)}
    assert report[late.email] == "uncertain (possible duplicate)"
    assert report[bounced.email] == "failed"
    assert outbox.SENT in report.values()
    with transaction(settings.database) as session:
        assert (
            session.execute(select(OutboxRow.state).where(OutboxRow.id == late.id)).scalar_one()
            == "sent"
        )


def test_the_worker_and_scheduler_commands_start_a_scheduled_campaign(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url)
    add_people(settings.database, 20)
    send_at = utcnow() + timedelta(seconds=3)
    created = campaign.create(settings, issue, ["savivaldybes"], {}, send_at=send_at)
    assert created.status == "scheduled"
    newsletter = [sys.executable, "-m", "newsletter"]
    worker = start_worker(settings, "worker", command=[*newsletter, "worker", "-c", "1"])
    scheduler = start_worker(settings, "scheduler", command=[*newsletter, "scheduler"])
    _wait_done(settings, created.campaign_id, worker)
    _exactly_once(smtp_sink, settings, created.campaign_id)
    first = min(outbox.aware(row.sent_at) for row in rows(settings.database, created.campaign_id))
    assert first is not None and first >= send_at, "nothing went out before its time"
    assert "beat: Starting" in scheduler.tail(200)


def test_a_worker_whose_links_would_not_work_sends_nothing_and_pauses_the_campaign(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url)
    campaign_id = _campaign(settings, issue, 5)  # created where the base URL is right
    worker = start_worker(settings, base_url="http://127.0.0.1:8000")  # the default
    wait_until(lambda: campaign.progress(settings, campaign_id).status == "paused", 60, worker.tail)
    reason = campaign.progress(settings, campaign_id).status_reason
    assert reason.startswith("stopped: NEWSLETTER_BASE_URL http://127.0.0.1:8000 is not https://")
    assert smtp_sink.received == [] and states(settings.database, campaign_id) == {"queued": 5}
    worker.kill()
    fixed = start_worker(settings, "w2")
    assert campaign.resume(settings, campaign_id) == "running"
    _wait_done(settings, campaign_id, fixed)
    _exactly_once(smtp_sink, settings, campaign_id)
