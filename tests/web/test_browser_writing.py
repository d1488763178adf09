"""Writing issues in a real browser: Debian's Chromium, driven by Playwright, against uvicorn."""

from __future__ import annotations

import pytest

from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.issues import SLUG, issue_text
from tests.web.test_browser import Site, context, log_in, site  # noqa: F401  (fixtures)
from tests.web.test_browser_editor import replace_text

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__ran = 1">'


def test_create_an_issue_and_see_it_in_the_preview(context, site: Site) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.dismiss())
    log_in(page, site)
    page.click("text=Naujas numeris")
    page.fill("input[name=subject]", "Per trumpa")
    page.fill("input[name=date]", "2026-12-01")
    page.click("#new-issue button[type=submit]")
    expect(page.locator("#error-body")).to_have_text("Parašykite numerio tekstą.")
    page.fill("input[name=subject]", f"Žiemos šventės {XSS}")
    page.fill("textarea[name=body]", f"# Gruodžio naujienos\n\nSveiki! {XSS}\n")
    page.click("#new-issue button[type=submit]")
    slug = "2026-12-01-ziemos-sventes-img-src-x-onerror-window-ran-1"
    expect(page).to_have_url(f"{site.url}/editor/issues/{slug}/edit")
    email = page.frame_locator("#frame").locator("body")
    expect(email).to_contain_text("Gruodžio naujienos")
    expect(email.locator("h1").first).to_have_text(f"Žiemos šventės {XSS}")  # as text
    expect(page.locator("textarea[name=text]")).to_have_value(
        '---\nsubject: Žiemos šventės <img src=x onerror="window.__ran = 1">\n'
        "date: 2026-12-01\nlang: lt\nsponsors:\n- main\n---\n"
        f"# Gruodžio naujienos\n\nSveiki! {XSS}\n"
    )
    assert page.evaluate("window.__ran") is None
    assert (site.settings.issues_dir / f"{slug}.md").is_file()


def test_save_and_reload(context, site: Site) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page = context.new_page()
    log_in(page, site)
    page.goto(f"{site.url}/editor/issues/{SLUG}")
    page.click("text=Redaguoti")
    expect(page.locator("textarea[name=text]")).to_have_value(issue_text())
    replace_text(page, issue_text(paragraph="Naujas sakinys iš naršyklės."))
    page.click("#edit-form button[type=submit]")
    expect(page.locator("#saved")).to_have_text("Išsaugota.")
    page.reload()
    expect(page.locator("textarea[name=text]")).to_have_value(
        issue_text(paragraph="Naujas sakinys iš naršyklės.")
    )
    expect(page.frame_locator("#frame").locator("body")).to_contain_text(
        "Naujas sakinys iš naršyklės."
    )
    assert site.issue.read_text(encoding="utf-8") == issue_text(
        paragraph="Naujas sakinys iš naršyklės."
    )


def test_a_broken_front_matter_saves_as_a_draft_and_the_campaign_page_refuses_it(
    context,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    log_in(page, site)
    page.goto(f"{site.url}/editor/issues/{SLUG}/edit")
    broken = "---\nsubject: [neuždaryta\n---\nTekstas\n"
    replace_text(page, broken)
    page.click("#edit-form button[type=submit]")
    expect(page.locator("#compile-error")).to_contain_text("Išsaugota kaip juodraštis")
    expect(page.locator("#compile-error")).to_contain_text(f"{SLUG}.md:2")
    expect(page.locator("textarea[name=text]")).to_have_value(broken)
    assert site.issue.read_text(encoding="utf-8") == broken
    page.goto(f"{site.url}/editor/issues/{SLUG}/campaign")
    expect(page.locator("[role=alert]")).to_contain_text("Numerio nepavyksta sukompiliuoti")
