"""Public pages over HTTP: unsubscribe (page and RFC 8058 one-click), preferences, view, archive."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from lxml import html as lxml_html
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db
from newsletter.audience import tokens
from newsletter.models import (
    ConsentEvent,
    MailingList,
    Membership,
    OutboxRow,
    Subscriber,
    Suppression,
    utcnow,
)
from newsletter.settings import Settings
from newsletter.web import create_app, public
from tests.dispatch.support import add_people
from tests.web.conftest import csrf_of
from tests.web.helpers import compiled_issue, snapshot, store_campaign

ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


def token_for(settings: Settings, subscriber_id: int, list_id: int | None) -> str:
    return tokens.make_token(settings.key(), subscriber_id, list_id)


def membership_status(settings: Settings, subscriber_id: int, list_id: int) -> str:
    with db.transaction(settings.database) as session:
        return session.scalar(
            select(Membership.status).where(
                Membership.subscriber_id == subscriber_id, Membership.list_id == list_id
            )
        )


def events(settings: Settings, subscriber_id: int) -> list[tuple[str, str]]:
    with db.transaction(settings.database) as session:
        rows = session.execute(
            select(ConsentEvent.kind, ConsentEvent.source).where(
                ConsentEvent.subscriber_id == subscriber_id
            )
        )
        return [tuple(row) for row in rows]


def test_get_shows_a_confirmation_and_changes_nothing(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    token = token_for(web_settings, people["ona"], people["towns"])
    before = snapshot(web_settings.database)
    page = client.get(f"/u/{token}")
    assert page.status_code == 200
    assert "Ar tikrai nebenorite gauti šių laiškų?" in page.text
    assert "ona@savivaldybe.example" in page.text
    assert "Savivaldybės" in page.text
    assert client.head(f"/u/{token}").status_code == 200
    assert snapshot(web_settings.database) == before


def test_the_page_button_unsubscribes_from_that_list(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    token = token_for(web_settings, people["ona"], people["towns"])
    answer = client.post(f"/u/{token}", data={"confirm": "1"})
    assert answer.status_code == 200
    assert "Prenumeratos atsisakyta" in answer.text
    assert membership_status(web_settings, people["ona"], people["towns"]) == "unsubscribed"
    assert membership_status(web_settings, people["ona"], people["libraries"]) == "active"
    assert events(web_settings, people["ona"]) == [("unsubscribe", "unsubscribe page")]


def test_one_click_post_works_without_cookies_from_any_origin(
    web_settings: Settings, people: dict[str, int]
) -> None:
    token = token_for(web_settings, people["jonas"], people["towns"])
    app = create_app(web_settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as mail_provider:
        for _ in range(3):  # providers retry; repeating is harmless
            answer = mail_provider.post(
                f"/u/{token}",
                content=b"List-Unsubscribe=One-Click",
                headers={**ONE_CLICK, "origin": "https://mail.provider.example"},
            )
            assert answer.status_code == 200
            assert "location" not in answer.headers
            assert "set-cookie" not in answer.headers
            assert not mail_provider.cookies
    assert membership_status(web_settings, people["jonas"], people["towns"]) == "unsubscribed"
    assert events(web_settings, people["jonas"]) == [("unsubscribe", "one-click")]


def test_concurrent_one_clicks_are_each_recorded_once(web_settings: Settings) -> None:
    """20 threads unsubscribing at once, as under a provider's burst: every one recorded."""
    ids = add_people(web_settings.database, 20, ("savivaldybes",), prefix="skubus")
    with db.transaction(web_settings.database) as session:
        list_id = session.scalar(select(MailingList.id).where(MailingList.slug == "savivaldybes"))
    links = [token_for(web_settings, person, list_id) for person in ids] * 2  # each twice
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda t: public._unsubscribe(web_settings, t, "one-click"), links))
    assert all(answers)
    with db.transaction(web_settings.database) as session:
        statuses = session.scalars(select(Membership.status).where(Membership.list_id == list_id))
        assert set(statuses) == {"unsubscribed"}
    assert all(events(web_settings, person) == [("unsubscribe", "one-click")] for person in ids)


def test_one_click_for_a_list_never_joined_is_remembered(
    web_settings: Settings, people: dict[str, int]
) -> None:
    token = token_for(web_settings, people["rasa"], people["towns"])
    assert public._unsubscribe(web_settings, token, "one-click")
    assert membership_status(web_settings, people["rasa"], people["towns"]) == "unsubscribed"
    assert not public._unsubscribe(web_settings, token_for(web_settings, 999, None), "one-click")


def test_one_click_as_multipart_form_data(
    web_settings: Settings, client: TestClient, people: dict[str, int]
) -> None:
    token = token_for(web_settings, people["rasa"], people["libraries"])
    answer = client.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    assert membership_status(web_settings, people["rasa"], people["libraries"]) == "unsubscribed"


def test_token_without_a_list_unsubscribes_from_everything(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    token = token_for(web_settings, people["ona"], None)
    assert (
        client.post(
            f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
        ).status_code
        == 200
    )
    with db.transaction(web_settings.database) as session:
        assert session.get(Subscriber, people["ona"]).status == "unsubscribed"
        assert session.scalar(select(Suppression.reason)) == "unsubscribed"


def bad_tokens(settings: Settings, people: dict[str, int]) -> dict[str, str]:
    good = token_for(settings, people["ona"], people["towns"])
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    other_key = tokens.make_token(b"another-instance-secret", people["ona"], people["towns"])
    return {
        "garbage": "tai-ne-zetonas",
        "tampered": flipped,
        "other key": other_key,
        "unknown subscriber": token_for(settings, 999_999, people["towns"]),
    }


def test_every_bad_token_gets_the_same_answer(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    before = snapshot(web_settings.database)
    answers = {}
    for kind, token in bad_tokens(web_settings, people).items():
        get = client.get(f"/u/{token}")
        form = client.post(f"/u/{token}", data={"confirm": "1"})
        click = client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
        prefs = client.get(f"/p/{token}")
        answers[kind] = (
            (get.status_code, get.text),
            (form.status_code, form.text),
            (click.status_code, click.text),
            (prefs.status_code, prefs.text),
        )
    assert len(set(answers.values())) == 1, answers.keys()
    (get_status, get_text), *_ = answers["garbage"]
    assert get_status == 404
    assert "Nuoroda negalioja" in get_text
    assert snapshot(web_settings.database) == before


def test_preferences_keep_only_the_chosen_lists(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    token = token_for(web_settings, people["ona"], people["towns"])
    page = client.get(f"/p/{token}")
    assert page.status_code == 200
    boxes = lxml_html.fromstring(page.text).xpath("//input[@name='list']")
    assert sorted((box.get("value"), box.get("checked") is not None) for box in boxes) == sorted(
        [(str(people["towns"]), True), (str(people["libraries"]), True)]
    )
    answer = client.post(
        f"/p/{token}",
        data={
            "csrf_token": csrf_of(page.text),
            "list": [str(people["libraries"])],
            "action": "save",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/p/{token}?saved=1"
    assert membership_status(web_settings, people["ona"], people["towns"]) == "unsubscribed"
    assert membership_status(web_settings, people["ona"], people["libraries"]) == "active"
    assert "Nustatymai išsaugoti." in client.get(answer.headers["location"]).text
    assert events(web_settings, people["ona"]) == [("preferences", "preferences page")]


def test_preferences_leave_all(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    token = token_for(web_settings, people["ona"], None)
    page = client.get(f"/p/{token}")
    client.post(f"/p/{token}", data={"csrf_token": csrf_of(page.text), "action": "leave_all"})
    assert membership_status(web_settings, people["ona"], people["towns"]) == "unsubscribed"
    assert membership_status(web_settings, people["ona"], people["libraries"]) == "unsubscribed"


def test_preferences_post_without_csrf_is_refused(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    token = token_for(web_settings, people["ona"], None)
    client.get(f"/p/{token}")
    before = snapshot(web_settings.database)
    answer = client.post(f"/p/{token}", data={"action": "leave_all"})
    assert answer.status_code == 403
    assert snapshot(web_settings.database) == before


def test_view_in_browser_personalises_for_the_token_and_neutralises_without(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    campaign_id = store_campaign(web_settings.database, compiled_issue())
    token = token_for(web_settings, people["ona"], people["towns"])
    mine = client.get(f"/v/{campaign_id}/{token}")
    assert mine.status_code == 200
    tree = lxml_html.fromstring(mine.text)
    assert tree.get_element_by_id("name").text == "Ona Onaitė"
    assert tree.get_element_by_id("unsubscribe").get("href") == tokens.unsubscribe_url(
        web_settings, token
    )
    assert "script-src" not in mine.headers["content-security-policy"]
    assert "default-src 'none'" in mine.headers["content-security-policy"]
    assert "sandbox" in mine.headers["content-security-policy"]
    for bad in bad_tokens(web_settings, people).values():
        other = client.get(f"/v/{campaign_id}/{bad}")
        assert other.status_code == 200
        assert "Ona" not in other.text
        assert "ona@savivaldybe.example" not in other.text
        assert token not in other.text
    assert client.get(f"/v/{campaign_id + 1}/{token}").status_code == 404


def test_unsent_and_test_campaigns_are_not_public(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    test_id = store_campaign(
        web_settings.database, compiled_issue("Bandymas"), is_test=True, status="done"
    )
    draft_id = store_campaign(
        web_settings.database, compiled_issue("Juodraštis"), status="scheduled"
    )
    for campaign_id in (test_id, draft_id):
        assert client.get(f"/v/{campaign_id}/bet-kas").status_code == 404
        assert client.get(f"/archive/{campaign_id}").status_code == 404
    # A test copy is shown to the person it was sent to, and to no other subscriber.
    with db.transaction(web_settings.database) as session:
        session.add(
            OutboxRow(
                campaign_id=test_id, subscriber_id=people["ona"], email="ona@savivaldybe.example"
            )
        )
    recipient = client.get(f"/v/{test_id}/{token_for(web_settings, people['ona'], None)}")
    assert recipient.status_code == 200
    assert lxml_html.fromstring(recipient.text).get_element_by_id("name").text == "Ona Onaitė"
    stranger = client.get(f"/v/{test_id}/{token_for(web_settings, people['jonas'], None)}")
    assert (stranger.status_code, stranger.text) == (404, client.get(f"/v/{test_id}/bet-kas").text)
    assert (
        client.get(f"/v/{draft_id}/{token_for(web_settings, people['ona'], None)}").status_code
        == 404
    )


def test_archive_lists_sent_issues_newest_first(client: TestClient, web_settings: Settings) -> None:
    now = utcnow()
    older = store_campaign(
        web_settings.database, compiled_issue("Sausio numeris"), started=now - timedelta(days=30)
    )
    newer = store_campaign(
        web_settings.database, compiled_issue("Vasario numeris"), started=now - timedelta(days=2)
    )
    store_campaign(web_settings.database, compiled_issue("Bandomasis"), is_test=True)
    store_campaign(web_settings.database, compiled_issue("Suplanuotas"), status="scheduled")
    page = client.get("/archive")
    links = lxml_html.fromstring(page.text).xpath("//ul[@class='archive']//a")
    assert [(a.text, a.get("href")) for a in links] == [
        ("Vasario numeris", f"/archive/{newer}"),
        ("Sausio numeris", f"/archive/{older}"),
    ]
    issue = client.get(f"/archive/{older}")
    assert issue.status_code == 200
    assert lxml_html.fromstring(issue.text).get_element_by_id("name").text is None


@pytest.mark.parametrize(
    ("headers", "url", "expected"),
    [
        ({}, "/archive", "Archyvas"),
        ({"accept-language": "en-GB,en;q=0.9"}, "/archive", "Archive"),
        ({"accept-language": "lt,en;q=0.5"}, "/archive", "Archyvas"),
        ({"accept-language": "de-DE"}, "/archive", "Archyvas"),
        ({"accept-language": "lt"}, "/archive?lang=en", "Archive"),
    ],
)
def test_language(client: TestClient, headers: dict[str, str], url: str, expected: str) -> None:
    page = client.get(url, headers=headers)
    assert f"<h1>{expected}</h1>" in page.text


def test_language_choice_is_remembered(client: TestClient) -> None:
    first = client.get("/archive?lang=en")
    assert "lang=en" in first.headers["set-cookie"]
    assert "<h1>Archive</h1>" in client.get("/archive").text
    assert '<html lang="en">' in client.get("/archive").text


def test_a_campaign_cancelled_before_anything_went_out_stays_private(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    stopped = store_campaign(web_settings.database, compiled_issue("Klaida"), status="cancelled")
    partly = store_campaign(web_settings.database, compiled_issue("Dalis"), status="cancelled")
    with db.transaction(web_settings.database) as session:
        for campaign_id, state in ((stopped, "cancelled"), (partly, "sent")):
            session.add(
                OutboxRow(
                    campaign_id=campaign_id,
                    subscriber_id=people["ona"],
                    email="ona@savivaldybe.example",
                    state=state,
                )
            )
    titles = lxml_html.fromstring(client.get("/archive").text).xpath("//ul[@class='archive']//a")
    assert [a.text for a in titles] == ["Dalis"]
    assert client.get(f"/archive/{stopped}").status_code == 404
    assert client.get(f"/v/{stopped}/bet-kas").status_code == 404
    assert client.get(f"/archive/{partly}").status_code == 200
