"""The Markdown editor in a real browser: CodeMirror over the textarea, the live preview of
unsaved text, lint at its lines, autosave and its restore, the toolbar.

One server and one browser serve the whole module (the tests restore the issue file and
drop drafts they make), to keep the added wall time small.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from newsletter import db, users
from newsletter.models import IssueDraft
from newsletter.settings import Secret, Settings
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD
from tests.web.issues import SLUG, issue_text, write_issue
from tests.web.server import free_port, running
from tests.web.test_browser import WAIT_MS, Site, log_in

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__ran = 1">'


@pytest.fixture(scope="module")
def module_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app on a free port with an editor account and one issue, for the whole module."""
    from tests.conftest import ROOT

    folder = tmp_path_factory.mktemp("editor")
    port = free_port()
    url = f"sqlite:///{folder / 'web.db'}"
    db.migrate(url)
    (folder / "issues").mkdir()
    settings = Settings(
        data_dir=folder / "var",
        issues_dir=folder / "issues",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        base_url=f"http://127.0.0.1:{port}",
        database_url=url,
        secret_key=Secret("test-secret-key-0123456789abcdef"),
    )
    with db.transaction(url) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
    issue = write_issue(settings.issues_dir)
    with running(settings, port) as access_log:
        yield Site(f"http://127.0.0.1:{port}", settings, issue, access_log)
    db.dispose(url)


@pytest.fixture
def site(module_site: Site) -> Iterator[Site]:
    """The module's site with the issue as first written and no drafts."""
    write_issue(module_site.settings.issues_dir)
    yield module_site
    with db.transaction(module_site.settings.database) as session:
        session.execute(delete(IssueDraft))


@pytest.fixture(scope="module")
def logged_in(browser, module_site: Site):  # noqa: F811
    """One logged-in browser profile for the module (Lithuanian first)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    ctx = browser.new_context(locale="lt-LT", viewport={"width": 1024, "height": 900})
    ctx.set_default_timeout(WAIT_MS)
    page = ctx.new_page()
    log_in(page, module_site)
    page.close()
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(logged_in, site: Site):
    """A new page in the logged-in profile; the CSP violations it reports are collected."""
    page = logged_in.new_page()
    page.csp_errors = []
    page.on(
        "console",
        lambda message: (
            page.csp_errors.append(f"{message.text} at {message.location}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield page
    page.close()


def open_editor(page, site: Site) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site.url}/editor/issues/{SLUG}/edit")
    expect(page.locator("#code-editor .cm-content")).to_be_visible()


PASTE = """text => {
    const data = new DataTransfer();
    data.setData("text/plain", text);
    const event = new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true});
    document.querySelector("#code-editor").shadowRoot.querySelector(".cm-content").dispatchEvent(event);
}"""


def replace_text(page, text: str) -> None:
    """Select everything in the editor and paste ``text`` over it."""
    page.locator("#code-editor .cm-content").click()
    page.keyboard.press("Control+a")
    page.evaluate(PASTE, text)


def test_typing_updates_the_preview_without_saving(page, site: Site) -> None:
    from playwright.sync_api import expect

    open_editor(page, site)
    assert page.locator("textarea[name=text]").is_hidden()
    replace_text(page, issue_text(paragraph=f"Neišsaugotas {XSS}"))
    page.locator("#code-editor .cm-line", has_text="Neišsaugotas").click()
    page.keyboard.press("End")
    page.keyboard.type(" sakinys")
    email = page.frame_locator("#frame").locator("body")
    expect(email).to_contain_text("Neišsaugotas sakinys")
    expect(page.locator("#text")).to_contain_text("Neišsaugotas sakinys")
    expect(page.locator("#code-editor")).to_contain_text(f"Neišsaugotas {XSS} sakinys")
    assert site.issue.read_text(encoding="utf-8") == issue_text()
    assert page.evaluate("window.__ran") is None
    assert page.frame_locator("#frame").locator("img[onerror]").count() == 0
    assert page.csp_errors == [], "\n".join(page.csp_errors)


def test_a_parse_error_shows_one_line_and_keeps_the_last_preview(page, site: Site) -> None:
    from playwright.sync_api import expect

    open_editor(page, site)
    replace_text(page, "---\nsubject: [neuždaryta\n---\nTekstas\n")
    expect(page.locator("#error-text")).to_contain_text(f"{SLUG}.md:2")
    expect(page.locator("#code-editor .cm-lint-marker-error")).to_have_count(1)
    expect(page.frame_locator("#frame").locator("body")).to_contain_text("Bibliotekose vyko")


def test_lint_findings_at_their_lines_and_the_size_meter(page, site: Site) -> None:
    from playwright.sync_api import expect

    open_editor(page, site)
    size = page.locator("#size")
    expect(size).to_contain_text("KB / 102 KB")
    before = size.text_content()
    replace_text(page, issue_text(paragraph="TK " + "Ilgas sakinys. " * 400))
    expect(page.locator("#code-editor .cm-gutter-lint .cm-lint-marker")).not_to_have_count(0)
    expect(size).not_to_have_text(before or "")


def test_toolbar_bold_and_the_shortcut(page, site: Site) -> None:
    from playwright.sync_api import expect

    open_editor(page, site)
    line = page.locator("#code-editor .cm-line", has_text="Bibliotekose vyko mokymai.")
    line.click()
    page.keyboard.press("End")
    page.keyboard.press("Shift+Home")
    page.click("#editor-toolbar button[data-command=bold]")
    expect(page.locator("textarea[name=text]")).to_have_value(
        issue_text(paragraph="**Bibliotekose vyko mokymai.**")
    )
    page.keyboard.press("Control+z")
    expect(page.locator("textarea[name=text]")).to_have_value(issue_text())
    page.keyboard.press("Control+i")
    expect(page.locator("textarea[name=text]")).to_have_value(
        issue_text(paragraph="_Bibliotekose vyko mokymai._")
    )
    assert (
        page.locator("#editor-toolbar button[data-command=bold]").get_attribute("aria-label")
        == "Paryškinti (Ctrl+B)"
    )


def test_ctrl_s_saves_and_the_text_survives_a_reload(page, site: Site) -> None:
    from playwright.sync_api import expect

    open_editor(page, site)
    replace_text(page, issue_text(paragraph="Išsaugota klaviatūra."))
    page.keyboard.press("Control+s")
    expect(page.locator("#saved")).to_have_text("Išsaugota.")
    page.reload()
    expect(page.locator("textarea[name=text]")).to_have_value(
        issue_text(paragraph="Išsaugota klaviatūra.")
    )
    assert site.issue.read_text(encoding="utf-8") == issue_text(paragraph="Išsaugota klaviatūra.")


def test_autosave_is_offered_back_and_restored(page, site: Site) -> None:
    from playwright.sync_api import expect

    open_editor(page, site)
    draft = issue_text(paragraph="Automatiškai išsaugotas juodraštis.")
    replace_text(page, draft)
    expect(page.locator("#edit-form")).to_have_attribute("data-autosaved", "1")
    assert site.issue.read_text(encoding="utf-8") == issue_text()
    page.goto(f"{site.url}/editor/issues/{SLUG}/edit")
    expect(page.locator("#draft-offer")).to_be_visible()
    expect(page.locator("textarea[name=text]")).to_have_value(issue_text())
    page.click("#draft-restore")
    expect(page.locator("textarea[name=text]")).to_have_value(draft)
    expect(page.frame_locator("#frame").locator("body")).to_contain_text("Automatiškai")
    page.click("#edit-form button[type=submit]")
    expect(page.locator("#saved")).to_have_text("Išsaugota.")
    expect(page.locator("#draft-offer")).to_have_count(0)
    assert site.issue.read_text(encoding="utf-8") == draft


def test_a_change_on_disk_meanwhile_is_merged_and_nothing_is_lost(page, site: Site) -> None:
    from playwright.sync_api import expect

    open_editor(page, site)
    mine = issue_text(paragraph="Mano sakinys.")
    replace_text(page, mine)
    theirs = issue_text(paragraph="Sakinys, įrašytas diske.")
    site.issue.write_text(theirs, encoding="utf-8")
    page.click("#edit-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Numeris pasikeitė, kol jį redagavote")
    expect(page.locator("#diff .del")).to_contain_text("Sakinys, įrašytas diske.")
    expect(page.locator("#diff .add")).to_contain_text("Mano sakinys.")
    expect(page.locator("#theirs textarea")).to_have_value(theirs)
    expect(page.locator("#merged")).to_have_value(mine)
    page.click("#take-current")
    expect(page.locator("#merged")).to_have_value(theirs)
    page.click("#take-mine")
    expect(page.locator("#merged")).to_have_value(mine)
    assert site.issue.read_text(encoding="utf-8") == theirs
    merged = issue_text(paragraph="Sakinys, įrašytas diske. Mano sakinys.")
    page.fill("#merged", merged)
    page.click("#yours button[type=submit]")
    expect(page.locator("#saved")).to_have_text("Išsaugota.")
    assert site.issue.read_text(encoding="utf-8") == merged


def test_the_editor_on_a_phone(logged_in, site: Site) -> None:
    from playwright.sync_api import expect

    page = logged_in.new_page()
    page.set_viewport_size({"width": 375, "height": 740})
    try:
        open_editor(page, site)
        expect(page.locator("#editor-toolbar")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
        page.screenshot(path=str(_artifacts() / "editor-phone.png"), full_page=True)
    finally:
        page.close()


def _artifacts() -> Path:
    from tests.web.test_browser import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
