"""Images and sponsors in a real browser: Debian's Chromium, driven by Playwright, against uvicorn."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest

from newsletter import db
from tests.web.axe import violations
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.issues import SLUG, write_issue
from tests.web.server import free_port, running
from tests.web.shared import module_settings
from tests.web.test_browser import ARTIFACTS, Site, context, log_in  # noqa: F401  (fixtures)
from tests.web.test_images import jpeg_with_gps

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__ran = 1; alert(1)">'
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
PASTE = """([data, name, type]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  const paste = new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true });
  document.querySelector("#edit-form textarea[name=text]").dispatchEvent(paste);
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app on a free port for the module: an editor, one issue, a copy of the registry."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = module_settings(tmp_path_factory.mktemp("browser-media"), url)
    issue = write_issue(settings.issues_dir)
    with running(settings, port) as access_log:
        yield Site(url, settings, issue, access_log)
    db.dispose(settings.database)


def watch_dialogs(page) -> list[str]:
    """Every alert/confirm the page opens (an XSS payload that ran would open one)."""
    opened: list[str] = []

    def record(dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def fits_a_phone(page) -> bool:
    page.set_viewport_size({"width": 375, "height": 800})
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size({"width": 1024, "height": 900})
    return width <= 375


def test_paste_an_image_give_alt_text_and_see_it_in_the_preview(context, site: Site) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page = context.new_page()
    opened = watch_dialogs(page)
    log_in(page, site)
    page.goto(f"{site.url}/editor/issues/{SLUG}/edit")
    textarea = page.locator("#edit-form textarea[name=text]")
    page.wait_for_selector(".cm-content")  # the editor has taken over the textarea
    page.evaluate("() => window.NewsletterEditor.focus()")
    page.keyboard.press("Control+End")
    photo = base64.b64encode(jpeg_with_gps((1800, 900))).decode()
    page.evaluate(PASTE, [photo, "image.jpg", "image/jpeg"])
    dialog = page.locator("#media-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#media-dialog-alt")).to_be_focused()
    page.click("#media-dialog-insert")
    expect(page.locator("#media-dialog-error")).to_have_text(
        "Parašykite alternatyvųjį tekstą: ką paveikslėlis rodo."
    )
    page.fill("#media-dialog-alt", f"Skaitykla {XSS}")
    page.click("#media-dialog-insert")
    expect(dialog).to_be_hidden()
    inserted = re.compile(
        r"!\[Skaitykla <img src=x onerror=\"window.__ran = 1; alert\(1\)\">\]\(/media/[0-9a-f]{64}\.jpg\)\n$"
    )
    expect(textarea).to_have_value(inserted)

    # An SVG chosen with the button is refused beside the field; the text stays as it was.
    before = textarea.input_value()
    with page.expect_file_chooser() as chooser:
        page.click("#media-button")
    chooser.value.set_files(
        files=[{"name": "logo.svg", "mimeType": "image/svg+xml", "buffer": SVG}]
    )
    page.fill("#media-dialog-alt", "Logotipas")
    page.click("#media-dialog-insert")
    expect(page.locator("#media-dialog-error")).to_have_text(
        "SVG ir HTML failai nepriimami: juose gali būti scenarijų."
    )
    page.click("#media-dialog-cancel")
    assert textarea.input_value() == before

    page.click("#edit-form button[type=submit]")
    expect(page.locator("#saved")).to_have_text("Išsaugota.")
    image = page.frame_locator("#frame").locator("img[src*='/media/']")
    expect(image).to_have_attribute("alt", f"Skaitykla {XSS}")
    expect(image).to_have_attribute(
        "src", re.compile(rf"^{re.escape(site.url)}/media/[0-9a-f]{{64}}\.jpg$")
    )
    expect(image).to_have_js_property("naturalWidth", 1200)  # loaded from the library

    page.goto(f"{site.url}/editor/media")
    expect(page.locator(".media-item .alt")).to_have_text(f"Skaitykla {XSS}")
    assert fits_a_phone(page)
    page.screenshot(path=str(ARTIFACTS / "editor-media-library.png"), full_page=True)
    assert page.evaluate("window.__ran") is None
    assert opened == []


def test_a_sponsor_added_in_the_browser_shows_in_the_preview(
    context,  # noqa: F811
    site: Site,
    browser,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    opened = watch_dialogs(page)
    log_in(page, site)
    page.click("text=Rėmėjai")
    form = page.locator("#new-sponsor")
    form.locator("input[name=name]").fill(f"Kauno biblioteka {XSS}")
    form.locator("select[name=tier]").select_option("main")
    form.locator("input[name=url]").fill("https://www.kaunobiblioteka.lt")
    form.locator("button[type=submit]").click()
    expect(page.locator("#sponsors-saved")).to_be_visible()
    main_tier = page.locator("section[data-tier=main] .sponsor .name")
    expect(main_tier.last).to_have_text(f"Kauno biblioteka {XSS}")
    page.locator("section[data-tier=main] .sponsor").last.get_by_role(
        "button", name=re.compile("^Aukštyn")
    ).click()
    expect(page.locator("#sponsors-saved")).to_be_visible()
    expect(main_tier.nth(1)).to_have_text(f"Kauno biblioteka {XSS}")
    assert fits_a_phone(page)
    page.screenshot(path=str(ARTIFACTS / "editor-sponsors.png"))

    page.goto(f"{site.url}/editor/issues/{SLUG}")
    email = page.frame_locator("#frame").locator("body")
    expect(email.locator("a[href='https://www.kaunobiblioteka.lt']")).to_have_text(
        f"Kauno biblioteka {XSS}"
    )
    assert page.evaluate("window.__ran") is None
    assert opened == []

    # axe-core, on a phone, in a profile that lets its script in (tests/web/axe.py).
    checking = browser.new_context(
        locale="lt-LT",
        viewport={"width": 375, "height": 800},
        bypass_csp=True,
        storage_state=context.storage_state(),  # logged in already
    )
    try:
        page = checking.new_page()
        for path in ("/editor/sponsors", "/editor/media"):
            page.goto(f"{site.url}{path}")
            assert violations(page) == [], path
    finally:
        checking.close()
