"""Counted links over HTTP: the redirect goes only where the issue linked, every bad link gets
one 404, concurrent clicks are all counted (a real uvicorn server, SQLite and PostgreSQL),
scanners are told apart, and the dashboard, CSV and sponsor report show the counts."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import html as lxml_html
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db
from newsletter.compose.render import CompiledIssue
from newsletter.compose.slots import slot
from newsletter.dispatch import campaign, clicks
from newsletter.models import Campaign, CampaignLink
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.dispatch.support import add_people
from tests.web.conftest import log_in
from tests.web.helpers import compiled_issue
from tests.web.server import free_port, running

PERSONAL = f"https://savivaldybe.example/renginiai?kur={slot('municipality')}"
LINKS = (
    '<h2>Renginiai</h2><p><a href="https://renginiai.example/kalendorius">Kalendorius</a> '
    '<a href="https://renginiai.example/registracija?x=1&amp;y=2">Registracija</a> '
    f'<a href="{PERSONAL}">Jūsų savivaldybėje</a></p>'
    '<h2>Rėmėjai</h2><a href="https://www.teo.lt" data-sponsor="TEO LT, AB">TEO LT</a>'
)
TARGETS = (
    "https://renginiai.example/kalendorius",
    "https://renginiai.example/registracija?x=1&y=2",
    "https://www.teo.lt",
)


def counted_issue(
    subject: str = "Bibliotekos pažangai: renginiai", slug: str = "2026-01-renginiai"
) -> CompiledIssue:
    return replace(compiled_issue(subject, extra_html=LINKS), slug=slug)


def start_campaign(settings: Settings, issue: CompiledIssue) -> int:
    return campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id


def links_of(settings: Settings, campaign_id: int) -> dict[int, str]:
    key = clicks.link_key(settings.key())
    with db.transaction(settings.database) as session:
        numbers = session.scalars(
            select(CampaignLink.number).where(CampaignLink.campaign_id == campaign_id)
        ).all()
    return {number: clicks.click_path(key, campaign_id, number) for number in numbers}


@pytest.fixture
def counting(web_settings: Settings, people: dict[str, int]) -> Settings:
    return web_settings.replace(click_counting="aggregate")


@pytest.fixture
def counted_client(counting: Settings) -> Iterator[TestClient]:
    app = create_app(counting, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def test_a_link_leads_only_to_the_url_in_the_issue(
    counting: Settings, counted_client: TestClient
) -> None:
    first = start_campaign(counting, counted_issue())
    other = start_campaign(counting, counted_issue("Kitas numeris: kiti renginiai", "2026-02-kiti"))
    paths = links_of(counting, first)
    assert sorted(paths) == [1, 2, 3]  # the personalised link is not counted
    for number, target in zip(sorted(paths), TARGETS, strict=True):
        answer = counted_client.get(paths[number] + "?url=https://evil.example")
        assert (answer.status_code, answer.headers["location"]) == (302, target)
        assert answer.headers["cache-control"] == "no-store"
    good = paths[1]
    signature = good.rsplit("/", 1)[1]
    bad = [
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # tampered signature
        f"/c/{other}/1/{signature}",  # another campaign's link with this one's signature
        f"/c/{first}/4/{signature}",  # a link number the issue does not have
        f"/c/{first}/99999999999999999999/{signature}",
        f"/c/{first}/1/{signature}%2F%2Fevil.example",
        f"/c/{first}/1/https%3A%2F%2Fevil.example",
        f"/c/{first}/1/",
        f"/c/{first}/1/{signature}/extra",
        "/c/%2F%2Fevil.example/1/x",
    ]
    answers = {(a.status_code, a.text) for a in map(counted_client.get, bad)}
    assert len(answers) == 1
    assert answers.pop()[0] == 404
    report = clicks.campaign_clicks(counting, first)
    # The bad links counted nothing (three links in a second: a scanner's, see below).
    assert [link.clicks + link.scanner_clicks for link in report.links] == [1, 1, 1]


def test_unsubscribe_preferences_and_personal_links_stay_as_they_were(
    counting: Settings, people: dict[str, int]
) -> None:
    campaign_id = start_campaign(counting, counted_issue())
    with db.transaction(counting.database) as session:
        stored = CompiledIssue.from_dict(session.get(Campaign, campaign_id).compiled)
    html, text = stored.personalise(
        {
            "unsubscribe_url": "https://n.example/u/TOKEN",
            "preferences_url": "https://n.example/p/TOKEN",
            "view_url": "https://n.example/v/1/TOKEN",
            "municipality": "Kauno r.",
        }
    )
    hrefs = lxml_html.fromstring(html).xpath("//a/@href")
    assert "https://n.example/u/TOKEN" in hrefs
    assert "https://n.example/p/TOKEN" in hrefs
    assert "https://n.example/v/1/TOKEN" in hrefs
    assert "https://savivaldybe.example/renginiai?kur=Kauno%20r." in hrefs
    assert "https://n.example/u/TOKEN" in text


def test_a_scanner_burst_and_head_requests_are_not_counted_as_readers(
    counting: Settings, counted_client: TestClient
) -> None:
    campaign_id = start_campaign(counting, counted_issue())
    paths = links_of(counting, campaign_id)
    for path in paths.values():  # a mail gateway fetching every link at once
        assert counted_client.get(path, headers={"user-agent": "SafeLinks"}).status_code == 302
    assert counted_client.head(paths[2], headers={"user-agent": "Mimecast"}).status_code == 302
    reader = {"user-agent": "Mozilla/5.0 (reader)"}
    assert counted_client.get(paths[3], headers=reader).status_code == 302
    report = clicks.campaign_clicks(counting, campaign_id)
    assert [link.clicks for link in report.links] == [0, 0, 1]
    assert [link.scanner_clicks for link in report.links] == [1, 2, 1]
    assert report.readers == 1


def test_the_dashboard_shows_a_chart_a_table_and_the_csv(
    counting: Settings, counted_client: TestClient, editor: str
) -> None:
    campaign_id = start_campaign(counting, counted_issue())
    counted_client.get(links_of(counting, campaign_id)[3])
    log_in(counted_client)
    page = lxml_html.fromstring(counted_client.get(f"/editor/campaigns/{campaign_id}").text)
    [chart] = page.xpath("//section[@id='clicks']//svg")
    assert chart.get("role") == "img"
    labelled = chart.get("aria-labelledby").split()
    assert [page.get_element_by_id(name).tag for name in labelled] == ["title", "desc"]
    assert len(chart.xpath(".//rect")) == 3
    rows = [
        [cell.text_content().strip() for cell in row.xpath("td")]
        for row in page.xpath("//table[contains(@class,'clicks')]/tbody/tr")
    ]
    assert rows[2] == ["3", "TEO LT", "Rėmėjai", "TEO LT, AB", "1", "1", "0"]
    csv_text = counted_client.get(f"/editor/campaigns/{campaign_id}/clicks.csv").text
    assert csv_text.splitlines()[3] == '3,https://www.teo.lt,TEO LT,Rėmėjai,"TEO LT, AB",1,1,0'
    sponsors = counted_client.get("/editor/reports/sponsors?lang=en").text
    assert "TEO LT, AB — 1 in all" in sponsors
    assert "1 clicks in" in sponsors
    assert counted_client.get("/editor/reports/sponsors.csv").text.count("\r\n") == 2


def concurrent_clicks(port: int, path: str, count: int) -> list[int]:
    """``count`` clients, each on its own connection, clicking at the same moment."""
    ready = threading.Barrier(count)

    def click(_: int) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            ready.wait()
            connection.request("GET", path, headers={"user-agent": "Mozilla/5.0"})
            return connection.getresponse().status
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(click, range(count)))


def test_fifty_concurrent_clicks_count_fifty(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    counting = settings.replace(
        database_url=database_url, click_counting="aggregate", issues_dir=tmp_path
    )
    add_people(database_url, 1)
    campaign_id = start_campaign(counting, counted_issue())
    path = links_of(counting, campaign_id)[2]
    port = free_port()
    with running(counting, port):
        statuses = concurrent_clicks(port, path, 50)
    assert statuses == [302] * 50
    report = clicks.campaign_clicks(counting, campaign_id)
    assert (report.links[1].clicks, report.links[1].readers) == (50, 1)
