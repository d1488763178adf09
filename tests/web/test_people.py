"""People in the browser, through the app: search, the person page and its actions, adding.

Each test runs on SQLite and PostgreSQL (``db_settings``). The flows in a real browser
are in ``test_browser_people.py``; here is the breadth: every action's refusals, CSRF,
editors only, the export download and the invitation mail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.audience.subscribers import audit_name, export_subscriber, find_subscriber
from newsletter.models import AuditEntry, MailingList, Membership, Subscriber
from newsletter.settings import Secret, Settings
from newsletter.web import create_app
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD, csrf_of, log_in
from tests.web.helpers import snapshot

ONA = "ona@siauliai.example"


PEOPLE = {
    "ona": (ONA, "Ona Žemaitienė", "Šiaulių m.", "Šiaulių miesto savivaldybė", "active"),
    "ugne": ("ugne@kaunas.example", "Ugnė", "Kauno r.", "", "active"),
    "egle": ("egle@kaunas.example", "Eglė", "Kauno r.", "", "active"),
    "rima": ("rima@kaunas.example", "Rima", "Kauno r.", "", "active"),
    "erika": ("erika@kaunas.example", "Erika", "Kauno r.", "", "active"),
    "jonas": ("jonas@kaunas.example", "Jonas", "Kauno r.", "", "bounced"),
}


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, Settings, dict[str, int]]]:
    """One app on SQLite for the module, logged in, with a list and people (one bounced).

    Each test acts on people of its own, so that one login and one app serve them all
    (logging in hashes a password with argon2: seconds on a busy machine).
    """
    folder = tmp_path_factory.mktemp("people")
    url = f"sqlite:///{folder / 'web.db'}"
    db.migrate(url)
    settings = Settings(
        data_dir=folder / "var",
        database_url=url,
        secret_key=Secret("test-secret-key-0123456789abcdef"),
        base_url="https://naujienos.bibliotekos-pazangai.example",
    )
    with db.transaction(url) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
        towns = MailingList(slug="savivaldybes", name="Savivaldybės")
        session.add(towns)
        session.flush()
        ids = {"towns": towns.id}
        for key, (email, name, municipality, institution, status) in PEOPLE.items():
            attributes = {"institution": institution} if institution else {}
            person = Subscriber(
                email=email,
                name=name,
                municipality=municipality,
                attributes=attributes,
                status=status,
            )
            session.add(person)
            session.flush()
            session.add(Membership(subscriber_id=person.id, list_id=towns.id))
            ids[key] = person.id
    app = create_app(settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        ids["csrf"] = log_in(client)  # type: ignore[assignment]
        yield client, settings, ids
    db.dispose(url)


def events(settings: Settings, address: str = ONA) -> list[dict]:
    with db.transaction(settings.database) as session:
        return export_subscriber(session, settings.key(), address)["consent_events"]


def test_search_finds_siauliai_without_diacritics(site) -> None:  # type: ignore[no-untyped-def]
    client, _settings, ids = site
    for query in ("siauliu", "ŠIAULIŲ", "zemaitiene", "miesto savivaldybe"):
        answer = client.get("/editor/people", params={"q": query})
        assert answer.status_code == 200
        assert f'href="/editor/people/{ids["ona"]}"' in answer.text, query
        assert "jonas@" not in answer.text
    assert "Nieko nerasta" in client.get("/editor/people", params={"q": "vilnius"}).text


def test_unsubscribe_with_a_reason_goes_into_the_consent_history(site) -> None:  # type: ignore[no-untyped-def]
    client, settings, ids = site
    path = f"/editor/people/{ids['ugne']}/unsubscribe"
    refused = client.post(path, data={"csrf_token": ids["csrf"], "list_id": str(ids["towns"])})
    assert refused.status_code == 400
    assert 'id="unsubscribed-reason-error"' in refused.text
    assert events(settings, PEOPLE["ugne"][0]) == []
    done = client.post(
        path,
        data={"csrf_token": ids["csrf"], "list_id": str(ids["towns"]), "reason": "skambino"},
    )
    assert (done.status_code, done.headers["location"]) == (
        303,
        f"/editor/people/{ids['ugne']}?done=unsubscribed",
    )
    [event] = events(settings, PEOPLE["ugne"][0])
    assert (event["kind"], event["list"], event["detail"]) == (
        "unsubscribe",
        "savivaldybes",
        {"by": EDITOR_EMAIL, "reason": "skambino"},
    )
    shown = client.get(done.headers["location"]).text
    assert "skambino" in shown and "Išbraukta." in shown


def test_edit_shows_the_header_check_beside_the_field_and_changes_nothing(site) -> None:  # type: ignore[no-untyped-def]
    client, settings, ids = site
    before = snapshot(settings.database)
    answer = client.post(
        f"/editor/people/{ids['egle']}/edit",
        data={"csrf_token": ids["csrf"], "name": "=?UTF-8?Q?=0A?=Bcc: x@y.example", "reason": "r"},
    )
    assert answer.status_code == 400
    assert re.search(r'name="name"[^>]*aria-invalid="true"', answer.text)
    assert 'id="edited-name-error"' in answer.text and "antraštę" in answer.text
    assert snapshot(settings.database) == before
    saved = client.post(
        f"/editor/people/{ids['egle']}/edit",
        data={"csrf_token": ids["csrf"], "name": "Eglė Kairienė", "reason": "ištekėjo"},
    )
    assert saved.status_code == 303
    assert PEOPLE["egle"][0] in client.get("/editor/people", params={"q": "kairiene"}).text


def test_resubscribe_needs_a_consent_source_and_a_bounce_a_reactivation(site) -> None:  # type: ignore[no-untyped-def]
    client, settings, ids = site
    csrf, towns = ids["csrf"], str(ids["towns"])
    client.post(
        f"/editor/people/{ids['rima']}/unsubscribe",
        data={"csrf_token": csrf, "list_id": "all", "reason": "prašė raštu"},
    )
    resubscribe = f"/editor/people/{ids['rima']}/resubscribe"
    refused = client.post(resubscribe, data={"csrf_token": csrf, "list_id": towns})
    assert refused.status_code == 400 and 'id="resubscribed-consent_source-error"' in refused.text
    # The refusal in the page's language: Lithuanian by default, English on ?lang=en.
    assert ">Būtina užpildyti.</p>" in refused.text
    english = client.post(f"{resubscribe}?lang=en", data={"csrf_token": csrf, "list_id": towns})
    assert english.status_code == 400 and ">Required.</p>" in english.text
    client.get("/editor/people?lang=lt")
    done = client.post(
        resubscribe, data={"csrf_token": csrf, "list_id": towns, "consent_source": "laiškas"}
    )
    assert done.status_code == 303
    assert [e["kind"] for e in events(settings, PEOPLE["rima"][0])] == ["unsubscribe", "subscribe"]

    jonas = f"/editor/people/{ids['jonas']}"
    bounced = client.post(
        f"{jonas}/resubscribe", data={"csrf_token": csrf, "list_id": towns, "consent_source": "x"}
    )
    assert bounced.status_code == 400 and "pirmiausia vėl įjunkite" in bounced.text
    bounced_en = client.post(
        f"{jonas}/resubscribe?lang=en",
        data={"csrf_token": csrf, "list_id": towns, "consent_source": "x"},
    )
    assert "Mail to this address bounces: reactivate it first." in bounced_en.text
    client.get("/editor/people?lang=lt")
    assert 'action="/editor/people/{}/reactivate"'.format(ids["jonas"]) in client.get(jonas).text
    assert client.post(f"{jonas}/reactivate", data={"csrf_token": csrf}).status_code == 400
    done = client.post(f"{jonas}/reactivate", data={"csrf_token": csrf, "reason": "dėžutė veikia"})
    assert done.status_code == 303
    assert events(settings, "jonas@kaunas.example")[-1]["detail"]["reason"] == "dėžutė veikia"


def test_export_downloads_the_commands_json_under_a_safe_name(site) -> None:  # type: ignore[no-untyped-def]
    client, settings, ids = site
    answer = client.get(f"/editor/people/{ids['ona']}/export")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == (
        'attachment; filename="export-ona_siauliai.example.json"'
    )
    assert answer.headers["cache-control"] == "no-store"
    with db.transaction(settings.database) as session:
        assert json.loads(answer.text) == export_subscriber(session, settings.key(), ONA)


def test_erase_needs_the_address_typed_then_the_page_is_gone(site) -> None:  # type: ignore[no-untyped-def]
    client, settings, ids = site
    erase = f"/editor/people/{ids['erika']}/erase"
    wrong = client.post(
        erase, data={"csrf_token": ids["csrf"], "confirm_email": "jonas@kaunas.example"}
    )
    assert wrong.status_code == 400 and 'id="erase-confirm_email-error"' in wrong.text
    done = client.post(
        erase, data={"csrf_token": ids["csrf"], "confirm_email": PEOPLE["erika"][0].upper()}
    )
    assert done.status_code == 303 and done.headers["location"].startswith(
        "/editor/people?erased=1"
    )
    for path in ("", "/export"):
        assert client.get(f"/editor/people/{ids['erika']}{path}").status_code == 404
    again = client.post(
        f"/editor/people/{ids['erika']}/resubscribe",
        data={"csrf_token": ids["csrf"], "list_id": str(ids["towns"]), "consent_source": "x"},
    )
    assert again.status_code == 404
    added = client.post(
        "/editor/people/new",
        data={
            "csrf_token": ids["csrf"],
            "email": PEOPLE["erika"][0],
            "list": str(ids["towns"]),
            "consent_source": "telefonu",
            "mode": "add",
        },
    )
    assert added.status_code == 400 and "duomenys ištrinti" in added.text
    # The audit log names the erasure by the suppression HMAC, never by the address.
    with db.transaction(settings.database) as session:
        entries = session.execute(select(AuditEntry.action, AuditEntry.object)).all()
    assert ("person.erase", audit_name(settings.key(), PEOPLE["erika"][0])) in entries
    assert all(PEOPLE["erika"][0] not in obj for _, obj in entries)
    with db.transaction(settings.database) as session:
        assert find_subscriber(session, PEOPLE["erika"][0]) is None


def test_add_by_hand_or_send_an_invitation(site) -> None:  # type: ignore[no-untyped-def]
    client, settings, ids = site
    form = {
        "csrf_token": ids["csrf"],
        "email": "rasa@joniskis.example",
        "name": "Rasa",
        "list": str(ids["towns"]),
        "mode": "add",
    }
    refused = client.post("/editor/people/new", data=form)
    assert refused.status_code == 400 and 'id="new-consent_source-error"' in refused.text
    added = client.post("/editor/people/new", data={**form, "consent_source": "anketa"})
    assert added.status_code == 303
    assert "Žmogus pridėtas." in client.get(added.headers["location"]).text
    held = client.post("/editor/people/new", data={**form, "consent_source": "anketa"})
    assert held.status_code == 400 and 'href="/editor/people/' in held.text
    assert "Šis adresas jau yra." in held.text
    held_en = client.post("/editor/people/new?lang=en", data={**form, "consent_source": "anketa"})
    assert "This address is held already." in held_en.text
    client.get("/editor/people?lang=lt")

    invite = {**form, "email": "petras@joniskis.example", "mode": "invite", "language": "en"}
    sent = client.post("/editor/people/new", data=invite)
    assert (sent.status_code, sent.headers["location"]) == (303, "/editor/people/new?invited=1")
    [mail] = list(settings.outbox.glob("*.eml"))
    message = message_from_bytes(mail.read_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "petras@joniskis.example"
    assert message["Subject"] == "Confirm your subscription"
    assert "/confirm/" in message.get_body(("plain",)).get_content()
    with db.transaction(settings.database) as session:  # nothing stored until confirmed
        assert find_subscriber(session, "petras@joniskis.example") is None
    again = client.post("/editor/people/new", data=invite)
    assert again.status_code == 400 and "ką tik išsiųstas" in again.text


def test_posts_without_the_csrf_token_are_refused(site) -> None:  # type: ignore[no-untyped-def]
    client, settings, ids = site
    before = snapshot(settings.database)
    for path, data in (
        (f"/editor/people/{ids['ona']}/unsubscribe", {"list_id": "all", "reason": "x"}),
        (f"/editor/people/{ids['ona']}/erase", {"confirm_email": ONA}),
        ("/editor/people/new", {"email": "a@b.example", "consent_source": "x", "mode": "add"}),
    ):
        assert client.post(path, data=data).status_code == 403
        assert client.post(path, data={**data, "csrf_token": "wrong"}).status_code == 403
    assert snapshot(settings.database) == before


def test_only_editors_see_or_change_people(site) -> None:  # type: ignore[no-untyped-def]
    logged_in, settings, ids = site
    person_id = ids["ona"]
    before = snapshot(settings.database)
    with TestClient(logged_in.app, base_url="https://testserver", follow_redirects=False) as client:
        for path in ("/editor/people?q=ona", f"/editor/people/{person_id}", "/editor/people/new"):
            answer = client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/editor/login")
        csrf = csrf_of(client.get("/editor/login").text)  # a session, but nobody logged in
        for action in ("unsubscribe", "erase", "edit", "export"):
            data = {"csrf_token": csrf, "confirm_email": ONA, "list_id": "all", "reason": "x"}
            assert client.post(f"/editor/people/{person_id}/{action}", data=data).status_code in (
                401,
                405,
            )
        assert client.get(f"/editor/people/{person_id}/export").status_code == 303
    assert snapshot(settings.database) == before


def test_the_access_log_never_keeps_what_was_searched() -> None:
    from newsletter.web.logs import redact

    assert redact("/editor/people?q=ona%40siauliai.example&page=2") == "/editor/people"
    assert redact("/editor/people/12?done=edited") == "/editor/people/12?done=edited"
