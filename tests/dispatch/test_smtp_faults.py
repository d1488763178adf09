"""The in-process runner against a real SMTP server on loopback that refuses, bounces or stalls."""

from __future__ import annotations

from sqlalchemy import select

from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.dispatch import campaign
from newsletter.dispatch.embedded import run_campaign
from newsletter.models import Subscriber
from newsletter.settings import Settings
from tests.dispatch.support import add_people, message_ids_by_address, recipients_of, rows
from tests.support.smtp import SmtpSink


def _start(settings: Settings, issue: CompiledIssue, people: int) -> int:
    add_people(settings.database, people)
    return campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id


def test_421_and_451_then_success_deliver_once(
    sqlite_fast: Settings, issue: CompiledIssue, smtp_sink: SmtpSink
) -> None:
    settings = sqlite_fast.replace(smtp_url=smtp_sink.url)
    campaign_id = _start(settings, issue, 4)
    smtp_sink.fail_next("421", "451")
    finished = run_campaign(settings, campaign_id)
    assert finished.status == "done" and finished.counts["sent"] == 4
    copies = recipients_of(smtp_sink.received)
    assert len(copies) == 4 and set(copies.values()) == {1}, "each recipient exactly once"
    attempts = sorted(row.attempts for row in rows(settings.database, campaign_id))
    assert attempts == [1, 1, 2, 2]
    retried = [row for row in rows(settings.database, campaign_id) if row.attempts == 2]
    assert {row.last_error[:8] for row in retried} == {"SMTP 421", "SMTP 451"}


def test_550_fails_without_retry_and_records_the_bounce(
    sqlite_fast: Settings, issue: CompiledIssue, smtp_sink: SmtpSink
) -> None:
    settings = sqlite_fast.replace(smtp_url=smtp_sink.url)
    campaign_id = _start(settings, issue, 3)
    smtp_sink.fail_next("550")
    finished = run_campaign(settings, campaign_id)
    assert (finished.counts["failed"], finished.counts["sent"]) == (1, 2)
    failed = rows(settings.database, campaign_id)[0]
    assert (failed.state, failed.attempts, failed.smtp_code) == ("failed", 1, 550)
    assert failed.email not in recipients_of(smtp_sink.received)
    with transaction(settings.database) as session:
        person = session.execute(
            select(Subscriber).where(Subscriber.id == failed.subscriber_id)
        ).scalar_one()
        assert (person.status, person.bounce_count) == ("bounced", 1)
    report = {line.email: line for line in campaign.report(settings, campaign_id)}
    assert report[failed.email].outcome == "failed" and "550" in report[failed.email].reason


def test_a_250_after_the_client_timed_out_is_uncertain_and_reported(
    sqlite_fast: Settings, issue: CompiledIssue, patient_sink: SmtpSink
) -> None:
    settings = sqlite_fast.replace(smtp_url=patient_sink.url, smtp_timeout=0.5)
    patient_sink.handler.slow_seconds = 1.5
    campaign_id = _start(settings, issue, 3)
    patient_sink.fail_next("slow")
    finished = run_campaign(settings, campaign_id)  # the uncertain row waits out its lease
    stalled = rows(settings.database, campaign_id)[0]
    assert finished.status == "done"
    assert (stalled.state, stalled.attempts, stalled.uncertain_before) == ("sent", 2, True)
    assert "may have been delivered" in stalled.last_error
    copies = recipients_of(patient_sink.received)
    assert copies[stalled.email] == 2, "the server kept the late copy, then the retry"
    assert sum(copies.values()) == 4
    ids = message_ids_by_address(patient_sink.received)[stalled.email]
    assert set(ids) == {stalled.message_id}, "both copies share the Message-ID"
    report = {line.email: line.outcome for line in campaign.report(settings, campaign_id)}
    assert report[stalled.email] == "uncertain (possible duplicate)"
    assert sorted(report.values()).count("sent") == 2
