"""Editor accounts, login, sessions, rate limiting and CSRF, over HTTP against a real database."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.cli.core import cli, main, register
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


def test_wrong_passwords_from_one_client_do_not_lock_the_editor_out(
    client: TestClient, editor: str, web_settings: Settings
) -> None:
    guesser = client_at(client, "203.0.113.9")
    token = csrf_of(guesser.get("/editor/login").text)
    for _ in range(users.MAX_FAILURES_PER_CLIENT_AND_ADDRESS):
        answer = guesser.post(
            "/editor/login",
            data={"email": editor, "password": "bandau-atspeti", "csrf_token": token},
        )
        assert answer.status_code == 401
    # The guesser's client is refused even the right password until the window has passed.
    answer = guesser.post(
        "/editor/login", data={"email": editor, "password": EDITOR_PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == str(int(users.WINDOW.total_seconds()))
    assert "Per daug nesėkmingų bandymų iš šio kompiuterio ar tinklo" in answer.text
    english = guesser.post(
        "/editor/login?lang=en",
        data={"email": editor, "password": EDITOR_PASSWORD, "csrf_token": token},
    )
    assert "ask an administrator to unlock the account" in english.text
    # The editor, on another client, is not.
    log_in(client)
    assert client.get("/editor/").status_code == 200
    later = users.authenticate(
        web_settings.database,
        editor,
        EDITOR_PASSWORD,
        "203.0.113.9",
        now=users.utcnow() + users.WINDOW + timedelta(seconds=1),
    )
    assert later.user is not None


def test_guessing_from_many_clients_slows_the_address_down_but_not_the_editors_browser(
    client: TestClient, editor: str, clock: Clock
) -> None:
    token = log_in(client)  # this browser is now a trusted device for the address
    client.post("/editor/logout", data={"csrf_token": token})
    # Two guessers, neither over its own limit, are together over the address's.
    for address, guesses in (("203.0.113.1", users.SLOW_DOWN_AFTER), ("203.0.113.2", 1)):
        guesser = client_at(client, address)
        token = csrf_of(guesser.get("/editor/login").text)
        form = {"email": editor, "password": "bandau-atspeti", "csrf_token": token}
        for _ in range(guesses):
            assert guesser.post("/editor/login", data=form).status_code == 401
    stranger = client_at(client, "198.51.100.20")  # the editor on a new computer, say
    form = {"email": editor, "password": EDITOR_PASSWORD}
    form["csrf_token"] = csrf_of(stranger.get("/editor/login").text)
    slowed = stranger.post("/editor/login", data=form)
    assert slowed.status_code == 429
    assert slowed.headers["retry-after"] == "1"
    assert "bandymai sulėtinti. Pabandykite dar kartą po 1 s." in slowed.text
    in_english = stranger.post("/editor/login?lang=en", data=form)
    assert "logins are slowed down. Try again in 1 s." in in_english.text
    # The editor's own browser is not slowed down.
    log_in(client)
    assert client.get("/editor/").status_code == 200
    clock.advance(seconds=1)
    assert stranger.post("/editor/login", data=form).status_code == 303


@pytest.mark.parametrize(
    ("failures", "seconds"), [(0, 0), (5, 0), (6, 1), (7, 2), (11, 32), (12, 60), (10**6, 60)]
)
def test_the_slowdown_doubles_with_each_failure_up_to_a_minute(failures: int, seconds: int) -> None:
    assert users.slowdown(failures) == timedelta(seconds=seconds)


def test_an_administrator_unlocks_an_editor(
    client: TestClient,
    editor: str,
    web_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = csrf_of(client.get("/editor/login").text)
    form = {"email": editor, "password": "neteisingas-1", "csrf_token": token}
    for _ in range(users.MAX_FAILURES_PER_CLIENT_AND_ADDRESS + 1):
        answer = client.post("/editor/login", data=form)
    assert answer.status_code == 429
    assert newsletter(web_settings, monkeypatch, "users", "unlock", editor.upper()) == 0
    assert f"Forgot 5 failed logins of {editor}." in capsys.readouterr().out
    log_in(client)
    assert client.get("/editor/").status_code == 200
    assert newsletter(web_settings, monkeypatch, "users", "unlock", "nera@example.lt") == 66
    assert capsys.readouterr().err.strip() == "error: email: no editor nera@example.lt"


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


def test_logging_out_ends_every_copy_of_the_session(client: TestClient, logged_in: str) -> None:
    copy = TestClient(client.app, base_url="https://testserver", cookies=dict(client.cookies))
    copy.follow_redirects = False
    assert copy.get("/editor/").status_code == 200
    assert client.post("/editor/logout", data={"csrf_token": logged_in}).status_code == 303
    assert copy.get("/editor/").status_code == 303
    assert copy.post("/editor/logout", data={"csrf_token": logged_in}).status_code == 303
    log_in(client)  # logging in again starts a new session; the copy stays out
    assert copy.get("/editor/").status_code == 303


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


def test_a_disabled_editor_is_logged_out_and_cannot_log_in(
    client: TestClient,
    logged_in: str,
    web_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copy = TestClient(client.app, base_url="https://testserver", cookies=dict(client.cookies))
    copy.follow_redirects = False
    assert copy.get("/editor/").status_code == 200
    assert newsletter(web_settings, monkeypatch, "users", "disable", EDITOR_EMAIL) == 0
    assert "disabled; their sessions ended" in capsys.readouterr().out
    assert client.get("/editor/").status_code == 303
    assert copy.get("/editor/").status_code == 303
    token = csrf_of(client.get("/editor/login").text)
    form = {"email": EDITOR_EMAIL, "password": EDITOR_PASSWORD, "csrf_token": token}
    refused = client.post("/editor/login", data=form)
    assert refused.status_code == 401
    assert "Neteisingas el. paštas arba slaptažodis." in refused.text
    assert newsletter(web_settings, monkeypatch, "users", "enable", EDITOR_EMAIL) == 0
    log_in(client)
    assert client.get("/editor/").status_code == 200
    assert newsletter(web_settings, monkeypatch, "users", "disable", "nera@example.lt") == 66


class Clock:
    """A stopped clock for the login limits and sessions; a test moves it on."""

    def __init__(self) -> None:
        self.now = users.utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Stop the clock that ``newsletter.users`` reads."""
    stopped = Clock()
    monkeypatch.setattr(users, "utcnow", stopped)
    return stopped


def client_at(client: TestClient, address: str) -> TestClient:
    """Another client of the same app, connecting from ``address``."""
    return TestClient(
        client.app, base_url="https://testserver", follow_redirects=False, client=(address, 40000)
    )


def newsletter(settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    """Run the command line on ``settings``' database; return its exit code."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", settings.database)
    monkeypatch.setenv("NEWSLETTER_DATA_DIR", str(settings.data_dir))
    return main(list(argv))
