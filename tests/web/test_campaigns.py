"""Campaign pages over HTTP: test send, start with a confirmation count, dashboard, steering, CSV.

Embedded mode, as ``newsletter web`` runs with nothing else started: the app sends in
its own threads, here to a real SMTP server on loopback.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from lxml import html as lxml_html
from starlette.testclient import TestClient

from newsletter.dispatch import campaign
from newsletter.dispatch.campaign import report_csv
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.support.smtp import SmtpSink
from tests.web.conftest import csrf_of, log_in
from tests.web.issues import SLUG, issue_text, write_issue

WAIT_SECONDS = 60


@pytest.fixture
def sending(
    web_settings: Settings, smtp_sink: SmtpSink, editor: str
) -> Iterator[tuple[TestClient, str]]:
    """A logged-in client of an app that sends to the SMTP sink; yields it and its CSRF token."""
    write_issue(web_settings.issues_dir)
    settings = web_settings.replace(smtp_url=smtp_sink.url, retry_seconds=0.5, tick_seconds=0.2)
    app = create_app(settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        token = log_in(client)
        yield client, token
        app.state.dispatcher.join(WAIT_SECONDS)


def wait_until_finished(client: TestClient, campaign_id: int) -> dict:
    """Poll the dashboard's data until the campaign is no longer active (bounded)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        data = client.get(f"/editor/campaigns/{campaign_id}/progress").json()
        if not data["active"] or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def test_test_send_reaches_the_address(
    sending: tuple[TestClient, str], smtp_sink: SmtpSink
) -> None:
    client, token = sending
    form = client.get(f"/editor/issues/{SLUG}/test")
    assert 'value="redaktore@bibliotekos-pazangai.example"' in form.text
    answer = client.post(
        f"/editor/issues/{SLUG}/test", data={"csrf_token": token, "address": "bandymas@example.org"}
    )
    assert answer.status_code == 200
    result = lxml_html.fromstring(answer.text).get_element_by_id("test-result").text_content()
    assert "bandymas@example.org" in result and "sent" in result
    message = smtp_sink.wait_for(1)[0]
    assert message.rcpt_tos == ["bandymas@example.org"]
    assert message.parsed()["Subject"].startswith("[TEST] ")


def test_test_send_refuses_a_bad_address(
    sending: tuple[TestClient, str], smtp_sink: SmtpSink
) -> None:
    client, token = sending
    answer = client.post(
        f"/editor/issues/{SLUG}/test", data={"csrf_token": token, "address": "ne adresas"}
    )
    assert answer.status_code == 400
    assert "invalid email address" in answer.text
    assert smtp_sink.received == []


def test_start_a_campaign_after_seeing_the_recipient_count(
    sending: tuple[TestClient, str], smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    client, token = sending
    form = client.get(f"/editor/issues/{SLUG}/campaign")
    assert "savivaldybes" in form.text
    choice = {
        "csrf_token": token,
        "list": ["savivaldybes", "bibliotekos"],
        "where": "",
        "send_at": "",
    }
    confirm = client.post(f"/editor/issues/{SLUG}/campaign", data=choice)
    assert confirm.status_code == 200
    page = lxml_html.fromstring(confirm.text)
    assert page.get_element_by_id("recipient-count").text == "3"
    assert smtp_sink.received == []  # nothing is sent before the confirmation

    narrowed = client.post(
        f"/editor/issues/{SLUG}/campaign", data={**choice, "where": "name=Ona Onaitė"}
    )
    assert lxml_html.fromstring(narrowed.text).get_element_by_id("recipient-count").text == "1"

    start = client.post(
        f"/editor/issues/{SLUG}/campaign/start",
        data={**choice, "csrf_token": csrf_of(confirm.text)},
    )
    assert start.status_code == 303
    campaign_id = int(start.headers["location"].rsplit("/", 1)[1])
    finished = wait_until_finished(client, campaign_id)
    assert finished["status"] == "done"
    assert finished["counts"]["sent"] == 3
    assert sorted(r for m in smtp_sink.received for r in m.rcpt_tos) == [
        "jonas@savivaldybe.example",
        "ona@savivaldybe.example",
        "rasa@biblioteka.example",
    ]
    dashboard = client.get(f"/editor/campaigns/{campaign_id}")
    assert lxml_html.fromstring(dashboard.text).get_element_by_id("count-sent").text == "3"
    listing = client.get("/editor/campaigns")
    assert f"/editor/campaigns/{campaign_id}" in listing.text

    report = client.get(f"/editor/campaigns/{campaign_id}/report.csv")
    assert report.headers["content-type"].startswith("text/csv")
    assert f'filename="campaign-{campaign_id}.csv"' in report.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert sorted(row["email"] for row in rows) == sorted(
        r for m in smtp_sink.received for r in m.rcpt_tos
    )
    assert {row["outcome"] for row in rows} == {"sent"}
    assert all(row["message_id"].startswith("<c") for row in rows)


def test_campaign_form_errors_are_shown(
    sending: tuple[TestClient, str], people: dict[str, int]
) -> None:
    client, token = sending
    cases = {
        "lists: choose at least one list": {"list": []},
        "nera": {"list": ["nera"]},
        "segment line 1": {"list": ["savivaldybes"], "where": "be lygybės"},
        "pareigos": {"list": ["savivaldybes"], "where": "pareigos=meras"},
        "send at": {"list": ["savivaldybes"], "send_at": "2001-01-01T09:00"},
    }
    for expected, values in cases.items():
        answer = client.post(
            f"/editor/issues/{SLUG}/campaign", data={"csrf_token": token, **values}
        )
        assert answer.status_code == 400, expected
        assert (
            expected
            in lxml_html.fromstring(answer.text).xpath("//*[@role='alert']")[0].text_content()
        )


def test_an_issue_with_lint_errors_cannot_be_sent(
    sending: tuple[TestClient, str], web_settings: Settings, people: dict[str, int]
) -> None:
    client, token = sending
    write_issue(
        web_settings.issues_dir, issue_text(paragraph="![](https://example.org/be-alt.png)")
    )
    answer = client.post(
        f"/editor/issues/{SLUG}/campaign", data={"csrf_token": token, "list": ["savivaldybes"]}
    )
    assert answer.status_code == 400
    assert "lint found 1 error(s)" in answer.text


def test_pause_resume_and_cancel_a_scheduled_campaign(
    sending: tuple[TestClient, str], web_settings: Settings, people: dict[str, int]
) -> None:
    client, token = sending
    later = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    choice = {"csrf_token": token, "list": ["bibliotekos"], "send_at": later}
    confirm = client.post(f"/editor/issues/{SLUG}/campaign", data=choice)
    assert later.replace("T", " ") in confirm.text
    start = client.post(f"/editor/issues/{SLUG}/campaign/start", data=choice)
    campaign_id = int(start.headers["location"].rsplit("/", 1)[1])
    url = f"/editor/campaigns/{campaign_id}"
    assert client.get(f"{url}/progress").json()["status"] == "scheduled"

    assert client.post(f"{url}/pause").status_code == 403  # no CSRF token
    assert client.post(f"{url}/pause", data={"csrf_token": token}).status_code == 303
    assert client.get(f"{url}/progress").json()["status"] == "paused"
    again = client.post(f"{url}/pause", data={"csrf_token": token})
    assert again.status_code == 409
    assert "is paused" in again.text
    client.post(f"{url}/resume", data={"csrf_token": token})
    assert client.get(f"{url}/progress").json()["status"] == "scheduled"
    client.post(f"{url}/cancel", data={"csrf_token": token})
    data = client.get(f"{url}/progress").json()
    assert data["status"] == "cancelled"
    assert data["counts"]["cancelled"] == 2
    assert (
        client.post("/editor/campaigns/99999/pause", data={"csrf_token": token}).status_code == 404
    )
    assert client.post(f"{url}/explode", data={"csrf_token": token}).status_code == 404


def test_report_cells_never_start_a_formula() -> None:
    line = campaign.ReportLine(
        email="=cmd@example.org",
        outcome="failed",
        attempts=1,
        smtp_code=550,
        smtp_reply="-ERR no",
        reason="+1",
        message_id="@x",
        sent_at=None,
    )
    rows = list(csv.reader(io.StringIO(report_csv([line]))))
    assert rows[1][:7] == ["'=cmd@example.org", "failed", "1", "550", "'-ERR no", "'+1", "'@x"]


def test_campaign_pages_need_a_login(web_settings: Settings) -> None:
    with TestClient(
        create_app(web_settings, watch=False), base_url="https://testserver", follow_redirects=False
    ) as c:
        assert c.get("/editor/campaigns").status_code == 303
        assert c.get("/editor/campaigns/1/report.csv").status_code == 303


def test_a_running_campaign_left_unfinished_is_sent_when_the_app_starts(
    web_settings: Settings, smtp_sink: SmtpSink, people: dict[str, int], editor: str
) -> None:
    from newsletter.compose.issue import compile_file

    settings = web_settings.replace(smtp_url=smtp_sink.url, tick_seconds=0.2)
    compiled = compile_file(write_issue(settings.issues_dir), settings)
    created = campaign.create(settings, compiled, ["savivaldybes"], {})  # e.g. before a restart
    assert created.status == "running"
    app = create_app(settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        log_in(client)
        finished = wait_until_finished(client, created.campaign_id)
        app.state.dispatcher.join(WAIT_SECONDS)
    assert finished["status"] == "done"
    assert sorted(r for m in smtp_sink.received for r in m.rcpt_tos) == [
        "jonas@savivaldybe.example",
        "ona@savivaldybe.example",
    ]


def test_sending_over_smtp_with_a_loopback_base_url_is_refused(
    web_settings: Settings, smtp_sink: SmtpSink, editor: str, people: dict[str, int]
) -> None:
    write_issue(web_settings.issues_dir)
    loopback = web_settings.replace(smtp_url=smtp_sink.url, base_url="http://127.0.0.1:8000")
    app = create_app(loopback, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        token = log_in(client)
        test = client.post(
            f"/editor/issues/{SLUG}/test", data={"csrf_token": token, "address": "a@example.org"}
        )
        start = client.post(
            f"/editor/issues/{SLUG}/campaign", data={"csrf_token": token, "list": ["savivaldybes"]}
        )
    for answer in (test, start):
        assert answer.status_code == 400
        alert = lxml_html.fromstring(answer.text).xpath("//*[@role='alert']")[0].text_content()
        assert "NEWSLETTER_BASE_URL http://127.0.0.1:8000 is not https://" in alert
        assert "NEWSLETTER_ALLOW_INSECURE_BASE_URL=1" in alert
    assert smtp_sink.received == [] and campaign.all_campaigns(loopback) == []

    lab = create_app(loopback.replace(allow_insecure_base_url=True), watch=False)
    with TestClient(lab, base_url="https://testserver", follow_redirects=False) as client:
        token = log_in(client)
        test = client.post(
            f"/editor/issues/{SLUG}/test", data={"csrf_token": token, "address": "a@example.org"}
        )
    assert test.status_code == 200 and "sent" in test.text
    assert [m.rcpt_tos for m in smtp_sink.wait_for(1)] == [["a@example.org"]]
