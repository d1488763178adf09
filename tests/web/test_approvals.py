"""Two-person approval in the browser's requests: bound to content, lists and recipients."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from lxml import html as lxml_html
from sqlalchemy import func, select
from starlette.testclient import TestClient

from newsletter import audit, db, users
from newsletter.dispatch import approval, campaign
from newsletter.models import Campaign, CampaignApproval, Membership, Subscriber, utcnow
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.web.conftest import EDITOR_PASSWORD, log_in
from tests.web.issues import SLUG, issue_text, write_issue
from tests.web.test_campaigns import confirm, start_form, started

AUTHOR = "autore@bibliotekos-pazangai.example"
APPROVER = "tvirtintoja@bibliotekos-pazangai.example"
BOTH_LISTS = ["savivaldybes", "bibliotekos"]


@pytest.fixture
def two_people(
    web_settings: Settings, people: dict[str, int]
) -> Iterator[tuple[TestClient, Settings]]:
    """An app needing one approval; an author (author and sender) and an approver (sender)."""
    settings = web_settings.replace(approvals=1)
    write_issue(settings.issues_dir)
    with db.transaction(settings.database) as session:
        users.create_user(session, AUTHOR, EDITOR_PASSWORD, [users.AUTHOR, users.SENDER])
        users.create_user(session, APPROVER, EDITOR_PASSWORD, [users.SENDER])
    app = create_app(settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        for email in (AUTHOR, APPROVER):  # each logs in once; as_editor swaps the cookies
            client.cookies.clear()
            token = log_in(client, email)
            SESSIONS[email] = (dict(client.cookies), token)
        yield client, settings
        app.state.dispatcher.join(60)


SESSIONS: dict[str, tuple[dict[str, str], str]] = {}


def as_editor(client: TestClient, email: str) -> str:
    """Act as ``email`` from now on; return their CSRF token."""
    cookies, token = SESSIONS[email]
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    return token


def create_awaiting(client: TestClient) -> int:
    token = as_editor(client, AUTHOR)
    page = confirm(client, token, BOTH_LISTS)
    return started(client.post(f"/editor/issues/{SLUG}/campaign/start", data=start_form(page)))


def shown_digest(page: str) -> str:
    return lxml_html.fromstring(page).xpath("//input[@name='shown']")[0].get("value")


def approvals_of(settings: Settings, campaign_id: int) -> int:
    with db.transaction(settings.database) as session:
        return session.scalar(
            select(func.count()).where(CampaignApproval.campaign_id == campaign_id)
        )


def test_the_author_cannot_approve_even_with_a_hand_made_post(two_people) -> None:
    client, settings = two_people
    campaign_id = create_awaiting(client)
    with db.transaction(settings.database) as session:
        row = session.get(Campaign, campaign_id)
        assert (row.status, row.created_by) == ("awaiting", AUTHOR)
    token = as_editor(client, AUTHOR)
    page = client.get(f"/editor/campaigns/{campaign_id}/approve")
    assert 'id="own"' in page.text and 'id="approve"' not in page.text
    digest = approval.standing(settings, campaign_id).basis.digest
    forged = client.post(
        f"/editor/campaigns/{campaign_id}/approve", data={"csrf_token": token, "shown": digest}
    )
    assert forged.status_code == 403
    assert approvals_of(settings, campaign_id) == 0
    refused = client.post(f"/editor/campaigns/{campaign_id}/start", data={"csrf_token": token})
    assert refused.status_code == 409
    assert campaign.progress(settings, campaign_id).status == "awaiting"


def test_an_approval_bound_to_the_file_is_void_after_an_edit_on_disk(two_people) -> None:
    client, settings = two_people
    campaign_id = create_awaiting(client)
    token = as_editor(client, APPROVER)
    page = client.get(f"/editor/campaigns/{campaign_id}/approve")
    tree = lxml_html.fromstring(page.text)
    assert tree.get_element_by_id("recipients").text == "3"
    assert "Dar niekas neišsiųsta" in page.text  # the diff: nothing sent before
    approved = client.post(
        f"/editor/campaigns/{campaign_id}/approve",
        data={"csrf_token": token, "shown": shown_digest(page.text)},
    )
    assert approved.status_code == 303
    assert approval.standing(settings, campaign_id).complete

    write_issue(settings.issues_dir, issue_text(paragraph="Pakeista po patvirtinimo."))
    page = client.get(f"/editor/campaigns/{campaign_id}/approve")
    tree = lxml_html.fromstring(page.text)
    assert tree.get_element_by_id("approval-problem") is not None
    assert "pasikeitė numeris" in tree.get_element_by_id("approvals").text_content()
    refused = client.post(f"/editor/campaigns/{campaign_id}/start", data={"csrf_token": token})
    assert refused.status_code == 409
    assert campaign.progress(settings, campaign_id).status == "awaiting"

    token = as_editor(client, AUTHOR)
    refreshed = client.post(f"/editor/campaigns/{campaign_id}/refresh", data={"csrf_token": token})
    assert refreshed.status_code == 303
    now = approval.standing(settings, campaign_id)
    assert not now.problem and now.valid == 0  # the new content needs a new approval


def test_members_gained_void_the_approval_and_an_approved_campaign_starts(two_people) -> None:
    client, settings = two_people
    campaign_id = create_awaiting(client)
    token = as_editor(client, APPROVER)
    page = client.get(f"/editor/campaigns/{campaign_id}/approve").text
    client.post(
        f"/editor/campaigns/{campaign_id}/approve",
        data={"csrf_token": token, "shown": shown_digest(page)},
    )
    with db.transaction(settings.database) as session:
        person = Subscriber(email="nauja@biblioteka.example", name="Nauja")
        session.add(person)
        session.flush()
        libraries = session.scalar(select(Membership.list_id).limit(1))
        session.add(Membership(subscriber_id=person.id, list_id=libraries))
    dashboard = client.get(f"/editor/campaigns/{campaign_id}").text
    assert "pasikeitė gavėjų skaičius: tada 3, dabar 4" in dashboard
    english = client.get(f"/editor/campaigns/{campaign_id}?lang=en").text
    assert "the recipients changed: 3 then, 4 now" in english
    client.get("/editor/?lang=lt")  # back to Lithuanian for the rest
    stale = client.post(
        f"/editor/campaigns/{campaign_id}/approve",
        data={"csrf_token": token, "shown": shown_digest(page)},
    )
    assert stale.status_code == 409  # approving what it showed before the change
    page = client.get(f"/editor/campaigns/{campaign_id}/approve").text
    client.post(
        f"/editor/campaigns/{campaign_id}/approve",
        data={"csrf_token": token, "shown": shown_digest(page)},
    )
    start = client.post(f"/editor/campaigns/{campaign_id}/start", data={"csrf_token": token})
    assert start.status_code == 303
    assert campaign.progress(settings, campaign_id).status in ("running", "done")
    actions = [
        e["action"]
        for e in audit.entries(settings.database, audit.Filters(obj=f"campaign:{campaign_id}"))
    ]
    assert actions[::-1] == [
        "campaign.create",
        "campaign.approve",
        "campaign.approve",
        "campaign.start",
    ]


def test_a_scheduled_campaign_without_its_approvals_does_not_start(two_people) -> None:
    client, settings = two_people
    token = as_editor(client, AUTHOR)
    at = (utcnow() + timedelta(hours=1)).astimezone().strftime("%Y-%m-%dT%H:%M")
    choice = {"csrf_token": token, "list": BOTH_LISTS, "where": "", "send_at": at}
    page = client.post(f"/editor/issues/{SLUG}/campaign", data=choice).text
    campaign_id = started(
        client.post(f"/editor/issues/{SLUG}/campaign/start", data=start_form(page))
    )
    assert campaign.start_due(settings, utcnow() + timedelta(hours=2)) == []
    now = campaign.progress(settings, campaign_id)
    assert (now.status, now.status_reason) == ("awaiting", approval.MISSED)
    assert approval.MISSED in client.get(f"/editor/campaigns/{campaign_id}").text


def test_approval_refusals_in_the_pages_language(two_people) -> None:
    """The author's approval, a start without approvals, a changed file: Lithuanian or English."""
    client, settings = two_people
    campaign_id = create_awaiting(client)
    url = f"/editor/campaigns/{campaign_id}"
    token = as_editor(client, AUTHOR)
    digest = approval.standing(settings, campaign_id).basis.digest
    for lang, expected in (
        ("lt", "Siuntimo autorius negali jo patvirtinti; paprašykite kito kolegos."),
        ("en", "The author of a campaign cannot approve it; ask someone else."),
    ):
        own = client.post(f"{url}/approve?lang={lang}", data={"csrf_token": token, "shown": digest})
        assert own.status_code == 403
        assert lxml_html.fromstring(own.text).get_element_by_id("error").text == expected
    for lang, expected in (
        ("lt", "Galioja 0 iš 1 patvirtinimų; siuntimo pradėti dar negalima."),
        ("en", "0 of 1 approvals hold; it cannot start yet."),
    ):
        early = client.post(f"{url}/start?lang={lang}", data={"csrf_token": token})
        assert early.status_code == 409
        assert lxml_html.fromstring(early.text).get_element_by_id("error").text == expected

    write_issue(settings.issues_dir, issue_text(paragraph="Pakeista laukiant patvirtinimo."))
    for lang, expected in (
        ("lt", "Numerio failas nebeatitinka šio siuntimo laiško"),
        ("en", "The issue file no longer compiles to this campaign's issue"),
    ):
        shown = lxml_html.fromstring(client.get(f"{url}?lang={lang}").text)
        assert shown.get_element_by_id("approval-problem").text.startswith(expected)
    token = as_editor(client, APPROVER)
    changed = client.post(f"{url}/approve?lang=lt", data={"csrf_token": token, "shown": digest})
    assert changed.status_code == 409
    assert (
        lxml_html.fromstring(changed.text)
        .get_element_by_id("error")
        .text.startswith(
            "Numerio failas nebeatitinka šio siuntimo laiško (failas pakeistas arba pasikeitė rėmėjai)"
        )
    )
