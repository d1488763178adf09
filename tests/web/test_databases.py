"""The web's own database work on both backends: SQLite and PostgreSQL (required under CI).

Login and its rate limit, one-click unsubscribe, preferences and double opt-in, each run
once per database through the ``db_settings`` fixture.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.audience import tokens
from newsletter.models import ConsentEvent, MailingList, Membership, Subscriber, User
from newsletter.settings import Settings
from newsletter.web import create_app, public, signup
from tests.dispatch.support import add_people
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD, csrf_of, log_in


@pytest.fixture
def both(db_settings: Settings) -> Iterator[tuple[TestClient, Settings, dict[str, int]]]:
    """A client on SQLite, then on PostgreSQL, with an editor, a list and a subscriber."""
    with db.transaction(db_settings.database) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
        towns = MailingList(slug="savivaldybes", name="Savivaldybės")
        person = Subscriber(email="ona@savivaldybe.example", name="Ona")
        session.add_all([towns, person])
        session.flush()
        session.add(Membership(subscriber_id=person.id, list_id=towns.id))
        ids = {"towns": towns.id, "ona": person.id}
    app = create_app(db_settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client, db_settings, ids


def test_login_and_its_rate_limit(both: tuple[TestClient, Settings, dict[str, int]]) -> None:
    client, settings, _ids = both
    log_in(client)
    url = settings.database
    with db.transaction(url) as session:
        assert session.scalar(select(User.last_login_at)) is not None
    now = users.utcnow()
    for _ in range(users.MAX_FAILURES_PER_CLIENT_AND_ADDRESS):
        assert users.authenticate(url, EDITOR_EMAIL, "neteisingas-1", "192.0.2.1", now).user is None
    assert users.authenticate(url, EDITOR_EMAIL, EDITOR_PASSWORD, "192.0.2.1", now).throttled
    assert users.authenticate(url, EDITOR_EMAIL, EDITOR_PASSWORD, "192.0.2.2", now).user
    assert users.authenticate(url, EDITOR_EMAIL, "neteisingas-1", "192.0.2.3", now).user is None
    slowed = users.authenticate(url, EDITOR_EMAIL, EDITOR_PASSWORD, "192.0.2.4", now)
    assert (slowed.user, slowed.wait_seconds) == (None, 1)
    later = now + users.WINDOW + timedelta(seconds=1)
    assert users.authenticate(url, EDITOR_EMAIL, EDITOR_PASSWORD, "192.0.2.1", later).user


def test_logging_out_in_one_web_process_ends_the_session_in_another(
    both: tuple[TestClient, Settings, dict[str, int]],
) -> None:
    client, settings, _ids = both
    token = log_in(client)
    other_process = create_app(settings, watch=False)
    with TestClient(
        other_process,
        base_url="https://testserver",
        cookies=dict(client.cookies),
        follow_redirects=False,
    ) as copy:
        assert copy.get("/editor/").status_code == 200
        assert client.post("/editor/logout", data={"csrf_token": token}).status_code == 303
        assert copy.get("/editor/").status_code == 303
        log_in(client)
        with db.transaction(settings.database) as session:
            user = session.scalar(select(User))
            assert user is not None
            assert users.end_sessions(session, user.id) == 1
        assert client.get("/editor/").status_code == 303


def test_one_click_unsubscribe_and_preferences(
    both: tuple[TestClient, Settings, dict[str, int]],
) -> None:
    client, settings, ids = both
    token = tokens.make_token(settings.key(), ids["ona"], ids["towns"])
    page = client.get(f"/p/{token}")
    client.post(f"/p/{token}", data={"csrf_token": csrf_of(page.text), "action": "save"})
    with db.transaction(settings.database) as session:
        assert session.scalar(select(Membership.status)) == "unsubscribed"
    page = client.get(f"/p/{token}")
    client.post(f"/p/{token}", data={"csrf_token": csrf_of(page.text), "list": [str(ids["towns"])]})
    with db.transaction(settings.database) as session:
        assert session.scalar(select(Membership.status)) == "active"
    fresh = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    for _ in range(2):
        answer = fresh.post(
            f"/u/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 200
    with db.transaction(settings.database) as session:
        assert session.scalar(select(Membership.status)) == "unsubscribed"
        kinds = session.scalars(select(ConsentEvent.kind).order_by(ConsentEvent.id)).all()
        assert kinds == ["preferences", "preferences", "unsubscribe"]


def test_concurrent_one_clicks_each_record_one_event(
    both: tuple[TestClient, Settings, dict[str, int]],
) -> None:
    """20 threads, each person's link twice: one change and one event per person.

    On PostgreSQL the change and its event are one statement; on SQLite one transaction.
    """
    _, settings, ids = both
    people = add_people(settings.database, 20, ("savivaldybes",), prefix="skubus")
    links = [tokens.make_token(settings.key(), person, ids["towns"]) for person in people] * 2
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda t: public._unsubscribe(settings, t, "one-click"), links))
    assert all(answers)
    with db.transaction(settings.database) as session:
        rows = session.execute(
            select(ConsentEvent, Membership)
            .join(
                Membership,
                (Membership.subscriber_id == ConsentEvent.subscriber_id)
                & (Membership.list_id == ConsentEvent.list_id),
            )
            .where(ConsentEvent.subscriber_id.in_(people))
        ).all()
        assert sorted(event.subscriber_id for event, _ in rows) == sorted(people)
        for event, membership in rows:
            assert (event.kind, event.source, event.list_id) == (
                "unsubscribe",
                "one-click",
                ids["towns"],
            )
            assert (event.text_version, event.detail) == ("", {})
            assert membership.status == "unsubscribed"
            assert membership.updated_at == event.at
        assert (
            session.scalar(select(Membership.status).where(Membership.subscriber_id == ids["ona"]))
            == "active"
        )


def test_unsubscribe_page_names_the_person_and_the_list(
    both: tuple[TestClient, Settings, dict[str, int]],
) -> None:
    client, settings, ids = both
    key = settings.key()
    page = client.get(f"/u/{tokens.make_token(key, ids['ona'], ids['towns'])}")
    assert page.status_code == 200
    assert "ona@savivaldybe.example" in page.text and "Savivaldybės" in page.text
    for list_id in (None, 999_999):  # every list; a list deleted since the mail went out
        page = client.get(f"/u/{tokens.make_token(key, ids['ona'], list_id)}")
        assert page.status_code == 200
        assert "ona@savivaldybe.example" in page.text and "Savivaldybės" not in page.text
    assert client.get(f"/u/{tokens.make_token(key, 999_999, ids['towns'])}").status_code == 404


def test_double_opt_in_confirmation(both: tuple[TestClient, Settings, dict[str, int]]) -> None:
    client, settings, ids = both
    request = signup.SignupRequest(
        "nauja@biblioteka.example", "Nauja Skaitytoja", (ids["towns"],), "2026-02-01T09:00:00"
    )
    path = f"/confirm/{signup.make_confirm_token(settings.key(), request)}"
    page = client.get(path)
    for _ in range(2):
        assert client.post(path, data={"csrf_token": csrf_of(page.text)}).status_code == 200
    with db.transaction(settings.database) as session:
        person = session.scalar(
            select(Subscriber).where(Subscriber.email == "nauja@biblioteka.example")
        )
        assert person is not None and person.status == "active"
        assert [m.status for m in person.memberships] == ["active"]
        events = session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.subscriber_id == person.id)
            .order_by(ConsentEvent.id)
        ).all()
        assert [(e.kind, e.list_id, e.source) for e in events] == [
            ("subscribe", ids["towns"], "web form"),
            ("confirm", ids["towns"], "web form"),
        ]
        assert events[0].detail["requested_at"] == "2026-02-01T09:00:00"
        assert events[0].text_version == signup.CONSENT_TEXT_VERSION


def guess_at_once(
    guess: Callable[[int], None],
    guesses: int,
    seen: Callable[[], int],
    lock: threading.Lock,
    release: threading.Event,
) -> None:
    """Start every guess at once, then release the held password checks once each guess
    is either held in its check or already refused (``seen`` counts both, under ``lock``)."""
    threads = [threading.Thread(target=guess, args=(n,)) for n in range(guesses)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lock:
                if seen() >= guesses:
                    break
            time.sleep(0.01)
    finally:
        release.set()
        for thread in threads:
            thread.join()


def test_guesses_sent_at_once_get_no_more_checks_than_the_limit(
    both: tuple[TestClient, Settings, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each guess counts before any password is checked, so parallel guesses cannot outrun the limit."""
    client, _settings, _ids = both
    token = csrf_of(client.get("/editor/login").text)
    guesses = users.MAX_FAILURES_PER_CLIENT_AND_ADDRESS * 2 + 2
    checked: list[str] = []
    answered: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def held_check(password_hash: str, password: str) -> bool:
        """Hold every password check until all guesses have arrived."""
        with lock:
            checked.append(password)
        release.wait()
        return False

    monkeypatch.setattr(users, "password_matches", held_check)

    def guess(number: int) -> None:
        form = {"email": EDITOR_EMAIL, "password": f"spejimas-{number}", "csrf_token": token}
        status = client.post("/editor/login", data=form).status_code
        with lock:
            answered.append(status)

    guess_at_once(guess, guesses, lambda: len(checked) + len(answered), lock, release)
    assert len(checked) <= users.MAX_FAILURES_PER_CLIENT_AND_ADDRESS
    assert sorted(answered) == [401] * len(checked) + [429] * (guesses - len(checked))


def test_guesses_from_many_clients_at_once_get_one_check_once_the_address_is_slowed(
    both: tuple[TestClient, Settings, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each guess counts before any is checked, so parallel guesses cannot outrun the slowdown."""
    client, settings, _ids = both
    now = users.utcnow()
    for number in range(users.SLOW_DOWN_AFTER + 1):
        users.authenticate(settings.database, EDITOR_EMAIL, "x" * 12, f"192.0.2.{number}", now)
    monkeypatch.setattr(users, "utcnow", lambda: now + users.MAX_SLOWDOWN)
    guesses = 12
    checked: list[str] = []
    answered: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def held_check(password_hash: str, password: str) -> bool:
        """Hold every password check until all guesses have arrived."""
        with lock:
            checked.append(password)
        release.wait()
        return False

    monkeypatch.setattr(users, "password_matches", held_check)

    def guess(number: int) -> None:
        guesser = TestClient(
            client.app,
            base_url="https://testserver",
            cookies=dict(client.cookies),
            client=(f"198.51.100.{number}", 40000),
        )
        token = csrf_of(guesser.get("/editor/login").text)
        form = {"email": EDITOR_EMAIL, "password": f"spejimas-{number}", "csrf_token": token}
        status = guesser.post("/editor/login", data=form).status_code
        with lock:
            answered.append(status)

    guess_at_once(guess, guesses, lambda: len(checked) + len(answered), lock, release)
    assert len(checked) <= 1
    assert sorted(answered) == [401] * len(checked) + [429] * (guesses - len(checked))
