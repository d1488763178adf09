"""Editor accounts, login, sessions, rate limiting and CSRF, over HTTP against a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.cli.core import cli, register
from newsletter.errors import InputError
from newsletter.models import LoginAttempt, User
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD, csrf_of, log_in


def test_editor_pages_need_a_login(client: TestClient) -> None:
    answer = client.get("/editor/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/editor/login?next=/editor/"
    assert (
        client.get(
            "/editor/campaigns/1/progress", headers={"accept": "application/json"}
        ).status_code
        == 303
    )
    assert (
        client.get("/editor/issues/x/events", headers={"accept": "text/event-stream"}).status_code
        == 401
    )


def test_login_sets_a_hardened_session_cookie(client: TestClient, editor: str) -> None:
    token = csrf_of(client.get("/editor/login").text)
    answer = client.post(
        "/editor/login",
        data={
            "email": editor.upper(),
            "password": EDITOR_PASSWORD,
            "csrf_token": token,
            "next": "/editor/",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/editor/"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" in cookie
    page = client.get("/editor/")
    assert page.status_code == 200
    assert editor in page.text


def test_session_cookie_is_not_secure_over_plain_http(web_settings: Settings, editor: str) -> None:
    app = create_app(web_settings.replace(base_url="http://127.0.0.1:8000"), watch=False)
    with TestClient(app, follow_redirects=False) as plain:
        answer = plain.get("/editor/login")
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "secure" not in cookie


def test_wrong_password_and_unknown_address_get_the_same_answer(
    client: TestClient, editor: str
) -> None:
    token = csrf_of(client.get("/editor/login").text)
    wrong = client.post(
        "/editor/login", data={"email": editor, "password": "neteisingas-1", "csrf_token": token}
    )
    unknown = client.post(
        "/editor/login",
        data={"email": "nera@example.lt", "password": "neteisingas-1", "csrf_token": token},
    )
    assert wrong.status_code == unknown.status_code == 401
    assert "Neteisingas el. paštas arba slaptažodis." in wrong.text
    assert wrong.text.replace(editor, "") == unknown.text.replace("nera@example.lt", "")


def test_login_is_rate_limited_per_address(
    client: TestClient, editor: str, web_settings: Settings
) -> None:
    token = csrf_of(client.get("/editor/login").text)
    for _ in range(users.MAX_FAILURES_PER_EMAIL):
        answer = client.post(
            "/editor/login",
            data={"email": editor, "password": "bandau-atspeti", "csrf_token": token},
        )
        assert answer.status_code == 401
    # Now even the right password is refused until the window has passed.
    answer = client.post(
        "/editor/login", data={"email": editor, "password": EDITOR_PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 429
    assert "Per daug nesėkmingų bandymų" in answer.text
    later = users.authenticate(
        web_settings.database,
        editor,
        EDITOR_PASSWORD,
        "testclient",
        now=users.utcnow() + users.WINDOW + timedelta(seconds=1),
    )
    assert later.user is not None


def test_login_is_rate_limited_per_client_address(web_settings: Settings) -> None:
    url = web_settings.database
    for n in range(users.MAX_FAILURES_PER_IP):
        assert (
            users.authenticate(url, f"spejimas{n}@example.lt", "x" * 12, "203.0.113.9").user is None
        )
    assert users.authenticate(url, "kitas@example.lt", "x" * 12, "203.0.113.9").throttled
    assert not users.authenticate(url, "kitas@example.lt", "x" * 12, "198.51.100.1").throttled
    with db.transaction(url) as session:
        # The refused attempt is not kept: waiting out the window is enough.
        assert (
            session.scalar(select(func.count()).select_from(LoginAttempt))
            == users.MAX_FAILURES_PER_IP + 1
        )


def test_logging_in_starts_a_fresh_session(client: TestClient, editor: str) -> None:
    before = csrf_of(client.get("/editor/login").text)
    after = log_in(client)
    assert before != after


def test_logout_needs_the_csrf_token(client: TestClient, logged_in: str) -> None:
    refused = client.post("/editor/logout")
    assert refused.status_code == 403
    assert "saugos žetonas" in refused.text
    assert client.get("/editor/").status_code == 200
    wrong = client.post("/editor/logout", data={"csrf_token": logged_in[:-2] + "xx"})
    assert wrong.status_code == 403
    assert client.post("/editor/logout", data={"csrf_token": logged_in}).status_code == 303
    assert client.get("/editor/").status_code == 303


def test_csrf_token_in_a_header_is_accepted(client: TestClient, logged_in: str) -> None:
    answer = client.post("/editor/logout", headers={"x-csrf-token": logged_in})
    assert answer.status_code == 303


def test_csrf_token_of_another_session_is_refused(
    web_settings: Settings, client: TestClient, logged_in: str
) -> None:
    app = create_app(web_settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as other:
        foreign = csrf_of(other.get("/editor/login").text)
    assert client.post("/editor/logout", data={"csrf_token": foreign}).status_code == 403


def test_login_form_itself_needs_the_csrf_token(client: TestClient, editor: str) -> None:
    answer = client.post("/editor/login", data={"email": editor, "password": EDITOR_PASSWORD})
    assert answer.status_code == 403


def test_next_never_leaves_the_editor_area(client: TestClient, editor: str) -> None:
    token = csrf_of(client.get("/editor/login").text)
    answer = client.post(
        "/editor/login",
        data={
            "email": editor,
            "password": EDITOR_PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert answer.headers["location"] == "/editor/"


def test_users_add_prompts_twice_and_stores_an_argon2_hash(
    web_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", web_settings.database)
    monkeypatch.setenv("NEWSLETTER_DATA_DIR", str(web_settings.data_dir))
    register(cli)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["users", "add", "Nauja@Example.LT"],
        input="slaptazodis-1\nslaptazodis-2\nslaptazodis-1\nslaptazodis-1\n",
    )
    assert result.exit_code == 0, result.output
    assert "nauja@example.lt" in result.output
    assert "slaptazodis-1" not in result.output
    with db.transaction(web_settings.database) as session:
        user = session.scalar(select(User).where(User.email == "nauja@example.lt"))
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        assert users.password_matches(user.password_hash, "slaptazodis-1")


def test_users_add_refuses_a_short_password_and_a_taken_address(
    web_settings: Settings, editor: str
) -> None:
    with (
        db.transaction(web_settings.database) as session,
        pytest.raises(InputError, match="password"),
    ):
        users.create_user(session, "kitas@example.lt", "trumpas")
    with (
        db.transaction(web_settings.database) as session,
        pytest.raises(InputError, match="already exists"),
    ):
        users.create_user(session, EDITOR_EMAIL.upper(), EDITOR_PASSWORD)


def test_a_new_password_ends_the_sessions_started_with_the_old_one(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    assert client.get("/editor/").status_code == 200
    with db.transaction(web_settings.database) as session:
        users.set_password(session, EDITOR_EMAIL, "visai-naujas-slaptazodis")
    assert client.get("/editor/").status_code == 303
    log_in(client, password="visai-naujas-slaptazodis")
    assert client.get("/editor/").status_code == 200
