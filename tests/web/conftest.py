"""Fixtures of the web tests: an app on a migrated database, a logged-in client, test data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.models import MailingList, Membership, Subscriber
from newsletter.settings import Settings
from newsletter.web import create_app

EDITOR_EMAIL = "redaktore@bibliotekos-pazangai.example"
EDITOR_PASSWORD = "labai-slaptas-123"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def web_settings(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a migrated SQLite file (the embedded default), issues in a temporary folder."""
    url = f"sqlite:///{tmp_path / 'web.db'}"
    db.migrate(url)
    issues = tmp_path / "issues"
    issues.mkdir()
    yield settings.replace(database_url=url, issues_dir=issues)
    db.dispose(url)


@pytest.fixture
def client(web_settings: Settings) -> Iterator[TestClient]:
    """A client of the app over https (session cookies are Secure for an https base URL)."""
    app = create_app(web_settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def editor(web_settings: Settings) -> str:
    """An editor account; returns its address."""
    with db.transaction(web_settings.database) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
    return EDITOR_EMAIL


def csrf_of(html: str) -> str:
    """The CSRF token in a page's form."""
    found = CSRF_FIELD.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(client: TestClient, email: str = EDITOR_EMAIL, password: str = EDITOR_PASSWORD) -> str:
    """Log in through the form; return the session's CSRF token."""
    token = csrf_of(client.get("/editor/login").text)
    answer = client.post(
        "/editor/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/editor/").text)


@pytest.fixture
def logged_in(client: TestClient, editor: str) -> str:
    """Log the client in; returns the CSRF token to put in forms."""
    return log_in(client)


@pytest.fixture
def people(web_settings: Settings) -> dict[str, int]:
    """Two lists and three subscribers; returns their ids by name."""
    with db.transaction(web_settings.database) as session:
        towns = MailingList(slug="savivaldybes", name="Savivaldybės")
        libraries = MailingList(slug="bibliotekos", name="Bibliotekos")
        session.add_all([towns, libraries])
        session.flush()
        ids = {"towns": towns.id, "libraries": libraries.id}
        for key, email, name, lists in (
            ("ona", "ona@savivaldybe.example", "Ona Onaitė", (towns, libraries)),
            ("jonas", "jonas@savivaldybe.example", "Jonas Jonaitis", (towns,)),
            ("rasa", "rasa@biblioteka.example", "Rasa Rasaitė", (libraries,)),
        ):
            person = Subscriber(email=email, name=name, municipality="Kauno r.")
            session.add(person)
            session.flush()
            for mailing_list in lists:
                session.add(Membership(subscriber_id=person.id, list_id=mailing_list.id))
            ids[key] = person.id
    return ids
