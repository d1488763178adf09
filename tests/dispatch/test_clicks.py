"""Click counting on real SQLite and PostgreSQL: links stored once per campaign, scanners
told apart from readers, past days folded into the counts and their salts dropped."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError

from newsletter.cli.core import main
from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.dispatch import campaign, clicks
from newsletter.dispatch.clicks import Event, scanner_flags, tally
from newsletter.errors import ConfigError
from newsletter.models import Campaign, CampaignLink, ClickEvent, ClickSalt, utcnow
from newsletter.settings import Settings
from tests.conftest import ROOT
from tests.dispatch.support import add_people

COUNTED = re.compile(r'href="(https://naujienos\.bibliotekos-pazangai\.example/c/[^"]+)"')


def events(times: list[float], numbers: list[int], *, visitor: str = "a", head: bool = False):
    start = utcnow()
    return [
        Event(1, number, start + timedelta(seconds=at), visitor, head)
        for at, number in zip(times, numbers, strict=True)
    ]


def test_a_client_fetching_most_links_within_seconds_is_a_scanner() -> None:
    burst = events([0, 0.2, 0.4, 0.6, 0.9], [1, 2, 3, 4, 5])
    assert scanner_flags(burst, clicks.burst_threshold(6)) == [True] * 5
    # The same client coming back a minute later reads like a person again.
    later = events([0, 0.2, 0.4, 0.6, 60, 61], [1, 2, 3, 4, 2, 1])
    assert scanner_flags(later, clicks.burst_threshold(6)) == [True] * 4 + [False] * 2
    reader = events([0, 40, 95], [2, 5, 2], visitor="b")
    assert scanner_flags(reader, clicks.burst_threshold(6)) == [False] * 3
    counted = tally([*burst, *reader, *events([1], [3], visitor="c", head=True)], {1: 6})
    assert sum(counted.clicks.values()) == 3
    assert sum(counted.scanner_clicks.values()) == 6
    assert counted.readers[(1, 2)] == 1  # one reader clicked link 2 twice
    assert counted.campaign_readers[1] == 1


def test_the_same_link_again_and_again_is_a_reader_not_a_burst() -> None:
    same = events([i * 0.01 for i in range(50)], [4] * 50)
    counted = tally(same, {1: 6})
    assert counted.clicks[(1, 4)] == 50
    assert counted.readers[(1, 4)] == 1


def _counted_campaign(settings: Settings, issue: CompiledIssue) -> int:
    add_people(settings.database, 2)
    return campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id


def test_links_are_replaced_once_when_the_campaign_is_made(
    db_settings: Settings, issue: CompiledIssue
) -> None:
    settings = db_settings.replace(click_counting="aggregate")
    campaign_id = _counted_campaign(settings, issue)
    with transaction(settings.database) as session:
        stored = CompiledIssue.from_dict(session.get(Campaign, campaign_id).compiled)
        links = session.scalars(
            select(CampaignLink).where(CampaignLink.campaign_id == campaign_id)
        ).all()
    key = clicks.link_key(settings.key())
    expected = [
        f"{settings.base_url}{clicks.click_path(key, campaign_id, link.number)}" for link in links
    ]
    assert COUNTED.findall(stored.html) == expected
    assert [link.url for link in links] == [
        "https://naujienos.bibliotekos-pazangai.example/archive",
        "https://www.teo.lt",
        "https://www.tiketa.lt",
    ]
    assert links[1].sponsor == "TEO LT, AB"
    html, _text = stored.personalise({"unsubscribe_url": "https://x.example/u/tok"})
    assert 'href="https://x.example/u/tok"' in html
    # Every recipient gets the very same counted URLs.
    assert COUNTED.findall(stored.personalise({"name": "Ona"})[0]) == expected


def test_without_counting_and_for_test_copies_nothing_is_replaced(
    db_settings: Settings, issue: CompiledIssue
) -> None:
    plain = _counted_campaign(db_settings, issue)
    test_copy = campaign.create_test(
        db_settings.replace(click_counting="aggregate"), issue, "redaktore@example.lt"
    )
    with transaction(db_settings.database) as session:
        for campaign_id in (plain, test_copy):
            assert session.get(Campaign, campaign_id).compiled["html"] == issue.html
        assert session.scalar(select(func.count()).select_from(CampaignLink)) == 0


def test_past_days_are_folded_into_the_counts_and_their_salts_dropped(
    db_settings: Settings, issue: CompiledIssue
) -> None:
    settings = db_settings.replace(click_counting="aggregate")
    campaign_id = _counted_campaign(settings, issue)
    counter = clicks.ClickCounter(settings)
    key = counter.signing_key
    assert counter.follow(
        campaign_id, 2, clicks.signature(key, campaign_id, 2), "10.0.0.1", "A", False
    )
    yesterday = utcnow() - timedelta(days=1)
    with transaction(settings.database) as session:
        session.execute(insert(ClickSalt).values(day=yesterday.date().isoformat(), salt="00" * 32))
        session.execute(
            insert(ClickEvent),
            [
                {
                    "campaign_id": campaign_id,
                    "number": 2,
                    "at": yesterday,
                    "visitor": v,
                    "head": False,
                }
                for v in ("x", "y", "y")
            ],
        )
    report = clicks.campaign_clicks(settings, campaign_id)
    teo = report.links[1]
    assert (teo.clicks, teo.readers, teo.scanner_clicks) == (4, 3, 0)
    assert report.readers == 3
    with transaction(settings.database) as session:
        assert session.scalar(select(func.count()).select_from(ClickEvent)) == 1  # today's
        assert session.scalars(select(ClickSalt.day)).all() == [utcnow().date().isoformat()]
        stored = session.get(CampaignLink, (campaign_id, 2))
        assert (stored.clicks, stored.readers) == (3, 2)
    # Folding again adds nothing.
    assert clicks.campaign_clicks(settings, campaign_id).links[1].clicks == 4
    [teo_lt] = [entry for entry in clicks.sponsor_clicks(settings) if entry.sponsor == "TEO LT, AB"]
    assert [(i.campaign_id, i.clicks) for i in teo_lt.issues] == [(campaign_id, 4)]
    assert f'\r\n"TEO LT, AB",{campaign_id},' in clicks.sponsor_csv([teo_lt])


def test_sent_mail_carries_the_same_counted_links_for_everyone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "DATA_DIR": settings.data_dir,
        "SECRET_KEY": settings.secret_key.reveal(),
        "BASE_URL": settings.base_url,
        "TEMPLATES_DIR": settings.templates_dir,
        "SPONSORS_FILE": settings.sponsors_file,
        "CLICK_COUNTING": "aggregate",
    }.items():
        monkeypatch.setenv(f"NEWSLETTER_{name}", str(value))
    assert main(["migrate"]) == 0
    add_people(settings.database, 3)
    issue = ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md"
    assert main(["send", str(issue), "--list", "savivaldybes"]) == 0
    bodies = [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        .get_body(("html",))
        .get_content()
        for path in sorted(settings.outbox.glob("*.eml"))
    ]
    counted = {tuple(COUNTED.findall(body)) for body in bodies}
    assert len(bodies) == 3 and len(counted) == 1 and len(counted.pop()) == 3
    unsubscribe = {re.search(r'href="([^"]*/u/[^"]*)"', body).group(1) for body in bodies}
    assert len(unsubscribe) == 3  # each person's own, untouched
    capsys.readouterr()
    assert main(["campaign", "clicks", "1", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(clicks.CAMPAIGN_COLUMNS)
    assert lines[2].startswith("2,https://www.teo.lt,")


def test_an_unknown_counting_mode_is_one_line_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"^NEWSLETTER_CLICK_COUNTING must be off or aggregate"):
        Settings(click_counting="per-person")


def test_a_click_that_cannot_be_written_raises_in_its_request(tmp_path: Path) -> None:
    writer = clicks.ClickWriter(f"sqlite:///{tmp_path / 'no-schema.db'}")
    row = {"campaign_id": 1, "number": 1, "at": utcnow(), "visitor": "v", "head": False}
    for _ in range(2):  # the writer goes on after a failed batch
        with pytest.raises(OperationalError, match="no such table: click_events"):
            writer.write(row)
