"""Export shows one person everything held about them; erasure leaves no trace but a keyed HMAC."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter import db
from newsletter.audience.lists import import_file
from newsletter.audience.subscribers import (
    Erasure,
    email_hmac,
    erase_outbox_files,
    erase_subscriber,
    export_subscriber,
    find_subscriber,
    forget_deleted_bytes,
    unsubscribe,
)
from newsletter.dispatch.campaign import create_test
from newsletter.errors import NotFoundError
from newsletter.models import Campaign, OutboxRow, Suppression
from newsletter.settings import Secret, Settings
from tests.audience.factories import snapshot, sqlite_bytes
from tests.delivery.conftest import compiled_issue

KEY = b"test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).parent / "fixtures"
ONA = "ona.zemaitiene@siauliai.example"
JONAS = "jonas.petraitis@kaunas.example"


def _two_people_with_mail(url: str, folder: Path) -> None:
    """Two lists, three people, one campaign sent to Ona and Jonas, one queued for Ona,
    and a test copy sent to Ona."""
    import_file(url, KEY, FIXTURES / "utf8_comma.csv", "savivaldybes")
    import_file(url, KEY, FIXTURES / "utf8_bom_semicolon.csv", "bibliotekos")
    # Ona's name changes, so an older version of her row was once in the database.
    renamed = folder / "renamed.csv"
    renamed.write_text(f"email,name\n{ONA},Ona Žemaitienė-Kairienė Jr.\n", encoding="utf-8")
    import_file(url, KEY, renamed, "bibliotekos")
    with db.transaction(url) as session:
        ona, jonas = find_subscriber(session, ONA), find_subscriber(session, JONAS)
        unsubscribe(session, KEY, jonas.id, None, "web")
        sent = Campaign(issue_slug="2026-01", subject="Sausio naujienos")
        later = Campaign(issue_slug="2026-02", subject="Vasario naujienos")
        # A relay that refused to relay quoted the recipient; the pause reason keeps it.
        refused = Campaign(
            issue_slug="2026-03",
            subject="Kovo naujienos",
            status="paused",
            status_reason="stopped: the mail server refuses our relaying or login (RCPT TO): "
            f"SMTP 554 5.7.1 <{ONA}>: Relay access denied; check the settings",
        )
        session.add_all([sent, later, refused])
        session.flush()
        for person in (ona, jonas):
            session.add(
                OutboxRow(
                    campaign_id=sent.id,
                    subscriber_id=person.id,
                    list_id=None,
                    email=person.email,
                    state="sent",
                    smtp_reply=f"250 2.0.0 OK <{person.email.upper()}> queued",
                    sent_at=datetime(2026, 1, 15, 9, 0, tzinfo=UTC),
                )
            )
        session.add(OutboxRow(campaign_id=later.id, subscriber_id=ona.id, email=ona.email))
    settings = Settings(data_dir=folder / "var", database_url=url, secret_key=Secret(KEY.decode()))
    create_test(settings, compiled_issue(subject="Bandymas"), ONA)


def test_export_holds_everything_about_the_person_and_nobody_else(
    database_url: str, tmp_path: Path
) -> None:
    _two_people_with_mail(database_url, tmp_path)
    with db.transaction(database_url) as session:
        data = export_subscriber(session, KEY, "Ona.Zemaitiene@SIAULIAI.example")
    text = json.dumps(data, ensure_ascii=False)
    assert data["profile"]["name"] == "Ona Žemaitienė-Kairienė Jr."
    assert data["profile"]["municipality"] == "Šiaulių m."
    assert [(m["list"], m["status"]) for m in data["memberships"]] == [
        ("bibliotekos", "active"),
        ("savivaldybes", "active"),
    ]
    assert [(e["kind"], e["source"]) for e in data["consent_events"]] == [
        ("import", "utf8_comma.csv"),
        ("import", "utf8_bom_semicolon.csv"),
    ]  # the renaming import added no membership, so no consent event
    assert [(s["subject"], s["state"]) for s in data["sent"]] == [
        ("Sausio naujienos", "sent"),
        ("Vasario naujienos", "queued"),
        ("Bandymas", "queued"),
    ]
    assert data["sent"][0]["sent_at"] == "2026-01-15T09:00:00+00:00"
    assert data["suppression"] is None
    for other in ("jonas", "Petraitis", "ruta", "Rūta", "Kauno"):
        assert other.lower() not in text.lower()
    with db.transaction(database_url) as session:
        jonas = export_subscriber(session, KEY, JONAS)
        assert jonas["suppression"]["reason"] == "unsubscribed"
        with pytest.raises(NotFoundError, match=r"no data is held about nobody@kaunas\.example"):
            export_subscriber(session, KEY, "nobody@kaunas.example")


def test_erasure_leaves_no_plaintext_anywhere_in_the_database(
    database_url: str, tmp_path: Path
) -> None:
    _two_people_with_mail(database_url, tmp_path)
    with db.transaction(database_url) as session:
        assert erase_subscriber(session, KEY, ONA.upper()) == Erasure(
            held=True, outbox_rows=3, stopped=2, in_flight=()
        )
    forget_deleted_bytes(database_url)
    everything = json.dumps(snapshot(database_url), ensure_ascii=False).lower()
    for trace in (ONA, "žemaitienė", "zemaitiene", "kairienė"):
        assert trace not in everything
    assert JONAS in everything  # nobody else was touched
    digest = email_hmac(KEY, ONA)
    with db.transaction(database_url) as session:
        rows = {
            r.state: r
            for r in session.scalars(select(OutboxRow).where(OutboxRow.subscriber_id.is_(None)))
        }
        assert set(rows) == {"sent", "suppressed"}  # the unsent row will never go out
        assert rows["sent"].email == f"erased:{digest}"
        assert rows["sent"].smtp_reply == "250 2.0.0 OK <[erased]> queued"
        assert (
            session.scalar(select(Suppression.reason).where(Suppression.email_hmac == digest))
            == "erased"
        )
        after = export_subscriber(session, KEY, ONA)
    assert (after["profile"], after["memberships"], after["consent_events"]) == (None, [], [])
    assert after["suppression"]["reason"] == "erased" and len(after["sent"]) == 3
    with db.transaction(database_url) as session:  # idempotent: nothing left to stop
        assert erase_subscriber(session, KEY, ONA) == Erasure(
            held=False, outbox_rows=3, stopped=0, in_flight=()
        )
        reason = session.scalar(select(Campaign.status_reason).where(Campaign.status == "paused"))
    assert reason.startswith("stopped: the mail server refuses our relaying")
    assert "<[erased]>: Relay access denied" in reason


def test_erasure_leaves_no_plaintext_bytes_in_the_sqlite_files(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = settings.database
    db.migrate(url)
    _two_people_with_mail(url, tmp_path)
    with db.transaction(url) as session:
        erase_subscriber(session, KEY, ONA)
    assert forget_deleted_bytes(url)
    raw = sqlite_bytes(url)
    assert JONAS.encode() in raw
    for trace in (ONA, "žemaitienė", "Žemaitienė", "zemaitiene", "Kairienė"):
        assert trace.encode() not in raw, trace


def test_erasure_removes_the_outbox_files_of_the_person(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "a.eml").write_bytes(f"To: {ONA.upper()}\r\n\r\nLabas".encode())
    (outbox / "b.eml").write_bytes(f"To: {JONAS}\r\n\r\nLabas".encode())
    # Other people whose address merely contains Ona's keep their mail.
    (outbox / "c.eml").write_bytes(f"To: Jona <j{ONA}>\r\n\r\nLabas".encode())
    (outbox / "d.eml").write_bytes(f"To: {ONA}.lt\r\n\r\nLabas".encode())
    (outbox / "e.eml").write_bytes(f"To: Ona <{ONA}>\r\n\r\nLabas".encode())
    # A write in progress, or cut short by a crash, as the folder transport names it.
    (outbox / ".f.eml.4242.0a1b2c3d.tmp").write_bytes(f"To: {ONA}\r\n\r\nLa".encode())
    (outbox / ".g.eml.4242.0a1b2c3d.tmp").write_bytes(f"To: {JONAS}\r\n\r\nLa".encode())
    assert erase_outbox_files(outbox, ONA) == 3
    assert sorted(p.name for p in outbox.iterdir()) == [
        ".g.eml.4242.0a1b2c3d.tmp",
        "b.eml",
        "c.eml",
        "d.eml",
    ]
    assert erase_outbox_files(tmp_path / "missing", ONA) == 0


def test_an_erased_persons_old_link_never_names_someone_added_later(
    database_url: str, tmp_path: Path
) -> None:
    """Links in mail already sent carry the subscriber id: an id is never given out twice."""
    from newsletter.audience.tokens import make_token, read_token
    from newsletter.models import Subscriber

    import_file(database_url, KEY, FIXTURES / "utf8_comma.csv", "savivaldybes")
    with db.transaction(database_url) as session:
        last = session.scalars(select(Subscriber).order_by(Subscriber.id.desc())).first()
        address, old_link = last.email, make_token(KEY, last.id, None)
    with db.transaction(database_url) as session:
        erase_subscriber(session, KEY, address)
    newcomer = tmp_path / "newcomer.csv"
    newcomer.write_text("email,name\nnaujokas@kaunas.example,Naujokas\n", encoding="utf-8")
    import_file(database_url, KEY, newcomer, "savivaldybes")
    subscriber_id, _ = read_token(KEY, old_link) or (0, None)
    with db.transaction(database_url) as session:
        assert session.get(Subscriber, subscriber_id) is None


def test_erasure_drops_list_files_waiting_for_their_confirmation(
    database_url: str, tmp_path: Path
) -> None:
    from datetime import timedelta

    from sqlalchemy import func

    from newsletter import users
    from newsletter.models import PendingUpload

    _two_people_with_mail(database_url, tmp_path)
    with db.transaction(database_url) as session:
        editor = users.create_user(session, "redaktore@example.lt", "ilgas slaptažodis 1")
        session.flush()
        session.add(
            PendingUpload(
                token="t" * 32,
                user_id=editor.id,
                file_name="savivaldybes.csv",
                sha256="0" * 64,
                content=f"email,name\n{ONA},Ona\n".encode(),
                request={"slug": "savivaldybes", "name": "", "sync": False},
                fingerprint="0" * 64,
                expires_at=datetime.now(UTC) + timedelta(minutes=30),
            )
        )
    with db.transaction(database_url) as session:
        erase_subscriber(session, KEY, ONA)
    with db.transaction(database_url) as session:
        assert session.scalar(select(func.count()).select_from(PendingUpload)) == 0
