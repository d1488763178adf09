"""Importing a list file in a real browser (Debian's Chromium, Playwright) against uvicorn.

Upload → dry run → confirm → the counts change; the same upload again changes nothing;
a list changed between the two screens is refused; a too large or wrong file is refused
beside the file field, changing nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter import db
from newsletter.audience.subscribers import unsubscribe
from newsletter.web.audience.uploads import MAX_UPLOAD_BYTES
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.helpers import snapshot
from tests.web.test_browser import ARTIFACTS, Site, context, log_in, site  # noqa: F401

pytestmark = pytest.mark.browser

FILE = b"email,name,municipality\nona@savivaldybe.example,Ona Onaite,Siauliu m.\npetras@savivaldybe.example,Petras,Kauno r.\n"


def counts(page) -> str:
    """The savivaldybes row's active count as the page shows it."""
    return page.locator("tr[data-list=savivaldybes] td.active").inner_text()


def choose(page, name: str, content: bytes, *, sync: bool = False) -> None:
    page.goto(page.url.split("/editor/")[0] + "/editor/lists")
    page.set_input_files(
        "input[name=file]", files=[{"name": name, "mimeType": "text/csv", "buffer": content}]
    )
    page.select_option("select[name=list]", "savivaldybes")
    if sync:
        page.check("input[name=sync]")
    page.click("form[action='/editor/lists/upload'] button[type=submit]")


def test_upload_dry_run_confirm_and_refusals(context, site: Site, people: dict[str, int]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page = context.new_page()
    log_in(page, site)
    page.click("header nav a[href='/editor/lists']")
    expect(page.locator("h1")).to_have_text("Sąrašai")
    expect(page.locator("tr[data-list=savivaldybes] td.active")).to_have_text("2")

    choose(page, "nauji.csv", FILE)
    expect(page.locator("h1")).to_have_text("Ką importas pakeistų")
    expect(page.locator(".counts .added dd")).to_have_text("1")
    expect(page.locator(".counts .updated dd")).to_have_text("1")
    page.click("form[action='/editor/lists/upload/confirm'] button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("savivaldybes")
    expect(page.locator("tr[data-list=savivaldybes] td.active")).to_have_text("3")
    expect(page.locator("tr[data-list=savivaldybes] td.last-import")).to_contain_text("nauji.csv")

    choose(page, "nauji.csv", FILE)
    expect(page.locator(".counts .added dd")).to_have_text("0")
    expect(page.locator(".counts .unchanged dd")).to_have_text("2")
    page.click("form[action='/editor/lists/upload/confirm'] button[type=submit]")
    expect(page.locator("tr[data-list=savivaldybes] td.active")).to_have_text("3")

    choose(page, "tik-petras.csv", b"email\npetras@savivaldybe.example\n", sync=True)
    expect(page.locator("ul.leaving")).to_contain_text("jonas@savivaldybe.example")
    with db.transaction(site.settings.database) as session:
        unsubscribe(session, site.settings.key(), people["jonas"], people["towns"], "telephone")
    before = snapshot(site.settings.database)
    page.click("form[action='/editor/lists/upload/confirm'] button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("sąrašas pasikeitė")
    expect(page.locator("ul.leaving")).not_to_contain_text("jonas@")
    after = snapshot(site.settings.database)
    assert {k: v for k, v in after.items() if k != "pending_uploads"} == {
        k: v for k, v in before.items() if k != "pending_uploads"
    }

    before = snapshot(site.settings.database)
    page.goto(f"{site.url}/editor/lists")
    page.set_viewport_size({"width": 375, "height": 800})
    for name, content, message in (
        ("didelis.csv", b"email\n" + b"x" * (MAX_UPLOAD_BYTES + 1), "Failas didesnis nei 20 MB."),
        ("sarasas.pdf", b"%PDF-1.4", "sarasas.pdf: nežinomas failo tipas „.pdf“"),
    ):
        choose(page, name, content)
        expect(page.locator("#file-error")).to_contain_text(message)
        expect(page.locator("input[name=file]")).to_have_attribute("aria-invalid", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(Path(ARTIFACTS) / "lists-375.png"), full_page=True)
    assert snapshot(site.settings.database) == before
