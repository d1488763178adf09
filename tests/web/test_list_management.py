"""Keeping lists in the browser, over HTTP: create, rename, mark public, archive; segments; export.

The breadth at the request level (every refusal: no CSRF token, not logged in, a bad
field, a name that is taken); ``test_browser_segments.py`` walks the flows in Chromium.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from lxml import html as lxml_html
from openpyxl import load_workbook
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.errors import InputError
from newsletter.models import MailingList, Membership, Segment, Subscriber
from newsletter.settings import Settings
from newsletter.web import create_app, signup
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD, csrf_of, log_in
from tests.web.helpers import snapshot

PEOPLE = (
    # email, name, municipality, role, attributes, membership, subscriber status
    ("ona@kaunas.example", "=HYPERLINK(\"http://x.example\")", "Kauno r.", "merė", {"county": "Kauno"}, "active", "active"),
    ("jonas@kaunas.example", "Jonas", "Kauno r.", "vedėjas", {"county": "Kauno", "language": "en"}, "active", "active"),
    ("rasa@siauliai.example", "Rasa", "Šiaulių m.", "merė", {"county": "Šiaulių"}, "active", "active"),
    ("petras@siauliai.example", "Petras", "Šiaulių m.", "merė", {}, "unsubscribed", "active"),
    ("aldona@vilnius.example", "Aldona", "Vilniaus m.", "merė", {}, "active", "bounced"),
)  # fmt: skip


def seed(url: str) -> None:
    with db.transaction(url) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
        towns = MailingList(slug="savivaldybes", name="Savivaldybės")
        session.add(towns)
        session.flush()
        for email, name, town, role, attributes, member, status in PEOPLE:
            person = Subscriber(
                email=email,
                name=name,
                municipality=town,
                role=role,
                attributes=attributes,
                status=status,
            )
            session.add(person)
            session.flush()
            session.add(Membership(subscriber_id=person.id, list_id=towns.id, status=member))


def serve(settings: Settings) -> Iterator[tuple[TestClient, Settings, str]]:
    """The seeded app on ``settings``, with a logged-in client and its CSRF token."""
    seed(settings.database)
    app = create_app(settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client, settings, log_in(client)


@pytest.fixture
def site(db_settings: Settings) -> Iterator[tuple[TestClient, Settings, str]]:
    """A logged-in client on SQLite, then PostgreSQL, with a list of five people."""
    yield from serve(db_settings)


@pytest.fixture
def lite(web_settings: Settings) -> Iterator[tuple[TestClient, Settings, str]]:
    """The same on SQLite only, for checks that do not depend on the database."""
    yield from serve(web_settings)


def field_error(answer, element_id: str) -> str:
    found = lxml_html.fromstring(answer.text).get_element_by_id(element_id)
    return found.text_content()


def lists_row(url: str, slug: str) -> MailingList | None:
    with db.transaction(url) as session:
        found = session.scalar(select(MailingList).where(MailingList.slug == slug))
        if found is not None:
            session.expunge(found)
        return found


def test_create_rename_mark_public_and_archive(lite: tuple[TestClient, Settings, str]) -> None:
    client, settings, csrf = lite
    created = client.post(
        "/editor/lists/new",
        data={"csrf_token": csrf, "slug": "partneriai", "name": "Partneriai", "public": "1"},
    )
    assert created.status_code == 303
    assert created.headers["location"] == "/editor/lists/partneriai/edit?created=1"
    row = lists_row(settings.database, "partneriai")
    assert row is not None and row.public and row.archived_at is None
    listed = client.get("/editor/lists").text
    assert '<a href="/editor/lists/partneriai/edit">Partneriai</a>' in listed
    assert "> Partneriai</label>" in client.get("/subscribe").text

    saved = client.post(
        "/editor/lists/partneriai/edit",
        data={"csrf_token": csrf, "name": "Rėmėjai ir partneriai", "description": "Kas remia"},
    )
    assert saved.status_code == 303
    row = lists_row(settings.database, "partneriai")
    assert (row.name, row.description, row.public) == ("Rėmėjai ir partneriai", "Kas remia", False)
    assert "partneriai</label>" not in client.get("/subscribe").text  # no longer public
    with db.transaction(settings.database) as session, pytest.raises(InputError, match="lists"):
        signup.prepare(session, "rasa@siauliai.example", "Rasa", [row.id])  # a crafted POST

    client.post("/editor/lists/savivaldybes/archive", data={"csrf_token": csrf, "archived": "1"})
    page = client.get("/editor/lists/savivaldybes/edit")
    assert 'id="archived-note"' in page.text
    assert "Savivaldybės</label>" not in client.get("/subscribe").text
    assert "savivaldybes" in client.get("/editor/lists").text  # kept, with its history
    assert '<option value="savivaldybes"' not in client.get("/editor/lists").text  # no uploads
    client.post("/editor/lists/savivaldybes/archive", data={"csrf_token": csrf, "archived": "0"})
    assert lists_row(settings.database, "savivaldybes").archived_at is None


REFUSED = [
    # form, the element of the message, the message in Lithuanian, in English
    ({"slug": "savivaldybes", "name": "Kita"}, "new-slug-error",
     "Trumpas pavadinimas „savivaldybes“ jau užimtas: toks sąrašas jau yra.",
     "A list “savivaldybes” exists already."),
    ({"slug": "Ne Tinka", "name": "Kita"}, "new-slug-error",
     "Trumpas pavadinimas „Ne Tinka“ netinka: leidžiamos tik mažosios lotyniškos raidės, "
     "skaitmenys ir „-“, iki 64 ženklų.",
     "The short name “Ne Tinka” must be lower-case letters, digits and '-', up to 64."),
    ({"slug": "kita", "name": ""}, "new-name-error", "Sąrašui reikia pavadinimo.",
     "A list needs a name."),
    ({"slug": "kita", "name": "Dvi\neilutės"}, "new-name-error",
     "Pavadinimas turi būti viena eilutė, ne ilgesnė nei 200 simbolių.",
     "The name is one line of at most 200 characters."),
    ({"slug": "kita", "name": "Kita", "description": "x" * 2001}, "new-description-error",
     "Aprašymas turi būti ne ilgesnis nei 2000 simbolių.",
     "The description has at most 2000 characters."),
]  # fmt: skip


def test_a_refused_list_is_a_message_beside_the_field(
    lite: tuple[TestClient, Settings, str],
) -> None:
    """The message is in the page's language: Lithuanian by default, English on ?lang=en."""
    client, settings, csrf = lite
    before = snapshot(settings.database)
    for values, element, lithuanian, english in REFUSED:
        for lang, message in (("lt", lithuanian), ("en", english)):
            answer = client.post(
                f"/editor/lists/new?lang={lang}", data={"csrf_token": csrf, **values}
            )
            assert answer.status_code == 400, values
            assert field_error(answer, element) == message
            assert "Traceback" not in answer.text
    edit = "/editor/lists/savivaldybes/edit"
    answer = client.post(f"{edit}?lang=lt", data={"csrf_token": csrf, "name": " "})
    assert answer.status_code == 400
    assert field_error(answer, "name-error") == "Sąrašui reikia pavadinimo."
    answer = client.post(f"{edit}?lang=en", data={"csrf_token": csrf, "name": " "})
    assert field_error(answer, "name-error") == "A list needs a name."
    assert snapshot(settings.database) == before
    assert client.get("/editor/lists/nera/edit").status_code == 404


POSTS = [
    ("/editor/lists/new", {"slug": "kita", "name": "Kita"}),
    ("/editor/lists/savivaldybes/edit", {"name": "Kita"}),
    ("/editor/lists/savivaldybes/archive", {"archived": "1"}),
    ("/editor/segments/1/delete", {}),
    ("/editor/issues/x/campaign", {"action": "save", "segment_name": "S", "list": "savivaldybes"}),
]


def test_every_post_needs_the_csrf_token_and_an_editor(
    lite: tuple[TestClient, Settings, str],
) -> None:
    client, settings, _csrf = lite
    with db.transaction(settings.database) as session:
        session.add(Segment(name="Merai", definition={"role": ["merė"]}))
    before = snapshot(settings.database)
    for path, data in POSTS:
        assert client.post(path, data={"csrf_token": "wrong", **data}).status_code == 403, path
    assert snapshot(settings.database) == before
    stranger = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    token = csrf_of(stranger.get("/editor/login").text)
    for path, data in POSTS:
        assert stranger.post(path, data={"csrf_token": token, **data}).status_code == 401, path
    for path in (
        "/editor/lists/savivaldybes/edit",
        "/editor/lists/savivaldybes/export?format=csv",
        "/editor/segments/count?list=savivaldybes",
    ):
        answer = stranger.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/editor/login")
    assert snapshot(settings.database) == before


def count(client: TestClient, **query: object):
    return client.get("/editor/segments/count", params=query)


def test_the_live_count_follows_the_segment(site: tuple[TestClient, Settings, str]) -> None:
    client, _settings, _csrf = site
    assert count(client, list="savivaldybes").json() == {"count": 3}  # active people only
    merai = count(client, **{"list": "savivaldybes", "seg.role": "merė"})
    assert merai.json() == {"count": 2}  # Ona and Rasa (Petras left, Aldona bounced)
    either = {"list": "savivaldybes", "seg.county": ["Kauno", "Šiaulių"], "seg.role": "merė"}
    assert count(client, **either).json() == {"count": 2}
    english = {"list": "savivaldybes", "seg.language": "en"}
    assert count(client, **english).json() == {"count": 1}
    refused = count(client, **{"list": "savivaldybes", "seg.role": "a\nb", "lang": "lt"})
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "Pareigos: reikšmė 'a\\nb' turi būti viena eilutė, ne ilgesnė nei 200 simbolių."
    )
    refused = count(client, **{"list": "savivaldybes", "seg.role": "a\nb", "lang": "en"})
    assert refused.json()["error"] == "role: 'a\\nb' is not one line of at most 200 characters."
    assert count(client, list="nera").status_code == 400


def test_exports_hold_the_chosen_members_with_formulas_neutralised(
    site: tuple[TestClient, Settings, str],
) -> None:
    client, settings, _csrf = site
    answer = client.get("/editor/lists/savivaldybes/export", params={"format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="savivaldybes-active.csv"' in answer.headers["content-disposition"]
    rows = csv_rows(answer)
    assert sorted(r["email"] for r in rows) == [
        "jonas@kaunas.example",
        "ona@kaunas.example",
        "rasa@siauliai.example",
    ]
    ona = next(r for r in rows if r["email"] == "ona@kaunas.example")
    assert ona["name"] == '\'=HYPERLINK("http://x.example")'
    assert ona["county"] == "Kauno"

    left = client.get("/editor/lists/savivaldybes/export?format=csv&status=unsubscribed")
    assert [r["email"] for r in csv_rows(left)] == ["petras@siauliai.example"]
    everyone = client.get("/editor/lists/savivaldybes/export?format=csv&status=all")
    assert len(csv_rows(everyone)) == 5

    with db.transaction(settings.database) as session:
        merai = Segment(name="Merai", definition={"role": ["merė"]})
        session.add(merai)
        session.flush()
        segment_id = merai.id
    book = client.get(f"/editor/lists/savivaldybes/export?format=xlsx&segment={segment_id}")
    assert book.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(book.content)).active
    header, *cells = [list(row) for row in sheet.iter_rows()]
    assert [c.value for c in header][:2] == ["email", "name"]
    by_email = {row[0].value: row for row in cells}
    assert sorted(by_email) == ["ona@kaunas.example", "rasa@siauliai.example"]
    name = by_email["ona@kaunas.example"][1]
    assert name.data_type == "s"
    assert name.value == '\'=HYPERLINK("http://x.example")'

    bad = client.get("/editor/lists/savivaldybes/export?format=csv&status=nobody")
    assert bad.status_code == 400
    assert field_error(bad, "status-error") == "Pasirinkite, kuriuos narius atsisiųsti."
    bad = client.get("/editor/lists/savivaldybes/export?format=csv&status=nobody&lang=en")
    assert field_error(bad, "status-error") == "Choose which members to download."


def csv_rows(answer) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))


def campaign_post(client: TestClient, csrf: str, **data: object):
    return client.post("/editor/issues/x/campaign", data={"csrf_token": csrf, **data})


def test_a_segment_is_saved_under_a_name_and_used_again(
    lite: tuple[TestClient, Settings, str],
) -> None:
    client, settings, csrf = lite
    choice = {"list": "savivaldybes", "seg.role": "merė", "seg.county": ["Kauno", "Šiaulių"]}
    saved = campaign_post(client, csrf, action="save", segment_name="Merai", **choice)
    assert saved.status_code == 200, saved.text
    with db.transaction(settings.database) as session:
        kept = session.scalars(select(Segment)).one()
        assert (kept.name, kept.definition) == (
            "Merai",
            {"county": ["Kauno", "Šiaulių"], "role": ["merė"]},
        )
        segment_id = kept.id
    again = campaign_post(client, csrf, action="save", segment_name="Merai", **choice)
    assert again.status_code == 400
    assert field_error(again, "segment_name-error") == "Atranka pavadinimu „Merai“ jau yra."
    english = client.post(
        "/editor/issues/x/campaign?lang=en",
        data={"csrf_token": csrf, "action": "save", "segment_name": "Merai", **choice},
    )
    assert field_error(english, "segment_name-error") == "A segment named “Merai” exists already."
    client.get("/editor/lists?lang=lt")  # the pages below in Lithuanian again
    unknown = campaign_post(client, csrf, action="load", saved="999", list="savivaldybes")
    assert unknown.status_code == 400
    assert "Išsaugotos atrankos Nr. 999 nėra." in unknown.text

    loaded = campaign_post(client, csrf, action="load", saved=str(segment_id), list="savivaldybes")
    form = lxml_html.fromstring(loaded.text)
    assert form.xpath("//select[@name='seg.role']/option[@selected]/@value") == ["merė"]
    counted = campaign_post(client, csrf, action="count", **choice)
    assert lxml_html.fromstring(counted.text).get_element_by_id("live-count").text == "2"

    client.post(f"/editor/segments/{segment_id}/delete", data={"csrf_token": csrf})
    with db.transaction(settings.database) as session:
        assert session.scalars(select(Segment)).all() == []
