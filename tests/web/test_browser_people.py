"""People in a real browser (Debian's Chromium, Playwright) against uvicorn.

Find "Šiaulių" by typing "siauliu", unsubscribe with a reason, see it in the consent
history, then a campaign started afterwards sends them nothing (the embedded sender,
the folder transport); erase from the browser, after which the page is gone and the
database files hold no plain text of the person.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import update

from newsletter import db
from newsletter.models import Subscriber
from tests.audience.factories import sqlite_bytes
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.issues import SLUG
from tests.web.test_browser import ARTIFACTS, Site, context, log_in, site  # noqa: F401

pytestmark = pytest.mark.browser


def recipients(outbox: Path) -> list[str]:
    """The address each message in the outbox folder went to."""
    return sorted(
        message_from_bytes(path.read_bytes(), policy=policy.default)["To"].addresses[0].addr_spec
        for path in outbox.glob("*.eml")
    )


def test_find_unsubscribe_with_a_reason_and_no_mail_afterwards(
    context,  # noqa: F811
    site: Site,  # noqa: F811
    people: dict[str, int],
) -> None:
    from playwright.sync_api import expect

    with db.transaction(site.settings.database) as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == people["ona"])
            .values(name="Ona Žemaitienė", municipality="Šiaulių m.")
        )  # a bulk UPDATE: the ORM listener does not see it
        session.get(Subscriber, people["ona"]).role = "merė"  # this write refreshes search
    page = context.new_page()
    log_in(page, site)
    page.set_viewport_size({"width": 375, "height": 800})
    page.click("details.menu summary")  # on a phone the links are behind "Meniu"
    page.click("header nav a[href='/editor/people']")
    page.fill("input[name=q]", "siauliu")
    page.click("form.search button[type=submit]")
    expect(page.locator("table.people td.email")).to_have_text(["ona@savivaldybe.example"])
    page.click("table.people td.email a")
    expect(page.locator("h1.person")).to_have_text("Ona Žemaitienė")

    form = page.locator("form.unsubscribe")
    form.locator("select[name=list_id]").select_option(str(people["towns"]))
    form.locator("input[name=reason]").fill("paskambino, prašė nebesiųsti")
    form.locator("button[type=submit]").click()
    expect(page.locator("[role=status]")).to_have_text("Išbraukta.")
    expect(page.locator("table.consent tr.unsubscribe td.detail")).to_contain_text(
        "paskambino, prašė nebesiųsti"
    )
    expect(page.locator("table.memberships tr[data-list=savivaldybes] td.status")).to_have_text(
        "atsisakė"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "person-375.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.set_viewport_size({"width": 1024, "height": 900})
    page.goto(f"{site.url}/editor/issues/{SLUG}/campaign")
    page.check("input[name=list][value=savivaldybes]")
    page.click("#continue")
    expect(page.locator("#recipient-count")).to_have_text("1")
    page.click("#start")
    expect(page).to_have_url(re.compile(r"/editor/campaigns/\d+$"))
    expect(page.locator("#status")).to_have_text("baigtas")
    assert recipients(site.settings.outbox) == ["jonas@savivaldybe.example"]


def test_erase_from_the_browser_leaves_no_plain_text(
    context,  # noqa: F811
    site: Site,  # noqa: F811
    people: dict[str, int],
) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    log_in(page, site)
    page.goto(f"{site.url}/editor/people?q=rasaite")
    page.click("table.people td.email a")
    form = page.locator("form.erase")
    form.locator("input[name=confirm_email]").fill("jonas@savivaldybe.example")
    form.locator("button[type=submit]").click()
    expect(page.locator("#erase-confirm_email-error")).to_contain_text("nesutampa")
    form = page.locator("form.erase")
    form.locator("input[name=confirm_email]").fill("Rasa@Biblioteka.example")
    form.locator("button[type=submit]").click()
    expect(page.locator("[role=status]")).to_contain_text("duomenys ištrinti")
    assert "compacted=1" in page.url
    answer = page.goto(f"{site.url}/editor/people/{people['rasa']}")
    assert answer is not None and answer.status == 404

    raw = sqlite_bytes(site.settings.database)
    assert b"jonas@savivaldybe.example" in raw  # nobody else was touched
    for trace in ("rasa@biblioteka.example", "rasaitė", "rasaite", "Rasaitė"):
        assert trace.encode() not in raw, trace
