"""The editors' navigation in a real browser: a "Meniu" disclosure on a phone, a row on a desk.

Debian's Chromium (Playwright) against uvicorn, under the app's own CSP: at 375 px the
header is one line (the name and "Meniu") until the menu is opened, by a tap or from the
keyboard, and its links work; at 1280 px every link is shown and there is no menu button.
The current page is marked (``aria-current``); a finished campaign's dashboard offers no
steering buttons. Screenshots go to test-artifacts/ (not kept in git) to look at.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from newsletter import db
from newsletter.compose.issue import compile_file
from newsletter.dispatch import campaign
from newsletter.models import Campaign
from tests.web.axe import violations
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.issues import SLUG
from tests.web.test_browser import ARTIFACTS, WAIT_MS, Site, log_in, site  # noqa: F401

pytestmark = pytest.mark.browser

#: The editors' links (an editor with every role), in the order the header shows them.
LINKS = [
    "/editor/",
    "/editor/campaigns",
    "/editor/lists",
    "/editor/people",
    "/editor/admin/users",
    "/editor/audit",
    "/editor/media",
    "/editor/sponsors",
    "/editor/reports/sponsors",
    "/archive",
    "/subscribe",
]


def done_campaign(served: Site, status: str = "done") -> int:
    """A campaign of the issue (no outbox rows) that has finished, or is in ``status``."""
    compiled = compile_file(served.issue, served.settings)
    created = campaign.create(served.settings, compiled, ["bibliotekos"], {}, hold=True)
    with db.transaction(served.settings.database) as session:
        session.execute(
            update(Campaign).where(Campaign.id == created.campaign_id).values(status=status)
        )
    return created.campaign_id


def open_page(browser, site: Site, width: int, *, bypass_csp: bool = False):  # noqa: F811
    """A logged-in page at ``width``; CSP violations it reports are collected on it."""
    ctx = browser.new_context(
        locale="lt-LT", viewport={"width": width, "height": 900}, bypass_csp=bypass_csp
    )
    ctx.set_default_timeout(WAIT_MS)
    page = ctx.new_page()
    page.csp_errors = []
    page.on(
        "console",
        lambda m: page.csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    log_in(page, site)
    return ctx, page


def link(page, href: str):
    return page.locator(f"header nav a[href='{href}']")


def test_on_a_phone_the_menu_is_one_line_closed_and_opens_to_a_list(
    browser,  # noqa: F811
    site: Site,  # noqa: F811
    people: dict[str, int],
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    campaign_id = done_campaign(site)
    ctx, page = open_page(browser, site, 375)
    try:
        page.goto(f"{site.url}/editor/campaigns/{campaign_id}")
        summary = page.locator("details.menu summary")
        expect(summary).to_be_visible()
        expect(summary).to_have_text("Meniu")
        for href in LINKS:
            expect(link(page, href)).to_be_hidden()
        brand = page.locator("header.site .brand").bounding_box()
        button = summary.bounding_box()
        header = page.locator("header.site").bounding_box()
        assert brand is not None and button is not None and header is not None
        # One line: the name and the button side by side, the header no taller than them.
        assert (
            brand["y"] < button["y"] + button["height"]
            and button["y"] < brand["y"] + brand["height"]
        )
        assert header["height"] <= max(brand["height"], button["height"]) + 32
        assert header["width"] <= 375
        # A finished campaign: no pause, resume or cancel, only the report.
        for action in ("pause", "resume", "cancel"):
            expect(page.locator(f"#{action}")).to_be_hidden()
        expect(page.locator("#report")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "nav-dashboard-375-closed.png"), full_page=True)

        summary.click()
        expect(page.locator("details.menu")).to_have_attribute("open", "")
        tops = []
        for href in LINKS:
            expect(link(page, href)).to_be_visible()
            box = link(page, href).bounding_box()
            assert box is not None and box["x"] + box["width"] <= 375
            assert box["width"] >= 300  # a row of its own, easy to tap
            tops.append(box["y"])
        assert tops == sorted(tops) and len(set(tops)) == len(tops)  # a list, one under another
        expect(page.locator("header nav button", has_text="Atsijungti")).to_be_visible()
        expect(link(page, "/editor/campaigns")).to_have_attribute("aria-current", "true")
        page.screenshot(path=str(ARTIFACTS / "nav-dashboard-375-open.png"), full_page=True)

        link(page, "/editor/lists").click()
        page.wait_for_url(f"{site.url}/editor/lists")
        expect(page.locator("h1")).to_have_text("Sąrašai")
        expect(page.locator("details.menu")).not_to_have_attribute("open", "")
        expect(link(page, "/editor/lists")).to_be_hidden()

        # From the keyboard: the button takes the focus, Enter opens and closes it.
        page.locator("details.menu summary").focus()
        page.keyboard.press("Enter")
        expect(link(page, "/editor/lists")).to_be_visible()
        expect(link(page, "/editor/lists")).to_have_attribute("aria-current", "page")
        page.keyboard.press("Tab")
        expect(link(page, "/editor/")).to_be_focused()
        page.locator("details.menu summary").focus()
        page.keyboard.press("Enter")
        expect(link(page, "/editor/lists")).to_be_hidden()
        page.goto(f"{site.url}/editor/issues/{SLUG}/test")
        page.screenshot(path=str(ARTIFACTS / "nav-editor-375.png"), full_page=True)
        paused = done_campaign(site, "paused")
        page.goto(f"{site.url}/editor/campaigns/{paused}")
        expect(page.locator("#pause")).to_be_hidden()
        expect(page.locator("#resume")).to_be_visible()
        expect(page.locator("#cancel")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "nav-paused-375.png"), full_page=True)
        # Cancelled elsewhere while the page is open: the script hides what no longer applies.
        campaign.cancel(site.settings, paused)
        expect(page.locator("#status")).to_have_text("atšauktas")
        for action in ("pause", "resume", "cancel"):
            expect(page.locator(f"#{action}")).to_be_hidden()
        assert page.csp_errors == []
    finally:
        ctx.close()


def test_on_a_wide_screen_every_link_is_shown_in_a_row(
    browser,  # noqa: F811
    site: Site,  # noqa: F811
    people: dict[str, int],
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    campaign_id = done_campaign(site)
    ctx, page = open_page(browser, site, 1280)
    try:
        page.goto(f"{site.url}/editor/campaigns/{campaign_id}")
        expect(page.locator("details.menu summary")).to_be_hidden()
        items = [link(page, href) for href in LINKS]
        items += [page.locator("header nav a.lang"), page.locator("header nav button.link")]
        middles = []
        for item in items:
            expect(item).to_be_visible()
            box = item.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1280
            middles.append(box["y"] + box["height"] / 2)
        assert max(middles) - min(middles) < 8, middles  # one row
        expect(link(page, "/editor/campaigns")).to_have_attribute("aria-current", "true")
        page.screenshot(path=str(ARTIFACTS / "nav-dashboard-1280.png"), full_page=True)
        link(page, "/editor/people").click()
        page.wait_for_url(f"{site.url}/editor/people")
        expect(link(page, "/editor/people")).to_have_attribute("aria-current", "page")
        page.goto(f"{site.url}/editor/issues/{SLUG}/test")
        expect(link(page, "/editor/")).to_have_attribute("aria-current", "true")
        expect(page.locator("header nav a[aria-current]")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "nav-editor-1280.png"), full_page=True)
        assert page.csp_errors == []
    finally:
        ctx.close()


@pytest.mark.parametrize("width", [375, 1280])
def test_the_editors_header_has_no_axe_violations(
    browser,  # noqa: F811
    site: Site,  # noqa: F811
    people: dict[str, int],
    width: int,
) -> None:
    campaign_id = done_campaign(site)
    ctx, page = open_page(browser, site, width, bypass_csp=True)  # axe is injected
    try:
        page.goto(f"{site.url}/editor/campaigns/{campaign_id}")
        if width < 700:
            page.locator("details.menu summary").click()
        found = violations(page)
        assert found == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in found]
    finally:
        ctx.close()
