"""Every page a recipient can reach, and the email itself, with no axe-core violations.

axe-core is vendored (``tests/web/axe.py``) and run in Debian's Chromium on pages served
by uvicorn, reached the way a reader reaches them: links from the email, the forms'
buttons, the confirmation link from the mail written to the outbox folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from newsletter.audience import tokens
from newsletter.compose.issue import compile_file
from newsletter.settings import Settings
from tests.conftest import ROOT
from tests.web.axe import violations
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.helpers import store_campaign
from tests.web.server import free_port, running

pytestmark = pytest.mark.browser
WAIT_MS = 15_000
SAMPLES = sorted((ROOT / "issues").glob("*.md"))
CONFIRM_LINK = re.compile(r"https?://\S+/confirm/\S+")


@pytest.fixture
def served(web_settings: Settings) -> Iterator[tuple[str, Settings]]:
    """The app on a free port, its base URL pointing at itself; yields (url, settings)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = web_settings.replace(base_url=url)
    with running(settings, port):
        yield url, settings


@pytest.fixture(params=[1024, 375], ids=["desktop", "phone"])
def page(request: pytest.FixtureRequest, browser):  # noqa: F811
    """A page in a fresh profile, at desktop and at phone width, that may run axe."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    width = request.param
    context = browser.new_context(
        locale="lt-LT", viewport={"width": width, "height": 900}, bypass_csp=True
    )
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def assert_accessible(page, name: str) -> None:
    """No axe violation on the page now open; the message names the page and the rules."""
    found = violations(page)
    assert found == [], f"{name} ({page.url}): {found}"


def confirmation_link(outbox: Path) -> str:
    """The confirmation link of the one mail in the outbox folder."""
    (path,) = outbox.glob("*.eml")
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    found = CONFIRM_LINK.search(text)
    assert found, text
    return found.group(0)


def test_every_public_page_has_no_axe_violations(
    page,
    served: tuple[str, Settings],
    people: dict[str, int],
) -> None:
    from playwright.sync_api import expect

    url, settings = served
    compiled = compile_file(SAMPLES[-1], settings)
    campaign = store_campaign(settings.database, compiled)
    token = tokens.make_token(settings.key(), people["ona"], people["towns"])

    page.goto(f"{url}/archive")
    expect(page.locator("ul.archive a")).to_have_text(compiled.subject)
    assert_accessible(page, "archive")
    page.goto(f"{url}/archive?lang=en")
    assert_accessible(page, "archive in English")
    page.goto(f"{url}/archive/{campaign}")
    assert_accessible(page, "an archived issue")
    page.goto(f"{url}/accessibility")
    assert_accessible(page, "the accessibility statement")
    page.goto(f"{url}/v/{campaign}/{token}")
    expect(page.locator("body")).to_contain_text("Ona Onaitė")
    assert_accessible(page, "view in browser")

    page.goto(f"{url}/p/{token}")
    assert_accessible(page, "preferences")
    page.click("button[value=save]")
    expect(page.locator("[role=status]")).to_be_visible()
    assert_accessible(page, "preferences saved")
    page.goto(f"{url}/u/{token}")
    assert_accessible(page, "unsubscribe")
    page.click("#unsubscribe")
    expect(page.locator("#done")).to_be_visible()
    assert_accessible(page, "unsubscribed")
    page.goto(f"{url}/u/not-a-token")
    assert_accessible(page, "a bad link")
    page.goto(f"{url}/v/{campaign + 1}/{token}")
    assert_accessible(page, "an issue that is not there")

    page.goto(f"{url}/subscribe")
    assert_accessible(page, "subscribe")
    page.fill("input[name=email]", "egle@biblioteka.example")
    page.check(f"input[name=list][value='{people['libraries']}']")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_be_visible()
    assert_accessible(page, "confirmation mail sent")
    page.goto(confirmation_link(settings.outbox))
    assert_accessible(page, "confirm")
    page.click("form[action^='/confirm/'] button")
    expect(page.locator("h1")).to_be_visible()
    assert page.url.startswith(f"{url}/confirm/")
    assert_accessible(page, "confirmed")


@pytest.mark.parametrize("issue", SAMPLES, ids=lambda path: path.stem)
def test_the_email_itself_has_no_axe_violations(
    page,
    settings: Settings,
    issue: Path,
) -> None:
    compiled = compile_file(issue, settings)
    page.route("**/*", lambda route: route.abort())  # an email opened offline
    page.set_content(compiled.personalise({"name": "Ona Onaitė"})[0], wait_until="load")
    assert page.locator("[role=main]").count() == 1
    assert_accessible(page, f"the email {issue.stem}")
