"""Lists and segments in a real browser (Debian's Chromium, Playwright) against uvicorn.

A list is created and marked public, and only the public one is offered on /subscribe;
an archived list is not offered on the campaign form; an export's formula cell is
neutralised in CSV and XLSX; the segment builder counts live, and a campaign created
with a saved segment holds exactly its recipients.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from newsletter import db
from newsletter.models import Campaign, OutboxRow, Subscriber
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.issues import SLUG
from tests.web.test_browser import ARTIFACTS, Site, context, log_in, site  # noqa: F401

pytestmark = pytest.mark.browser

FORMULA = '=HYPERLINK("http://x.example","Ona")'


def create_list(page, at: Site, slug: str, name: str, *, public: bool) -> None:
    page.goto(f"{at.url}/editor/lists")
    form = page.locator("#create-list")
    form.locator("input[name=slug]").fill(slug)
    form.locator("input[name=name]").fill(name)
    if public:
        form.locator("input[name=public]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{at.url}/editor/lists/{slug}/edit?created=1")


def download(page, button: str, suffix: str) -> bytes:
    with page.expect_download() as started:
        page.click(button)
    assert started.value.suggested_filename == f"savivaldybes-active.{suffix}"
    return Path(started.value.path()).read_bytes()


def test_lists_are_created_public_or_not_archived_and_exported(
    context,  # noqa: F811
    site: Site,  # noqa: F811
    people: dict[str, int],
) -> None:
    from playwright.sync_api import expect

    with db.transaction(site.settings.database) as session:
        session.execute(
            update(Subscriber).where(Subscriber.id == people["ona"]).values(name=FORMULA)
        )
    page = context.new_page()
    log_in(page, site)
    create_list(page, site, "naujienos-visiems", "Naujienos visiems", public=True)
    expect(page.locator("[role=status]")).to_contain_text("naujienos-visiems")
    create_list(page, site, "vidinis", "Vidinis sąrašas", public=False)
    page.goto(f"{site.url}/editor/lists")
    expect(page.locator("tr[data-list=naujienos-visiems] .badge.public")).to_be_visible()
    expect(page.locator("tr[data-list=vidinis] .badge.public")).to_have_count(0)

    page.goto(f"{site.url}/subscribe")
    offered = page.locator("fieldset label.check")
    expect(offered.filter(has_text="Naujienos visiems")).to_have_count(1)
    expect(offered.filter(has_text="Vidinis sąrašas")).to_have_count(0)

    page.goto(f"{site.url}/editor/lists/bibliotekos/edit")
    page.click("#archive-list button[name=archived]")
    expect(page.locator("#archived-note")).to_be_visible()
    page.goto(f"{site.url}/editor/issues/{SLUG}/campaign")
    expect(page.locator("input[name=list][value=savivaldybes]")).to_have_count(1)
    expect(page.locator("input[name=list][value=bibliotekos]")).to_have_count(0)

    page.goto(f"{site.url}/editor/lists/savivaldybes/edit")
    expect(page.locator("#export-help")).to_contain_text("tik gaunantys")
    rows = list(
        csv.DictReader(download(page, "#export-csv", "csv").decode("utf-8-sig").splitlines())
    )
    assert sorted(r["email"] for r in rows) == [
        "jonas@savivaldybe.example",
        "ona@savivaldybe.example",
    ]
    assert next(r for r in rows if r["email"].startswith("ona@"))["name"] == "'" + FORMULA
    sheet = load_workbook(io.BytesIO(download(page, "#export-xlsx", "xlsx"))).active
    cells = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}
    assert cells["ona@savivaldybe.example"].data_type == "s"
    assert cells["ona@savivaldybe.example"].value == "'" + FORMULA

    page.set_viewport_size({"width": 375, "height": 800})
    for path in ("/editor/lists", "/editor/lists/savivaldybes/edit"):
        page.goto(site.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "list-edit-375.png"), full_page=True)


def test_the_segment_builder_counts_live_and_the_campaign_holds_exactly_those(
    context,  # noqa: F811
    site: Site,  # noqa: F811
    people: dict[str, int],
) -> None:
    from playwright.sync_api import expect

    profiles = {
        "ona": ("direktorė", {"county": "Kauno"}),
        "jonas": ("vedėjas", {"county": "Šiaulių"}),
        "rasa": ("direktorė", {"county": "Šiaulių"}),
    }
    with db.transaction(site.settings.database) as session:
        for key, (role, attributes) in profiles.items():
            session.execute(
                update(Subscriber)
                .where(Subscriber.id == people[key])
                .values(role=role, attributes=attributes)
            )
    page = context.new_page()
    log_in(page, site)
    page.goto(f"{site.url}/editor/issues/{SLUG}/campaign")
    count = page.locator("#live-count")
    page.check("input[name=list][value=savivaldybes]")
    page.check("input[name=list][value=bibliotekos]")
    expect(count).to_have_text("3")
    page.select_option("select[name='seg.role']", ["direktorė"])
    expect(count).to_have_text("2")
    page.select_option("select[name='seg.county']", ["Šiaulių"])
    expect(count).to_have_text("1")

    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "campaign-segment-375.png"), full_page=True)
    page.fill("input[name=segment_name]", "Šiaulių direktorės")
    page.click("#save-segment")
    expect(page.locator("[role=status]")).to_contain_text("išsaugota")
    expect(count).to_have_text("1")

    page.goto(f"{site.url}/editor/issues/{SLUG}/campaign")
    page.check("input[name=list][value=savivaldybes]")
    page.check("input[name=list][value=bibliotekos]")
    expect(count).to_have_text("3")
    page.select_option("#saved-segment", label="Šiaulių direktorės")  # fills the builder
    expect(count).to_have_text("1")
    page.click("#continue")
    expect(page.locator("#recipient-count")).to_have_text("1")
    expect(page.locator("#segment-summary")).to_contain_text("Šiaulių")
    page.click("#start")
    expect(page).to_have_url(re.compile(r"/editor/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])
    with db.transaction(site.settings.database) as session:
        stored = session.scalar(select(Campaign.lists).where(Campaign.id == campaign_id))
        emails = session.scalars(
            select(OutboxRow.email).where(OutboxRow.campaign_id == campaign_id)
        ).all()
    assert stored["where"] == {"county": ["Šiaulių"], "role": ["direktorė"]}
    assert emails == ["rasa@biblioteka.example"]
