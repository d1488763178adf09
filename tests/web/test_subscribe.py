"""Double opt-in through the public form, with the confirmation mail sent to a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db
from newsletter.audience import subscribers
from newsletter.models import ConsentEvent, Membership, Subscriber, Suppression
from newsletter.settings import Settings
from newsletter.web import create_app, signup
from tests.support.smtp import SmtpSink
from tests.web.conftest import csrf_of
from tests.web.helpers import snapshot
from tests.web.server import free_port, running

LINK = re.compile(r"https://\S+/confirm/\S+")


@pytest.fixture
def mailing(web_settings: Settings, smtp_sink: SmtpSink) -> Iterator[TestClient]:
    """A client of an app that sends mail to the SMTP sink."""
    app = create_app(web_settings.replace(smtp_url=smtp_sink.url), watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def ask(
    client: TestClient, email: str, lists: list[int], *, consent: bool = True, lang: str = "lt"
):
    form = client.get(f"/subscribe?lang={lang}")
    data = {
        "csrf_token": csrf_of(form.text),
        "email": email,
        "name": "Eglė Eglaitė",
        "list": [str(i) for i in lists],
    }
    if consent:
        data["consent"] = "yes"
    return client.post("/subscribe", data=data)


def confirmation_link(sink: SmtpSink, index: int = 0) -> str:
    message = sink.wait_for(index + 1)[index].parsed()
    text = message.get_body(("plain",)).get_content()
    found = LINK.search(text)
    assert found, text
    return found.group(0)


def test_only_a_confirmed_address_joins(
    mailing: TestClient, web_settings: Settings, smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    before = snapshot(web_settings.database)
    answer = ask(mailing, "Egle@Biblioteka.Example", [people["libraries"]])
    assert answer.status_code == 200
    assert "patvirtinimo nuoroda" in answer.text
    assert snapshot(web_settings.database) == before  # nothing stored before confirmation

    message = smtp_sink.wait_for(1)[0]
    assert message.rcpt_tos == ["egle@biblioteka.example"]
    parsed = message.parsed()
    assert parsed["Subject"] == "Patvirtinkite prenumeratą"
    assert "List-Unsubscribe" not in parsed
    link = confirmation_link(smtp_sink)
    assert link.startswith(web_settings.base_url + "/confirm/")

    path = link.removeprefix(web_settings.base_url)
    page = mailing.get(path)  # a link scanner following it confirms nothing
    assert page.status_code == 200
    assert snapshot(web_settings.database) == before

    done = mailing.post(path, data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200
    assert "Jūsų prenumerata patvirtinta" in done.text
    with db.transaction(web_settings.database) as session:
        person = subscribers.find_subscriber(session, "egle@biblioteka.example")
        assert person is not None
        assert person.name == "Eglė Eglaitė"
        statuses = session.execute(
            select(Membership.list_id, Membership.status).where(
                Membership.subscriber_id == person.id
            )
        ).all()
        assert statuses == [(people["libraries"], "active")]
        kinds = session.scalars(
            select(ConsentEvent.kind)
            .where(ConsentEvent.subscriber_id == person.id)
            .order_by(ConsentEvent.id)
        ).all()
        assert kinds == ["subscribe", "confirm"]

    mailing.post(path, data={"csrf_token": csrf_of(page.text)})  # confirming twice adds nothing
    with db.transaction(web_settings.database) as session:
        assert len(session.scalars(select(ConsentEvent)).all()) == 2


def test_english_form_sends_an_english_mail(
    mailing: TestClient, smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    ask(mailing, "reader@example.org", [people["towns"]], lang="en")
    parsed = smtp_sink.wait_for(1)[0].parsed()
    assert parsed["Subject"] == "Confirm your subscription"


def test_form_errors_are_shown_and_nothing_is_sent(
    mailing: TestClient, smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    assert ask(mailing, "ne adresas", [people["towns"]]).status_code == 400
    assert ask(mailing, "ok@example.org", []).status_code == 400
    no_consent = ask(mailing, "ok@example.org", [people["towns"]], consent=False)
    assert no_consent.status_code == 400
    assert "Reikia jūsų sutikimo." in no_consent.text
    assert smtp_sink.received == []


def test_repeated_requests_do_not_flood_a_mailbox(
    mailing: TestClient, smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    first = ask(mailing, "ona@savivaldybe.example", [people["libraries"]])
    second = ask(mailing, "ONA@savivaldybe.example", [people["libraries"]])
    assert first.text == second.text
    smtp_sink.wait_for(1)
    assert len(smtp_sink.received) == 1


def test_plus_addresses_of_one_mailbox_get_one_confirmation_mail(
    mailing: TestClient, smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    answers = [
        ask(mailing, address, [people["towns"]])
        for address in ("auka+1@example.org", "auka+2@example.org", "Auka@example.org")
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert answers[0].text == answers[2].text
    smtp_sink.wait_for(1)
    assert [m.rcpt_tos for m in smtp_sink.received] == [["auka+1@example.org"]]


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("auka+1@example.org", "auka@example.org"),
        ("auka+a+b@example.org", "auka@example.org"),
        ("auka@example.org", "auka@example.org"),
        ("+zyme@example.org", "+zyme@example.org"),
    ],
)
def test_the_resend_limit_counts_mailboxes(address: str, mailbox: str) -> None:
    assert signup.mailbox(address) == mailbox


@pytest.mark.parametrize(
    ("forwarded_allow_ips", "last_status"),
    [(None, 429), ("", 429), ("127.0.0.1", 200)],
    ids=["unset", "empty", "loopback-proxy"],
)
def test_forwarded_addresses_count_only_from_proxies_named_in_forwarded_allow_ips(
    web_settings: Settings,
    people: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    forwarded_allow_ips: str | None,
    last_status: int,
) -> None:
    """Through a real uvicorn server: a client on loopback naming a new address each time."""
    if forwarded_allow_ips is None:
        monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    else:
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", forwarded_allow_ips)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    statuses = []
    with running(web_settings.replace(base_url=url), port), httpx2.Client(base_url=url) as http:
        for number in range(signup.REQUESTS_PER_CLIENT + 1):
            spoofed = {"x-forwarded-for": f"203.0.113.{number + 1}"}
            form = http.get("/subscribe", headers=spoofed)
            data = {
                "csrf_token": csrf_of(form.text),
                "email": f"svetimas{number}@example.org",
                "list": str(people["towns"]),
                "consent": "yes",
            }
            statuses.append(http.post("/subscribe", data=data, headers=spoofed).status_code)
    assert statuses == [200] * signup.REQUESTS_PER_CLIENT + [last_status]


def test_confirmation_brings_back_someone_who_unsubscribed(
    mailing: TestClient, web_settings: Settings, smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    with db.transaction(web_settings.database) as session:
        subscribers.unsubscribe(session, web_settings.key(), people["jonas"], None, "test")
    ask(mailing, "jonas@savivaldybe.example", [people["towns"]])
    path = confirmation_link(smtp_sink).removeprefix(web_settings.base_url)
    page = mailing.get(path)
    mailing.post(path, data={"csrf_token": csrf_of(page.text)})
    with db.transaction(web_settings.database) as session:
        assert session.get(Subscriber, people["jonas"]).status == "active"
        assert session.scalars(select(Suppression)).all() == []


def test_a_bounced_address_gets_no_mail(
    mailing: TestClient, web_settings: Settings, smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    with db.transaction(web_settings.database) as session:
        subscribers.record_bounce(
            session, web_settings.key(), people["rasa"], 1, "550 no such user"
        )
    answer = ask(mailing, "rasa@biblioteka.example", [people["libraries"]])
    assert answer.status_code == 200
    assert "patvirtinimo nuoroda" in answer.text
    assert smtp_sink.received == []


def test_a_bad_confirmation_link_is_refused(mailing: TestClient, web_settings: Settings) -> None:
    before = snapshot(web_settings.database)
    assert mailing.get("/confirm/sugadinta-nuoroda").status_code == 404
    page = mailing.get("/subscribe")
    assert (
        mailing.post(
            "/confirm/sugadinta-nuoroda", data={"csrf_token": csrf_of(page.text)}
        ).status_code
        == 404
    )
    assert snapshot(web_settings.database) == before


def test_one_client_cannot_make_the_form_mail_many_strangers(
    mailing: TestClient, smtp_sink: SmtpSink, people: dict[str, int]
) -> None:
    mailing.app.state.resend_guard = signup.ResendGuard(per_client=2)
    for number in range(2):
        assert ask(mailing, f"svetimas{number}@example.org", [people["towns"]]).status_code == 200
    refused = ask(mailing, "dar-vienas@example.org", [people["towns"]])
    assert refused.status_code == 429
    assert "Per daug prašymų" in refused.text
    smtp_sink.wait_for(2)
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.received) == [
        "svetimas0@example.org",
        "svetimas1@example.org",
    ]


@pytest.mark.parametrize(
    "name", ["=?utf-8?q?a=0d=0aBcc:_x@evil.example?=", "Eglė\nBcc: x@evil.example"]
)
def test_a_name_that_can_never_go_into_a_header_is_refused_beside_the_field(
    mailing: TestClient, smtp_sink: SmtpSink, people: dict[str, int], name: str
) -> None:
    form = mailing.get("/subscribe")
    answer = mailing.post(
        "/subscribe",
        data={
            "csrf_token": csrf_of(form.text),
            "email": "egle@biblioteka.example",
            "name": name,
            "list": [str(people["libraries"])],
            "consent": "yes",
        },
    )
    assert "Vardas turi būti vienos eilutės" in answer.text
    assert smtp_sink.received == []
