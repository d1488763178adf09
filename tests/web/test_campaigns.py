"""Campaign pages over HTTP: test send, start with a confirmation count, dashboard, steering, CSV.

Embedded mode, as ``newsletter web`` runs with nothing else started: the app sends in
its own threads, here to a real SMTP server on loopback.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from lxml import html as lxml_html
from sqlalchemy import update
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.compose.issue import compile_file
from newsletter.dispatch import campaign
from newsletter.dispatch.campaign import report_csv
from newsletter.models import Campaign
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.support.smtp import SmtpSink
from tests.web.conftest import log_in
from tests.web.issues import SLUG, issue_text, write_issue

WAIT_SECONDS = 60
START = f"/editor/issues/{SLUG}/campaign/start"
EVERYONE = ["jonas@savivaldybe.example", "ona@savivaldybe.example", "rasa@biblioteka.example"]


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


def start_form(html: str, button: str = "start") -> dict[str, object]:
    """What the confirmation page posts when ``button`` is pressed: its hidden fields and the button."""
    form = lxml_html.fromstring(html).xpath("//form[contains(@action, '/campaign/start')]")[0]
    lists: list[str] = []
    values: dict[str, object] = {"list": lists}
    for field in form.xpath(".//input[@type='hidden']"):
        if field.get("name") == "list":
            lists.append(field.get("value"))
        else:
            values[field.get("name")] = field.get("value", "")
    pressed = form.xpath(f".//button[@id='{button}']")[0]
    assert pressed.get("disabled") is None, f"{button} is disabled"
    values[pressed.get("name")] = pressed.get("value")
    return values


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
    assert "bandymas@example.org" in result and "Išsiųsta" in result
    message = smtp_sink.wait_for(1)[0]
    assert message.rcpt_tos == ["bandymas@example.org"]
    assert message.parsed()["Subject"].startswith("[TEST] ")


def alert_of(html: str) -> str:
    """The text of the page's alert (its one error message)."""
    return lxml_html.fromstring(html).xpath("string(//*[@role='alert'])").strip()


def test_test_send_refuses_a_bad_address(
    sending: tuple[TestClient, str], smtp_sink: SmtpSink
) -> None:
    client, token = sending
    for lang, expected in (
        ("lt", "neteisingas el. pašto adresas „ne adresas“"),
        ("en", "invalid email address 'ne adresas'"),
    ):
        answer = client.post(
            f"/editor/issues/{SLUG}/test?lang={lang}",
            data={"csrf_token": token, "address": "ne adresas"},
        )
        assert answer.status_code == 400
        assert alert_of(answer.text).startswith(expected)
    assert smtp_sink.received == []


def test_test_send_refusals_in_the_pages_language(
    sending: tuple[TestClient, str], web_settings: Settings, smtp_sink: SmtpSink
) -> None:
    """An author's copy to a non-editor, an issue with lint errors: in Lithuanian or English."""
    client, _ = sending
    with db.transaction(web_settings.database) as session:
        users.create_user(
            session, "autore@bibliotekos-pazangai.example", "slaptas-1234", ["author"]
        )
    client.cookies.clear()
    token = log_in(client, "autore@bibliotekos-pazangai.example", "slaptas-1234")
    outside = {"csrf_token": token, "address": "kitas@example.org"}
    cases = [
        (
            "Adresas kitas@example.org nėra redaktoriaus: bandomieji laiškai siunčiami tik "
            "redaktoriams.",
            "address: kitas@example.org is not an editor's; test copies go to editors",
        )
    ]
    for (lithuanian, english), lang in zip(cases * 2, ("lt", "en"), strict=True):
        answer = client.post(f"/editor/issues/{SLUG}/test?lang={lang}", data=outside)
        assert answer.status_code == 400
        assert alert_of(answer.text) == (lithuanian if lang == "lt" else english)
    write_issue(
        web_settings.issues_dir, issue_text(paragraph="![](https://example.org/be-alt.png)")
    )
    to_self = {"csrf_token": token, "address": "autore@bibliotekos-pazangai.example"}
    lithuanian = client.post(f"/editor/issues/{SLUG}/test?lang=lt", data=to_self)
    english = client.post(f"/editor/issues/{SLUG}/test?lang=en", data=to_self)
    assert lithuanian.status_code == english.status_code == 400
    assert alert_of(lithuanian.text).startswith("Patikra rado klaidų: 1. Pirmoji, ")
    assert alert_of(english.text).startswith("lint found 1 error(s), first: line ")
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
        "send_at": "",
    }
    confirm = client.post(f"/editor/issues/{SLUG}/campaign", data=choice)
    assert confirm.status_code == 200
    page = lxml_html.fromstring(confirm.text)
    assert page.get_element_by_id("recipient-count").text == "3"
    assert smtp_sink.received == []  # nothing is sent before the confirmation

    narrowed = client.post(
        f"/editor/issues/{SLUG}/campaign",
        data={**choice, "seg.municipality": ["Vilniaus m.", "Kauno r."], "seg.role": "meras"},
    )
    assert lxml_html.fromstring(narrowed.text).get_element_by_id("recipient-count").text == "0"

    start = client.post(f"/editor/issues/{SLUG}/campaign/start", data=start_form(confirm.text))
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
    cases = [
        # the message in Lithuanian (the default), in English (?lang=en), the form
        ("Pasirinkite bent vieną sąrašą.", "Choose at least one list.", {"list": []}),
        (
            "Sąrašo „nera“ nėra arba jis archyvuotas.",
            "There is no list “nera” to send to (unknown or archived).",
            {"list": ["nera"]},
        ),
        (
            "Savivaldybė: reikšmė 'Kauno\\nr.' turi būti viena eilutė",
            "municipality: 'Kauno\\nr.' is not one line",
            {"list": ["savivaldybes"], "seg.municipality": "Kauno\nr."},
        ),
        (
            "Laikas 2001-01-01T09:00 jau praėjo.",
            "2001-01-01T09:00 is in the past.",
            {"list": ["savivaldybes"], "send_at": "2001-01-01T09:00"},
        ),
    ]
    for lithuanian, english, values in cases:
        for lang, expected in (("lt", lithuanian), ("en", english)):
            answer = client.post(
                f"/editor/issues/{SLUG}/campaign?lang={lang}",
                data={"csrf_token": token, **values},
            )
            assert answer.status_code == 400, expected
            alert = lxml_html.fromstring(answer.text).xpath("//*[@role='alert']")[0]
            assert expected in alert.text_content()


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
    assert "Patikra rado klaidų: 1." in alert_of(answer.text)


def test_pause_resume_and_cancel_a_scheduled_campaign(
    sending: tuple[TestClient, str], web_settings: Settings, people: dict[str, int]
) -> None:
    client, token = sending
    later = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    choice = {"csrf_token": token, "list": ["bibliotekos"], "send_at": later}
    confirm = client.post(f"/editor/issues/{SLUG}/campaign", data=choice)
    assert later.replace("T", " ") in confirm.text
    start = client.post(f"/editor/issues/{SLUG}/campaign/start", data=start_form(confirm.text))
    campaign_id = int(start.headers["location"].rsplit("/", 1)[1])
    url = f"/editor/campaigns/{campaign_id}"
    assert client.get(f"{url}/progress").json()["status"] == "scheduled"

    assert client.post(f"{url}/pause").status_code == 403  # no CSRF token
    assert client.post(f"{url}/pause", data={"csrf_token": token}).status_code == 303
    assert client.get(f"{url}/progress").json()["status"] == "paused"
    again = client.post(f"{url}/pause", data={"csrf_token": token})
    assert again.status_code == 409
    assert alert_of(again.text) == (
        f"Siuntimas Nr. {campaign_id} yra „pristabdytas“, todėl šio veiksmo atlikti negalima."
    )
    english = client.post(f"{url}/pause?lang=en", data={"csrf_token": token})
    assert english.status_code == 409
    assert alert_of(english.text) == (
        f"Campaign {campaign_id} is paused; this needs it running or scheduled."
    )
    client.post(f"{url}/resume", data={"csrf_token": token})
    assert client.get(f"{url}/progress").json()["status"] == "scheduled"
    client.post(f"{url}/cancel", data={"csrf_token": token})
    data = client.get(f"{url}/progress").json()
    assert data["status"] == "cancelled"
    assert data["counts"]["cancelled"] == 2
    for lang, expected in (
        ("lt", f"Siuntimas Nr. {campaign_id} yra „atšauktas“, todėl šio veiksmo atlikti negalima."),
        ("en", f"Campaign {campaign_id} is cancelled; this needs it paused or running."),
    ):
        refused = client.post(f"{url}/resume?lang={lang}", data={"csrf_token": token})
        assert refused.status_code == 409
        assert alert_of(refused.text) == expected
    assert (
        client.post("/editor/campaigns/99999/pause", data={"csrf_token": token}).status_code == 404
    )
    assert client.post(f"{url}/explode", data={"csrf_token": token}).status_code == 404


#: The buttons the dashboard shows for each status: the statuses the server steers from.
BUTTONS = {
    "draft": ["cancel"],
    "awaiting": ["cancel"],
    "scheduled": ["pause", "cancel"],
    "running": ["pause", "cancel"],
    "paused": ["resume", "cancel"],
    "done": [],
    "cancelled": [],
}


def campaigns_in(settings: Settings, statuses: list[str]) -> list[int]:
    """Campaigns of the issue with no outbox rows, one in each of ``statuses``.

    All are created before any is moved (a draft holds up the creation of others)."""
    compiled = compile_file(settings.issues_dir / f"{SLUG}.md", settings)
    ids = [
        campaign.create(settings, compiled, ["bibliotekos"], {}, hold=True).campaign_id
        for _ in statuses
    ]
    with db.transaction(settings.database) as session:
        for campaign_id, status in zip(ids, statuses, strict=True):
            session.execute(
                update(Campaign).where(Campaign.id == campaign_id).values(status=status)
            )
    return ids


def shown_buttons(html: str) -> list[str]:
    """The steering buttons of a dashboard that are not hidden, in order."""
    tree = lxml_html.fromstring(html)
    return [
        form.get("data-action")
        for form in tree.xpath("//form[contains(@class, 'steer')]")
        if form.get("hidden") is None
    ]


@pytest.fixture
def steering(web_settings: Settings, editor: str) -> Iterator[tuple[TestClient, str, Settings]]:
    """A logged-in client of an app whose scheduler does not wake during the test (so that a
    campaign stays in the status it was put in); yields it, its CSRF token and the settings."""
    write_issue(web_settings.issues_dir)
    settings = web_settings.replace(tick_seconds=3600)
    app = create_app(settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client, log_in(client), settings
        app.state.dispatcher.join(WAIT_SECONDS)


def test_the_dashboard_offers_only_what_the_campaigns_status_allows(
    steering: tuple[TestClient, str, Settings], people: dict[str, int]
) -> None:
    client, token, settings = steering
    statuses = [status for status in BUTTONS for _ in range(4)]
    ids = iter(campaigns_in(settings, statuses))
    for status, expected in BUTTONS.items():
        shown = next(ids)
        dashboard = client.get(f"/editor/campaigns/{shown}")
        assert shown_buttons(dashboard.text) == expected, status
        assert client.get(f"/editor/campaigns/{shown}/progress").json()["actions"] == expected
        for action in ("pause", "resume", "cancel"):
            tried = next(ids)
            answer = client.post(f"/editor/campaigns/{tried}/{action}", data={"csrf_token": token})
            if action in expected:
                assert answer.status_code == 303, (status, action)
            elif (status, action) != ("running", "resume"):  # a stalled send, from the CLI
                assert answer.status_code == 409, (status, action)
                assert shown_buttons(answer.text) == expected, (status, action)


def test_a_running_campaign_that_nobody_sends_is_offered_resume(
    steering: tuple[TestClient, str, Settings], people: dict[str, int]
) -> None:
    client, token, settings = steering
    compiled = compile_file(settings.issues_dir / f"{SLUG}.md", settings)
    # Running, rows queued, and no process sending it (as after a killed web process).
    stalled = campaign.create(settings, compiled, ["bibliotekos"], {}).campaign_id
    assert campaign.progress(settings, stalled).counts.get("queued", 0) > 0
    dashboard = client.get(f"/editor/campaigns/{stalled}")
    assert shown_buttons(dashboard.text) == ["pause", "resume", "cancel"]
    answer = client.post(f"/editor/campaigns/{stalled}/resume", data={"csrf_token": token})
    assert answer.status_code == 303
    assert wait_until_finished(client, stalled)["status"] == "done"


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


# Sending an issue again --------------------------------------------------------------


def confirm(client: TestClient, token: str, lists: list[str], query: str = "") -> str:
    """The confirmation page for these lists (sent now); its HTML."""
    answer = client.post(
        f"/editor/issues/{SLUG}/campaign{query}",
        data={"csrf_token": token, "list": lists, "send_at": ""},
    )
    assert answer.status_code == 200, answer.text
    return answer.text


def started(answer) -> int:  # type: ignore[no-untyped-def]
    """The campaign a start answer redirects to."""
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


def copies(sink: SmtpSink) -> Counter[str]:
    """Messages each address received."""
    return Counter(address for message in sink.received for address in message.rcpt_tos)


def non_test_campaigns(settings: Settings) -> list[int]:
    return [p.campaign_id for p in campaign.all_campaigns(settings) if not p.is_test]


def test_a_second_post_of_one_confirmation_page_lands_on_the_same_campaign(
    sending: tuple[TestClient, str], smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    client, token = sending
    form = start_form(confirm(client, token, ["savivaldybes", "bibliotekos"]))
    with ThreadPoolExecutor(2) as pool:  # a double click
        answers = list(pool.map(lambda _: client.post(START, data=form), range(2)))
    answers.append(client.post(START, data=form))  # and a reload afterwards
    assert {started(answer) for answer in answers} == {campaign_id := started(answers[0])}
    assert wait_until_finished(client, campaign_id)["counts"]["sent"] == 3
    client.app.state.dispatcher.join(WAIT_SECONDS)
    assert copies(smtp_sink) == dict.fromkeys(EVERYONE, 1)
    assert non_test_campaigns(client.app.state.settings) == [campaign_id]


def test_the_confirmation_shows_who_got_it_already_and_sends_to_the_new_ones_or_to_all(
    sending: tuple[TestClient, str], smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    client, token = sending
    first = started(client.post(START, data=start_form(confirm(client, token, ["savivaldybes"]))))
    assert wait_until_finished(client, first)["status"] == "done"

    page = lxml_html.fromstring(confirm(client, token, ["savivaldybes", "bibliotekos"]))
    overlap = page.get_element_by_id("overlap").text_content()
    assert "2 iš 3 gavėjų šį numerį jau gavo" in overlap
    assert f"Siuntimas #{first}" in overlap and "(baigtas): 2" in overlap
    assert page.get_element_by_id("start-new").text_content() == "Siųsti tik naujiems (1)"
    assert page.get_element_by_id("start-again").text_content() == "Siųsti visiems dar kartą (3)"
    assert not page.xpath("//*[@id='start']"), "no plain start while some already got it"

    only_new = started(
        client.post(START, data=start_form(lxml_html.tostring(page).decode(), "start-new"))
    )
    assert wait_until_finished(client, only_new)["counts"]["sent"] == 1
    client.app.state.dispatcher.join(WAIT_SECONDS)
    assert copies(smtp_sink) == dict.fromkeys(EVERYONE, 1)

    html = confirm(client, token, ["savivaldybes", "bibliotekos"], "?lang=en")
    page = lxml_html.fromstring(html)
    overlap = page.get_element_by_id("overlap").text_content()
    assert "3 of these 3 recipients already got this issue" in overlap
    listed = " ".join(overlap.split())
    assert f"Campaign #{first} (done): 2" in listed and f"Campaign #{only_new} (done): 1" in listed
    assert page.get_element_by_id("start-new").get("disabled") is not None, "nobody is new"
    assert page.get_element_by_id("start-again").text_content() == "Send to everyone again (3)"
    again = started(client.post(START, data=start_form(html, "start-again")))
    assert wait_until_finished(client, again)["counts"]["sent"] == 3
    client.app.state.dispatcher.join(WAIT_SECONDS)
    assert copies(smtp_sink) == dict.fromkeys(EVERYONE, 2)


def test_a_start_after_another_campaign_reached_them_asks_again(
    sending: tuple[TestClient, str], smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    client, token = sending
    settings: Settings = client.app.state.settings
    html = confirm(client, token, ["savivaldybes"])
    assert not lxml_html.fromstring(html).xpath("//*[@id='overlap']")
    compiled = compile_file(settings.issues_dir / f"{SLUG}.md", settings)
    other = campaign.create(settings, compiled, ["savivaldybes"], {}).campaign_id  # the CLI, say

    answer = client.post(START, data=start_form(html))
    assert answer.status_code == 409
    page = lxml_html.fromstring(answer.text)
    assert "Kol tvirtinote" in page.xpath("//*[@role='alert']")[0].text_content()
    assert "2 iš 2 gavėjų" in page.get_element_by_id("overlap").text_content()
    assert page.get_element_by_id("start-new").get("disabled") is not None
    assert non_test_campaigns(settings) == [other]


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
