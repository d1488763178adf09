"""Who may open which editor page: every route × every role, from the permission table.

The route's own handler is replaced by a stub that says it was reached, so these requests
test the guard alone (the login, the session's roles, the table), quickly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.settings import Secret, Settings
from newsletter.web import create_app, permissions
from newsletter.web.auth import Guarded, guard_routes
from tests.conftest import ROOT
from tests.web.conftest import EDITOR_PASSWORD, csrf_of

PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
# Every role alone, then an account that holds none.
ACCOUNTS = {role: f"{role.replace('_', '-')}@bibliotekos-pazangai.example" for role in users.ROLES}
ACCOUNTS["none"] = "be-vaidmenu@bibliotekos-pazangai.example"
UNCLASSIFIED_TEST_ROUTE = "/editor/not-in-the-table"


def log_in_as(client: TestClient, email: str) -> str:
    """Log in through the form; return the session's CSRF token (from the login page, which
    no stub replaces)."""
    client.cookies.clear()
    token = csrf_of(client.get("/editor/login").text)
    answer = client.post(
        "/editor/login", data={"email": email, "password": EDITOR_PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/editor/login").text)


def example_path(pattern: str) -> str:
    """A concrete path the pattern matches: 1 for numbers, ``x`` for text."""
    return PARAM.sub(lambda m: "1" if m.group(2) == "int" else "x", pattern)


def reached(pattern: str):
    """A stand-in endpoint that answers which route it is."""

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(f"reached {pattern}")

    return endpoint


@pytest.fixture(scope="module")
def stubbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    """The real app with every editor route's handler replaced by ``reached``, plus one
    route the table does not name; an account per role, logged in once for the module."""
    folder = tmp_path_factory.mktemp("permissions")
    url = f"sqlite:///{folder / 'web.db'}"
    db.migrate(url)
    (folder / "issues").mkdir()
    settings = Settings(
        data_dir=folder / "var",
        issues_dir=folder / "issues",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        base_url="https://naujienos.bibliotekos-pazangai.example",
        secret_key=Secret("test-secret-key-0123456789abcdef"),
        database_url=url,
    )
    app = create_app(settings, watch=False)
    app.router.routes.append(Route(UNCLASSIFIED_TEST_ROUTE, lambda r: None, methods=["GET"]))
    guard_routes(app.router.routes)
    # The routes are the modules' own objects, shared by every app: put them back after.
    originals = []
    for method, path, route in permissions.editor_routes(app.router.routes):
        if permissions.required(method, path) != permissions.OPEN:
            originals.append((route.app, route.app.app))
            route.app.app = Route(path, reached(path), methods=[method]).app
    with db.transaction(url) as session:
        for role, email in ACCOUNTS.items():
            users.create_user(session, email, EDITOR_PASSWORD, [] if role == "none" else [role])
    try:
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
            sessions = {}
            for role, email in ACCOUNTS.items():
                token = log_in_as(client, email)
                sessions[role] = (dict(client.cookies), token)
            yield Matrix(client, sessions)
    finally:
        for guarded, inner in originals:
            guarded.app = inner
        db.dispose(url)


@dataclass
class Matrix:
    """One client of the stubbed app, and each account's cookies and CSRF token."""

    client: TestClient
    sessions: dict[str, tuple[dict[str, str], str]]

    def as_(self, role: str) -> tuple[TestClient, str]:
        """The client with ``role``'s session cookies; returns it and the CSRF token."""
        cookies, token = self.sessions[role]
        self.client.cookies.clear()
        for name, value in cookies.items():
            self.client.cookies.set(name, value)
        return self.client, token


def test_every_editor_route_is_in_the_permission_table(web_settings: Settings) -> None:
    app = create_app(web_settings, watch=False)
    routes = permissions.editor_routes(app.router.routes)
    unclassified = [
        f"{method} {path}"
        for method, path, _ in routes
        if permissions.required(method, path) is None
    ]
    assert not unclassified, "add these routes to permissions.ROUTES:\n" + "\n".join(unclassified)
    present = {(method, path) for method, path, _ in routes}
    stale = sorted(f"{m} {p}" for m, p in permissions.ROUTES if (m, p) not in present)
    assert not stale, "permissions.ROUTES names routes the app does not have:\n" + "\n".join(stale)
    assert all(isinstance(route.app, Guarded) for _m, _p, route in routes)


def test_every_route_answers_every_role_as_the_table_says(stubbed: Matrix) -> None:
    routes = permissions.editor_routes(stubbed.client.app.router.routes)
    wrong = []
    for role in ACCOUNTS:
        client, token = stubbed.as_(role)
        held = [] if role == "none" else [role]
        for method, path, _route in routes:
            permission = permissions.required(method, path)
            if permission == permissions.OPEN:
                continue
            answer = client.request(method, example_path(path), headers={"x-csrf-token": token})
            allowed = permissions.allows(held, permission)
            got = answer.status_code == 200 and answer.text == f"reached {path}"
            if allowed != got or (not allowed and answer.status_code != 403):
                wrong.append(f"{role}: {method} {path} -> {answer.status_code} (allowed={allowed})")
    assert not wrong, "\n".join(wrong)


def test_a_route_missing_from_the_table_is_for_admins_only(stubbed: Matrix) -> None:
    for role in ACCOUNTS:
        client, _token = stubbed.as_(role)
        answer = client.get(UNCLASSIFIED_TEST_ROUTE)
        assert answer.status_code == (200 if role == users.ADMIN else 403), role


def test_nobody_logged_out_reaches_an_editor_route(stubbed: Matrix) -> None:
    client = stubbed.client
    client.cookies.clear()
    for method, path, _route in permissions.editor_routes(client.app.router.routes):
        if permissions.required(method, path) == permissions.OPEN:
            continue
        answer = client.request(method, example_path(path))
        assert answer.status_code in (303, 401, 403), f"{method} {path}"
        assert "reached" not in answer.text


def test_the_refusal_is_a_page_in_both_languages(stubbed: Matrix) -> None:
    client, _token = stubbed.as_(users.AUTHOR)
    lithuanian = client.get("/editor/lists")
    assert lithuanian.status_code == 403
    assert "Neleidžiama" in lithuanian.text
    english = client.get("/editor/lists?lang=en")
    assert english.status_code == 403
    assert "Not allowed" in english.text
