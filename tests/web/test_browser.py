"""The web app in a real browser: Debian's Chromium, driven by Playwright, against uvicorn.

Waiting is done with Playwright's auto-waiting expectations (generous timeouts, no timed
assertions); screenshots at 375 and 1024 px are kept under ``test-artifacts/``.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter import db, users
from newsletter.audience import tokens
from newsletter.models import Membership
from newsletter.settings import Settings
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD
from tests.web.helpers import compiled_issue, store_campaign
from tests.web.issues import SLUG, issue_text, write_issue
from tests.web.server import Records, free_port, running

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 15_000
pytestmark = pytest.mark.browser


@dataclass
class Site:
    """A running app and what the tests need to know about it."""

    url: str
    settings: Settings
    issue: Path
    access_log: Records


@pytest.fixture
def site(web_settings: Settings, people: dict[str, int], tmp_path: Path) -> Iterator[Site]:
    """The app served by uvicorn on a free port, with an editor and one issue file."""
    port = free_port()
    settings = web_settings.replace(base_url=f"http://127.0.0.1:{port}")
    with db.transaction(settings.database) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
    issue = write_issue(settings.issues_dir)
    with running(settings, port) as access_log:
        yield Site(f"http://127.0.0.1:{port}", settings, issue, access_log)


@pytest.fixture
def context(browser, site: Site):  # noqa: F811
    """A fresh browser profile (no cookies) per test, Lithuanian first; closed before the site."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    ctx = browser.new_context(locale="lt-LT", viewport={"width": 1024, "height": 900})
    ctx.set_default_timeout(WAIT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


def log_in(page, site: Site) -> None:
    page.goto(f"{site.url}/editor/login")
    page.fill("input[name=email]", EDITOR_EMAIL)
    page.fill("input[name=password]", EDITOR_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/editor/")


def test_log_in_and_see_the_issues(context, site: Site) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(f"{site.url}/editor/")
    expect(page).to_have_url(re.compile(r"/editor/login\?next="))
    page.fill("input[name=email]", EDITOR_EMAIL)
    page.fill("input[name=password]", "neteisingas-slaptazodis")
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("Neteisingas el. paštas arba slaptažodis.")
    log_in(page, site)
    row = page.locator("table.list tbody tr")
    expect(row).to_contain_text("Bibliotekos pažangai – vasario naujienos")
    expect(row).to_contain_text("2026-02-01")


def test_preview_widths_tabs_and_live_reload(context, site: Site) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    log_in(page, site)
    page.goto(f"{site.url}/editor/issues/{SLUG}")
    frame = page.frame_locator("#frame")
    expect(frame.locator("body")).to_contain_text("Vasario naujienos")
    expect(page.locator("#size")).to_contain_text("KB / 102 KB")
    expect(page.locator("#findings")).to_contain_text("Pastabų nėra.")
    page.evaluate("window.__samePage = true")  # lost if the page reloads

    page.click("#tab-phone")
    expect(page.locator("#frame")).to_have_js_property("offsetWidth", 375)
    page.click("#tab-text")
    expect(page.locator("#pane-text")).to_be_visible()
    expect(page.locator("#pane-email")).to_be_hidden()
    expect(page.locator("#text")).to_contain_text("Sveiki, Jonas Jonaitis!")

    # Save a new version on disk: the open page follows by itself.
    site.issue.write_text(
        issue_text(paragraph="Naujas sakinys apie skaitytojus."), encoding="utf-8"
    )
    expect(page.locator("#text")).to_contain_text("Naujas sakinys apie skaitytojus.")
    expect(page.locator("#tab-text")).to_have_attribute("aria-selected", "true")
    assert page.evaluate("window.__samePage") is True
    page.click("#tab-phone")
    expect(frame.locator("body")).to_contain_text("Naujas sakinys apie skaitytojus.")
    expect(page.locator("#frame")).to_have_js_property("offsetWidth", 375)

    # A file that no longer parses: the error shows, the last good email stays.
    site.issue.write_text("---\nsubject: [sugadinta\n---\nTekstas\n", encoding="utf-8")
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error-text")).to_contain_text(f"{SLUG}.md:2")
    expect(frame.locator("body")).to_contain_text("Naujas sakinys apie skaitytojus.")
    site.issue.write_text(issue_text(heading="Pataisyta"), encoding="utf-8")
    expect(page.locator("#error")).to_be_hidden()
    expect(frame.locator("body")).to_contain_text("Pataisyta")
    assert page.evaluate("window.__samePage") is True

    # The chosen width and tab survive even a full reload.
    page.reload()
    expect(page.locator("#tab-phone")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#frame")).to_have_js_property("offsetWidth", 375)


def test_preview_as_a_subscriber_and_html_source(
    context, site: Site, people: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    log_in(page, site)
    page.goto(f"{site.url}/editor/issues/{SLUG}")
    page.select_option("#preview-as", str(people["ona"]))
    frame = page.frame_locator("#frame")
    expect(frame.locator("body")).to_contain_text("Sveiki, Ona Onaitė!")
    page.click("#tab-source")
    expect(page.locator("#source")).to_contain_text("<!doctype html>")
    expect(page.locator("#source")).to_contain_text(
        f"/u/{tokens.make_token(site.settings.key(), people['ona'], None)}"
    )


def test_screenshots_at_phone_and_desktop_width(browser, site: Site) -> None:  # noqa: F811
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    for width in (375, 1024):
        ctx = browser.new_context(locale="lt-LT", viewport={"width": width, "height": 900})
        ctx.set_default_timeout(WAIT_MS)
        try:
            page = ctx.new_page()
            log_in(page, site)
            page.goto(f"{site.url}/editor/issues/{SLUG}")
            if width < 600:
                page.click("#tab-phone")
            expect(page.frame_locator("#frame").locator("body")).to_contain_text(
                "Vasario naujienos"
            )
            page.screenshot(path=str(ARTIFACTS / f"preview-{width}.png"), full_page=True)
            page.goto(f"{site.url}/subscribe")
            page.screenshot(path=str(ARTIFACTS / f"subscribe-{width}.png"), full_page=True)
        finally:
            ctx.close()
        assert (ARTIFACTS / f"preview-{width}.png").stat().st_size > 0


def membership(settings: Settings, subscriber_id: int, list_id: int) -> str:
    with db.transaction(settings.database) as session:
        return session.scalar(
            select(Membership.status).where(
                Membership.subscriber_id == subscriber_id, Membership.list_id == list_id
            )
        )


def test_unsubscribe_end_to_end(context, site: Site, people: dict[str, int]) -> None:
    from playwright.sync_api import expect

    token = tokens.make_token(site.settings.key(), people["jonas"], people["towns"])
    page = context.new_page()
    page.goto(f"{site.url}/u/{token}")
    expect(page.locator("h1")).to_have_text("Atsisakyti prenumeratos")
    assert membership(site.settings, people["jonas"], people["towns"]) == "active"
    page.click("#unsubscribe")
    expect(page.locator("#done")).to_contain_text("Prenumeratos atsisakyta")
    assert membership(site.settings, people["jonas"], people["towns"]) == "unsubscribed"
    assert not any(token in line for line in site.access_log.lines)
    assert any("/u/[token]" in line for line in site.access_log.lines)


@contextmanager
def other_site() -> Iterator[str]:
    """A plain page served from another port: a different origin, with no CSP of ours."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = "<!doctype html><p>kita svetainė</p>".encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_one_click_post_without_cookies_from_another_origin(
    context, site: Site, people: dict[str, int]
) -> None:
    token = tokens.make_token(site.settings.key(), people["ona"], people["towns"])
    page = context.new_page()
    with other_site() as other:  # another origin: another port on loopback
        page.goto(other)
        status = page.evaluate(
            """async (url) => {
                const answer = await fetch(url, {method: "POST", mode: "no-cors", credentials: "omit",
                    headers: {"Content-Type": "application/x-www-form-urlencoded"},
                    body: "List-Unsubscribe=One-Click"});
                return answer.type;
            }""",
            f"{site.url}/u/{token}",
        )
    assert status == "opaque"
    assert membership(site.settings, people["ona"], people["towns"]) == "unsubscribed"

    # As a mail provider's server sends it: no cookies, no redirect followed, 200.
    api = context.request
    answer = api.post(
        f"{site.url}/u/{token}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "https://mail.example",
        },
        data="List-Unsubscribe=One-Click",
        max_redirects=0,
    )
    assert answer.status == 200
    assert "set-cookie" not in answer.headers


def test_editor_post_without_csrf_token_is_refused(context, site: Site) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    log_in(page, site)
    status = page.evaluate(
        """async () => (await fetch("/editor/logout", {method: "POST", credentials: "same-origin"})).status"""
    )
    assert status == 403
    page.goto(f"{site.url}/editor/")
    page.evaluate(
        "document.querySelector('form[action=\"/editor/logout\"] input[name=csrf_token]').remove()"
    )
    page.click("form[action='/editor/logout'] button")
    expect(page.locator("h1")).to_have_text("Užklausa atmesta")
    page.goto(f"{site.url}/editor/")
    expect(page).to_have_url(f"{site.url}/editor/")  # still logged in


MARKER = 'document.title="PWNED";parent.document.title="PWNED";fetch("/probe-script")'


def templates_with_a_script(source: Path, target: Path) -> Path:
    """A copy of the email templates whose content block carries a raw <script>."""
    shutil.copytree(source, target)
    content = target / "default" / "content.mjml.j2"
    content.write_text(
        f"<mj-raw><script>{MARKER}</script></mj-raw>\n" + content.read_text("utf-8"), "utf-8"
    )
    return target


def test_a_script_in_an_issue_never_runs_in_the_preview(
    context, site: Site, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    # In the Markdown (removed when compiled) and in a template (kept in the HTML).
    site.issue.write_text(
        issue_text(
            paragraph=f'<script>{MARKER}</script>\n\n<img src="/probe-img" onerror=\'{MARKER}\' alt="x">'
        ),
        encoding="utf-8",
    )
    templates = templates_with_a_script(site.settings.templates_dir, tmp_path / "templates")
    port = free_port()
    settings = site.settings.replace(templates_dir=templates, base_url=f"http://127.0.0.1:{port}")
    stored = store_campaign(
        settings.database,
        compiled_issue(extra_html=f"<script>{MARKER}</script><img src=x onerror='{MARKER}'>"),
    )
    with running(settings, port):
        url = f"http://127.0.0.1:{port}"
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        log_in(page, Site(url, settings, site.issue, site.access_log))
        source = page.request.get(f"{url}/editor/issues/{SLUG}/frame").text()
        assert f"<script>{MARKER}</script>" in source  # the script really is in the frame
        page.goto(f"{url}/editor/issues/{SLUG}")
        frame = page.frame_locator("#frame")
        expect(frame.locator("body")).to_contain_text("Vasario naujienos")
        expect(page.locator("#findings")).to_contain_text("script")
        page.goto(f"{url}/archive/{stored}")
        expect(page.locator("#email")).to_be_attached()
        assert page.title() != "PWNED"
        page.goto(f"{url}/editor/issues/{SLUG}")
        expect(frame.locator("body")).to_contain_text("Vasario naujienos")
        assert page.title() != "PWNED"
        assert frame.locator("html").evaluate("() => document.title") != "PWNED"
    assert not any("probe-script" in url for url in requested)
    assert "allow-scripts" not in page.get_attribute("#frame", "sandbox")


def test_start_a_campaign_and_watch_the_dashboard(
    context, site: Site, people: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    # Three messages a second at most, so the dashboard is open while they go out.
    port = free_port()
    settings = site.settings.replace(rate=3.0, base_url=f"http://127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    with running(settings, port):
        page = context.new_page()
        log_in(page, Site(url, settings, site.issue, site.access_log))
        page.goto(f"{url}/editor/issues/{SLUG}")
        page.click("text=Pradėti siuntimą")
        page.check("input[name=list][value=savivaldybes]")
        page.check("input[name=list][value=bibliotekos]")
        page.click("button[type=submit]:has-text('Tęsti')")
        expect(page.locator("#recipient-count")).to_have_text("3")
        page.click("#start")
        expect(page).to_have_url(re.compile(r"/editor/campaigns/\d+$"))
        page.evaluate("window.__samePage = true")
        expect(page.locator("#count-sent")).to_have_text("3")
        expect(page.locator("#status")).to_have_text("baigtas")
        assert page.evaluate("window.__samePage") is True  # updated live, not reloaded
        with page.expect_download() as download:
            page.click("#report")
        lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("email,outcome,")
    assert len(lines) == 4
    assert len(list(settings.outbox.glob("*.eml"))) == 3


def test_a_double_click_starts_one_campaign_and_the_next_start_shows_who_got_it(
    context, site: Site, people: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    log_in(page, site)

    def confirmation(query: str = "") -> None:
        page.goto(f"{site.url}/editor/issues/{SLUG}/campaign{query}")
        page.check("input[name=list][value=savivaldybes]")
        page.check("input[name=list][value=bibliotekos]")
        page.click("#continue")
        expect(page.locator("#recipient-count")).to_have_text("3")

    confirmation()
    page.click("#start")
    expect(page).to_have_url(re.compile(r"/editor/campaigns/\d+$"))
    dashboard = page.url
    page.go_back()  # the confirmation page again, as it was: press its button once more
    page.click("#start")
    expect(page).to_have_url(dashboard)
    expect(page.locator("#status")).to_have_text("baigtas")
    first = int(dashboard.rsplit("/", 1)[1])
    starts = [line for line in site.access_log.lines if "/campaign/start" in line]
    assert len(starts) == 2, starts
    assert len(list(site.settings.outbox.glob("*.eml"))) == 3

    confirmation("?lang=en")
    overlap = page.locator("#overlap")
    expect(overlap).to_contain_text("3 of these 3 recipients already got this issue")
    expect(overlap.locator(f"a[href='/editor/campaigns/{first}']")).to_have_text(
        f"Campaign #{first}"
    )
    expect(page.locator("#start-new")).to_be_disabled()
    expect(page.locator("#start")).to_have_count(0)
    page.click("#start-again")
    expect(page).to_have_url(re.compile(r"/editor/campaigns/\d+$"))
    expect(page.locator("#status")).to_have_text("done")
    assert int(page.url.rsplit("/", 1)[1]) != first
    assert len(list(site.settings.outbox.glob("*.eml"))) == 6, "everyone again, as chosen"
