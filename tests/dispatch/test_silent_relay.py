"""A mail server that stops answering pauses the campaign, with the reason, instead of
costing one timeout per recipient.

Real servers on loopback: one that accepts the TCP connection and never greets, and
the SMTP sink stalling its reply after DATA. The timeout is short (0.3 s), so each
silent send costs that much; nothing here measures time.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import html as lxml_html
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.cli.core import main
from newsletter.compose.render import CompiledIssue
from newsletter.dispatch import campaign
from newsletter.dispatch.embedded import run_campaign
from newsletter.dispatch.sender import SILENT_SERVER_TIMEOUTS
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.dispatch.conftest import WorkerFactory
from tests.dispatch.support import (
    add_people,
    outcome_summary,
    recipients_of,
    rows,
    status_of,
    wait_until,
    worker_env,
)
from tests.support.services import RedisServer
from tests.support.smtp import SilentServer, SmtpSink
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD, log_in

PEOPLE = 6
TIMEOUT = 0.3
SILENCE = f"the mail server did not answer {SILENT_SERVER_TIMEOUTS} sends in a row"

Command = Callable[..., str]


@pytest.fixture
def newsletter(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Command:
    """Run ``newsletter ARGS…`` in this process with the given settings; return its output."""

    def run(settings: Settings, *args: str) -> str:
        for name, value in worker_env(settings).items():
            monkeypatch.setenv(name, value)
        code = main(list(args))
        out, err = capsys.readouterr()
        assert code == 0, out + err
        return " ".join(out.split())

    return run


def dashboard_reason(settings: Settings, campaign_id: int) -> tuple[str, str]:
    """The status and its reason as the campaign's dashboard page shows them."""
    with db.transaction(settings.database) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
    app = create_app(settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        log_in(client)
        page = lxml_html.fromstring(client.get(f"/editor/campaigns/{campaign_id}?lang=en").text)
    status = page.get_element_by_id("status").text_content()
    return status, page.get_element_by_id("status-reason").text_content()


def _campaign(settings: Settings, issue: CompiledIssue) -> int:
    add_people(settings.database, PEOPLE)
    return campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id


def test_a_server_that_never_greets_pauses_the_campaign_and_resume_continues(
    fast: Settings, issue: CompiledIssue, newsletter: Command
) -> None:
    with SilentServer() as silent:
        settings = fast.replace(smtp_url=silent.url, smtp_timeout=TIMEOUT)
        campaign_id = _campaign(settings, issue)
        paused = run_campaign(settings, campaign_id)
        tried = silent.connections
    assert paused.status == "paused" and SILENCE in paused.status_reason
    assert "NEWSLETTER_SMTP_TIMEOUT, 0.3 s" in paused.status_reason
    assert tried == SILENT_SERVER_TIMEOUTS, "one connection per send, then nothing more"
    attempted = [row for row in rows(settings.database, campaign_id) if row.attempts]
    assert len(attempted) == SILENT_SERVER_TIMEOUTS
    assert {row.state for row in attempted} == {"queued"}, "retried later, as any timeout"
    assert all("timed out" in row.last_error for row in attempted)

    status = newsletter(settings, "campaign", "status", str(campaign_id))
    assert f"campaign {campaign_id} paused (stopped: {SILENCE}" in status
    assert f"newsletter campaign resume {campaign_id}" in status
    shown, reason = dashboard_reason(settings, campaign_id)
    assert shown == "paused" and SILENCE in reason

    with SmtpSink(port=silent.port) as sink:  # the server is back, on the same address
        resumed = newsletter(settings, "campaign", "resume", str(campaign_id))
        assert f"campaign {campaign_id} done: sent {PEOPLE}" in resumed
        copies = recipients_of(sink.received)
    assert len(copies) == PEOPLE and set(copies.values()) == {1}


def test_a_server_that_stalls_after_data_pauses_and_the_rows_stay_uncertain(
    fast: Settings, issue: CompiledIssue, patient_sink: SmtpSink
) -> None:
    settings = fast.replace(smtp_url=patient_sink.url, smtp_timeout=TIMEOUT)
    patient_sink.handler.slow_seconds = 2.0
    patient_sink.fail_next(*["slow"] * SILENT_SERVER_TIMEOUTS)
    campaign_id = _campaign(settings, issue)
    paused = run_campaign(settings, campaign_id)
    assert paused.status == "paused" and SILENCE in paused.status_reason
    assert "may have been delivered" in paused.status_reason
    assert paused.counts["uncertain"] == SILENT_SERVER_TIMEOUTS
    assert paused.counts["queued"] == PEOPLE - SILENT_SERVER_TIMEOUTS

    campaign.resume(settings, campaign_id)
    done = run_campaign(settings, campaign_id)  # the uncertain rows wait out their lease
    assert (done.status, done.counts["sent"]) == ("done", PEOPLE)
    assert done.counts["possible_duplicates"] == SILENT_SERVER_TIMEOUTS
    copies = recipients_of(patient_sink.received)
    assert sorted(copies.values()) == [1] * (PEOPLE - SILENT_SERVER_TIMEOUTS) + [2] * 3


def test_an_answer_between_timeouts_starts_the_count_again(
    fast: Settings, issue: CompiledIssue, patient_sink: SmtpSink
) -> None:
    settings = fast.replace(smtp_url=patient_sink.url, smtp_timeout=TIMEOUT)
    patient_sink.handler.slow_seconds = 2.0
    patient_sink.fail_next("slow", "slow", "451", "slow", "slow", "250")
    campaign_id = _campaign(settings, issue)
    done = run_campaign(settings, campaign_id)
    assert done.status == "done" and done.status_reason == ""
    assert done.counts["sent"] == PEOPLE


@pytest.mark.redis
@pytest.mark.slow
def test_a_celery_worker_pauses_the_campaign_on_a_silent_server(
    sqlite_fast: Settings,
    issue: CompiledIssue,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    with SilentServer() as silent:
        settings = sqlite_fast.replace(
            redis_url=redis_server.url, smtp_url=silent.url, smtp_timeout=TIMEOUT
        )
        campaign_id = _campaign(settings, issue)
        worker = start_worker(settings)
        wait_until(
            lambda: status_of(settings, campaign_id) == "paused",
            60,
            lambda: f"{outcome_summary(settings.database, campaign_id)}\n{worker.tail()}",
        )
        tried = silent.connections
    reason = campaign.progress(settings, campaign_id).status_reason
    assert SILENCE in reason and tried == SILENT_SERVER_TIMEOUTS
    with SmtpSink(port=silent.port) as sink:
        campaign.resume(settings, campaign_id)
        wait_until(
            lambda: status_of(settings, campaign_id) == "done",
            60,
            lambda: f"{outcome_summary(settings.database, campaign_id)}\n{worker.tail()}",
        )
        copies = recipients_of(sink.received)
    assert len(copies) == PEOPLE and set(copies.values()) == {1}
