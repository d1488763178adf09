"""Applying bounces and complaints that come back by mail: which row, which person, what policy.

A campaign is sent to a memory transport with VERP return paths; the fixture bounces of
``tests/delivery/fixtures/bounces`` are then addressed to those return paths (or quote the
Message-IDs) and read through ``bounces read``.
"""

from __future__ import annotations

import io
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter import db
from newsletter.cli.core import main
from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.delivery.mailbox import read_messages
from newsletter.delivery.transport import MemoryTransport
from newsletter.dispatch import bounces, campaign
from newsletter.dispatch.sender import Sender
from newsletter.errors import InputError
from newsletter.models import (
    BounceEvent,
    ConsentEvent,
    Membership,
    OutboxRow,
    Subscriber,
    Suppression,
    utcnow,
)
from newsletter.settings import Settings
from newsletter.web.campaigns import progress_data
from tests.delivery.test_bounce_reports import ORIGINAL, RETURN_PATH, fixture
from tests.dispatch.support import add_people, worker_env

BOUNCE_ADDRESS = "bounce@naujienos.example"
#: The recipient each fixture names.
NAMED = {
    "gmail.eml": "laima.laimaite.neegzistuoja@gmail.com",
    "exchange.eml": "jonas.jonaitis@vilnius.lt",
    "exim.eml": "ona.onaite@kaunas.lt",
    "qmail.eml": "petras.petraitis@siauliai.lt",
    "postfix_soft.eml": "vida.vidaite@utena.lt",
    "arf_complaint.eml": "rasa.rasaite@panevezys.lt",
    "out_of_office.eml": "rasa.rasaite@panevezys.lt",
}
UNRELATED = b"From: ona@kaunas.lt\nTo: bounce@naujienos.example\nSubject: klausimas\n\nKada?\n"


class Sent:
    """A campaign sent to six people on two lists, and each one's return path and Message-ID."""

    def __init__(self, settings: Settings, issue: CompiledIssue) -> None:
        self.settings = settings
        add_people(settings.database, 6, ("savivaldybes", "bibliotekos"))
        self.campaign_id = campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id
        transport = MemoryTransport()
        sender = Sender(settings, transport=transport)
        with transaction(settings.database) as session:
            ids = session.scalars(select(OutboxRow.id).order_by(OutboxRow.id)).all()
        sender.send_rows(list(ids))
        sender.close()
        self.emails = [rcpt for _, rcpt, _ in transport.sent]
        self.return_path = {rcpt: mail_from for mail_from, rcpt, _ in transport.sent}
        with transaction(settings.database) as session:
            self.message_id = dict(
                session.execute(select(OutboxRow.email, OutboxRow.message_id)).all()
            )

    def bounce(
        self, name: str, person: int, *, verp: bool = True, message_id: bool = True
    ) -> bytes:
        """The fixture, about person number ``person``'s message."""
        email = self.emails[person]
        raw = fixture(name).replace(NAMED[name].encode(), email.encode())
        raw = raw.replace(
            RETURN_PATH.encode(), (self.return_path[email] if verp else BOUNCE_ADDRESS).encode()
        )
        mid = self.message_id[email] if message_id else "<elsewhere@example.net>"
        return raw.replace(ORIGINAL.encode(), mid.encode())

    def status(self) -> dict[str, str]:
        with transaction(self.settings.database) as session:
            return dict(session.execute(select(Subscriber.email, Subscriber.status)).all())


@pytest.fixture
def sent_both(db_settings: Settings, issue: CompiledIssue) -> Sent:
    """The campaign on SQLite, and again on PostgreSQL."""
    return Sent(db_settings.replace(bounce_address=BOUNCE_ADDRESS), issue)


@pytest.fixture
def sent(settings: Settings, issue: CompiledIssue, tmp_path: Path) -> Iterator[Sent]:
    """The campaign on SQLite only."""
    url = f"sqlite:///{tmp_path / 'bounces.db'}"
    db.migrate(url)
    yield Sent(settings.replace(database_url=url, bounce_address=BOUNCE_ADDRESS), issue)
    db.dispose(url)


def mbox(path: Path, *messages: bytes) -> str:
    with open(path, "wb") as out:
        for message in messages:
            out.write(b"From MAILER-DAEMON Tue Dec  1 09:00:00 2026\n")
            out.write(message.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From "))
            out.write(b"\n")
    return str(path)


def test_each_bounce_shape_suppresses_exactly_the_person_whose_message_it_returns(
    sent_both: Sent, tmp_path: Path
) -> None:
    sent = sent_both
    shapes = ("gmail.eml", "exchange.eml", "exim.eml", "qmail.eml")
    messages = [sent.bounce(name, person) for person, name in enumerate(shapes)]
    messages += [sent.bounce("out_of_office.eml", 4), UNRELATED]
    tally = bounces.read_file(sent.settings, mbox(tmp_path / "in.mbox", *messages))
    assert (tally.read, tally.hard, tally.autoreply, tally.unmatched) == (6, 4, 1, 1), tally
    status = sent.status()
    assert [status[e] for e in sent.emails] == ["bounced"] * 4 + ["active"] * 2
    lines = {line.email: line for line in campaign.report(sent.settings, sent.campaign_id)}
    assert [lines[e].outcome for e in sent.emails] == ["bounced later"] * 4 + ["sent"] * 2
    assert (
        "5.1.1" in lines[sent.emails[0]].bounce and "does not exist" in lines[sent.emails[0]].bounce
    )
    assert "not recognized" in lines[sent.emails[1]].bounce
    assert "User unknown" in campaign.report_csv(list(lines.values()))
    now = campaign.progress(sent.settings, sent.campaign_id)
    assert progress_data(now)["counts"]["bounced_later"] == 4  # type: ignore[index]

    again = bounces.read_file(sent.settings, mbox(tmp_path / "again.mbox", *messages))
    assert (again.hard, again.duplicate) == (0, 4)
    with transaction(sent.settings.database) as session:
        assert set(session.scalars(select(Subscriber.bounce_count))) == {0, 1}


def test_without_a_valid_token_only_our_message_id_sent_to_that_very_address_counts(
    sent: Sent, tmp_path: Path
) -> None:
    by_message_id = sent.bounce("gmail.eml", 0, verp=False)
    other_address = sent.bounce("exim.eml", 1, verp=False).replace(
        sent.message_id[sent.emails[1]].encode(), sent.message_id[sent.emails[2]].encode()
    )  # the Message-ID of person 2's message, naming person 1
    forged = sent.bounce("exchange.eml", 3).replace(b"bounce+", b"bounce+x")  # no Message-ID
    foreign = sent.bounce("qmail.eml", 4, verp=False, message_id=False)
    path = mbox(tmp_path / "in.mbox", by_message_id, other_address, forged, foreign)
    tally = bounces.read_file(sent.settings, path)
    assert (tally.hard, tally.unmatched) == (1, 3)
    status = sent.status()
    assert [status[e] for e in sent.emails] == ["bounced"] + ["active"] * 5


def test_soft_bounces_suppress_at_their_own_threshold_within_the_window(
    sent: Sent, tmp_path: Path
) -> None:
    settings = sent.settings.replace(soft_bounce_threshold=2, soft_bounce_days=30)
    first = sent.bounce("postfix_soft.eml", 0)
    second = first.replace(b"9A3B21C0E6@relay", b"9A3B21C0F7@relay")  # a later DSN
    with transaction(settings.database) as session:  # one soft bounce, too long ago to count
        person = session.scalar(select(Subscriber.id).where(Subscriber.email == sent.emails[0]))
        session.add(BounceEvent(fingerprint="0" * 64, subscriber_id=person, kind="soft",
                                at=utcnow() - timedelta(days=40)))  # fmt: skip
    assert bounces.read_file(settings, mbox(tmp_path / "1.mbox", first)).soft == 1
    assert bounces.read_file(settings, mbox(tmp_path / "2.mbox", first)).duplicate == 1
    assert sent.status()[sent.emails[0]] == "active"
    assert bounces.read_file(settings, mbox(tmp_path / "3.mbox", second)).soft == 1
    status = sent.status()
    assert status[sent.emails[0]] == "bounced"
    assert sum(value == "bounced" for value in status.values()) == 1


def test_a_complaint_unsubscribes_from_every_list_with_a_consent_event(
    sent: Sent, tmp_path: Path
) -> None:
    tally = bounces.read_file(
        sent.settings, mbox(tmp_path / "in.mbox", sent.bounce("arf_complaint.eml", 2))
    )
    assert tally.complaint == 1
    email = sent.emails[2]
    with transaction(sent.settings.database) as session:
        person = session.scalar(select(Subscriber).where(Subscriber.email == email))
        assert person is not None and person.status == "unsubscribed"
        memberships = session.scalars(
            select(Membership.status).where(Membership.subscriber_id == person.id)
        )
        assert sorted(memberships) == ["unsubscribed", "unsubscribed"]  # both lists
        events = session.scalars(
            select(ConsentEvent.kind).where(ConsentEvent.subscriber_id == person.id)
        )
        assert "complaint" in list(events)
        reasons = list(session.scalars(select(Suppression.reason)))
    assert reasons == ["complaint"]
    lines = {line.email: line for line in campaign.report(sent.settings, sent.campaign_id)}
    assert lines[email].outcome == "complained" and "abuse" in lines[email].bounce
    assert sum(value != "active" for value in sent.status().values()) == 1


def test_bounces_read_takes_one_message_a_maildir_or_standard_input(
    sent: Sent,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in worker_env(sent.settings, bounce_address=BOUNCE_ADDRESS).items():
        monkeypatch.setenv(name, value)
    single = tmp_path / "one.eml"
    single.write_bytes(sent.bounce("gmail.eml", 0))
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.host").write_bytes(sent.bounce("exim.eml", 1))
    (maildir / "cur" / "2.host:2,S").write_bytes(sent.bounce("qmail.eml", 2))
    stdin = io.TextIOWrapper(io.BytesIO(sent.bounce("exchange.eml", 3)))
    outputs = []
    for source in (str(single), str(maildir), "-"):
        monkeypatch.setattr(sys, "stdin", stdin)
        assert main(["bounces", "read", source]) == 0
        outputs.append(" ".join(capsys.readouterr().out.split()))
    assert outputs[0].startswith("1 read: hard 1") and outputs[1].startswith("2 read: hard 2")
    assert outputs[2].startswith("1 read: hard 1")
    assert main(["bounces", "read", str(tmp_path / "missing.mbox")]) == InputError.exit_code
    error = capsys.readouterr().err
    assert "missing.mbox: cannot read it" in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1


def test_an_mbox_is_read_one_message_at_a_time(tmp_path: Path) -> None:
    message = fixture("gmail.eml")
    path = mbox(tmp_path / "big.mbox", *[message] * 1000)
    size = Path(path).stat().st_size
    tracemalloc.start()
    count = sum(1 for _ in read_messages(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 1000
    assert peak < size / 50  # about one message held at a time, not the whole file


def test_celery_beat_reads_the_bounce_mailbox_only_when_there_is_one(settings: Settings) -> None:
    from newsletter.dispatch.tasks import BOUNCES_TASK, TICK_QUEUE, make_app

    broker = settings.replace(redis_url="redis://127.0.0.1:1/0")  # never connected here
    without = make_app(broker)
    assert set(without.conf.beat_schedule) == {"tick"}
    mailbox = broker.replace(
        bounce_imap_url="imaps://u:p@mail.example/INBOX", bounce_fetch_seconds=120
    )
    app = make_app(mailbox)
    entry = app.conf.beat_schedule["bounces"]
    assert (entry["task"], entry["schedule"], entry["options"]["queue"]) == (
        BOUNCES_TASK,
        120,
        TICK_QUEUE,
    )
    assert BOUNCES_TASK in app.tasks


def test_erasure_scrubs_the_address_from_a_bounce_diagnostic(sent: Sent, tmp_path: Path) -> None:
    from newsletter.audience.subscribers import erase_subscriber

    email = sent.emails[2]
    bounces.read_file(sent.settings, mbox(tmp_path / "in.mbox", sent.bounce("exim.eml", 2)))
    with transaction(sent.settings.database) as session:
        detail = session.scalar(select(OutboxRow.bounce_detail).where(OutboxRow.email == email))
        assert detail is not None and email in detail  # Exim quotes the address
        erase_subscriber(session, sent.settings.key(), email)
    with transaction(sent.settings.database) as session:
        details = list(session.scalars(select(OutboxRow.bounce_detail)))
    assert all(email not in d for d in details) and any("User unknown" in d for d in details)


def test_the_dashboard_counts_the_messages_that_bounced_later_in_both_languages(
    sent: Sent, tmp_path: Path
) -> None:
    from lxml import html as lxml_html
    from starlette.testclient import TestClient

    from newsletter import users
    from newsletter.web import create_app
    from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD, log_in

    bounces.read_file(sent.settings, mbox(tmp_path / "in.mbox", sent.bounce("qmail.eml", 0)))
    with transaction(sent.settings.database) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
    app = create_app(sent.settings, watch=False)
    labels = {}
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        log_in(client)
        for lang in ("lt", "en"):
            page = client.get(f"/editor/campaigns/{sent.campaign_id}?lang={lang}")
            cell = lxml_html.fromstring(page.text).get_element_by_id("count-bounced_later")
            labels[lang] = (cell.getprevious().text_content(), cell.text_content())
        report = client.get(f"/editor/campaigns/{sent.campaign_id}/report.csv").text
    assert labels == {"lt": ("Grįžo vėliau", "1"), "en": ("Bounced later", "1")}
    assert "bounced later" in report and "User unknown" in report
