"""Bounces for real: a campaign goes through Postfix, Postfix itself bounces the recipients its
next hop refuses to the VERP return path, the DSNs land in Dovecot, and ``newsletter bounces
fetch`` suppresses exactly those recipients and no one else.

Postfix and Dovecot are started once for the module, each with a throwaway configuration
(``tests/support/mailservers.py``); the next hop is an aiosmtpd sink on loopback that
answers 550 for some addresses and keeps the rest, the DSNs included, which are then
delivered into Dovecot by IMAP APPEND, as a local delivery agent would.
"""

from __future__ import annotations

import email
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter import db
from newsletter.cli.core import main
from newsletter.compose.render import CompiledIssue
from newsletter.dispatch import campaign
from newsletter.dispatch.sender import Sender
from newsletter.models import OutboxRow, Subscriber, Suppression
from newsletter.settings import Settings
from tests.delivery.test_bounce_reports import fixture
from tests.dispatch.support import add_people, wait_until, worker_env
from tests.support.mailservers import Dovecot, PostfixRelay
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.slow

BOUNCE_ADDRESS = "bounce@naujienos.example"
PEOPLE = 6
REFUSED = (1, 4)  # asmuo00001 (pipelined path) and asmuo00004 (one command at a time)
UNRELATED = (
    b"From: ona@kaunas.lt\r\nTo: bounce@naujienos.example\r\nSubject: klausimas\r\n\r\nKada?\r\n"
)


def address(number: int) -> str:
    return f"asmuo{number:05d}@savivaldybe.example"


class MailLab:
    """The next hop, Postfix relaying to it, and Dovecot holding the bounce mailbox."""

    def __init__(self) -> None:
        self.next_hop = SmtpSink()
        for number in REFUSED:
            self.next_hop.refuse_rcpt(
                address(number),
                f"550 5.1.1 <{address(number)}>: Recipient address rejected: User unknown",
            )
        self.next_hop.__enter__()
        self.postfix: PostfixRelay | None = None
        self.dovecot: Dovecot | None = None

    def start(self) -> MailLab:
        self.postfix = PostfixRelay(self.next_hop.port).start()
        self.dovecot = Dovecot().start()
        return self

    def stop(self) -> None:
        for server in (self.postfix, self.dovecot):
            if server is not None:
                server.stop()
        self.next_hop.__exit__()


@pytest.fixture(scope="module")
def lab() -> Iterator[MailLab]:
    mail_lab = MailLab()
    try:
        yield mail_lab.start()
    finally:
        mail_lab.stop()


Command = Callable[..., str]


@pytest.fixture
def newsletter(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Command:
    """Run ``newsletter ARGS…`` in this process with the settings' environment; its output."""

    def run(settings: Settings, *args: str) -> str:
        values = {
            "bounce_address": settings.bounce_address,
            "bounce_imap_url": settings.bounce_imap_url,
        }
        for name, value in worker_env(settings, **values).items():
            monkeypatch.setenv(name, value)
        code = main(list(args))
        out, err = capsys.readouterr()
        assert code == 0, out + err
        return " ".join(out.split())

    return run


def test_postfix_dsns_fetched_from_dovecot_suppress_exactly_the_refused_recipients(
    lab: MailLab, settings: Settings, issue: CompiledIssue, tmp_path: Path, newsletter: Command
) -> None:
    assert lab.postfix is not None and lab.dovecot is not None
    url = f"sqlite:///{tmp_path / 'bounces.db'}"
    db.migrate(url)
    settings = settings.replace(
        database_url=url,
        bounce_address=BOUNCE_ADDRESS,
        bounce_imap_url=lab.dovecot.imap_url,
        allow_insecure_base_url=True,
    )
    add_people(url, PEOPLE)
    campaign_id = campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id
    row_ids = [row.id for row in _rows(url, campaign_id)]
    halves = (row_ids[:3], row_ids[3:])
    for pipelining, part in zip((True, False), halves, strict=True):  # both SMTP paths
        sender = Sender(settings.replace(smtp_url=lab.postfix.url(pipelining)))
        try:
            sender.send_rows(part)
        finally:
            sender.close()
    assert {row.state for row in _rows(url, campaign_id)} == {"sent"}  # Postfix took all

    # Postfix delivers four and mails a DSN for each of the two its next hop refused.
    wait_until(
        lambda: len(lab.next_hop.received) >= PEOPLE,
        timeout=60,
        message=lambda: f"Postfix delivered {lab.next_hop.received!r}; log: {_log_tail(lab)}",
    )
    dsns = [r for r in lab.next_hop.received if r.rcpt_tos[0].startswith("bounce+")]
    assert len(dsns) == len(REFUSED) and {r.mail_from for r in dsns} == {"<>"}
    delivered = {r.rcpt_tos[0] for r in lab.next_hop.received} - {r.rcpt_tos[0] for r in dsns}
    assert delivered == {address(n) for n in range(PEOPLE) if n not in REFUSED}
    for dsn in dsns:
        parsed = email.message_from_bytes(dsn.data)
        kinds = [part.get_content_type() for part in parsed.walk()]
        assert "message/delivery-status" in kinds
        assert "text/rfc822-headers" in kinds and "message/rfc822" not in kinds  # RET=HDRS
        lab.dovecot.append(dsn.data)
    lab.dovecot.append(fixture("out_of_office.eml"))
    lab.dovecot.append(UNRELATED)

    output = newsletter(settings, "bounces", "fetch")
    assert "4 read: hard 2" in output and "autoreply 1" in output and "unmatched 1" in output

    with db.transaction(url) as session:
        status = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
        suppressed = session.scalar(select(Suppression.id).where(Suppression.reason == "bounced"))
        bounced_rows = {
            row.email: (row.bounce_kind, row.bounce_detail)
            for row in session.scalars(select(OutboxRow).where(OutboxRow.bounced_at.is_not(None)))
        }
    assert status == {address(n): "bounced" if n in REFUSED else "active" for n in range(PEOPLE)}
    assert suppressed is not None
    assert set(bounced_rows) == {address(n) for n in REFUSED}
    assert all(kind == "hard" and "5.1.1" in detail for kind, detail in bounced_rows.values())
    assert len(lab.dovecot.messages("INBOX")) == 0
    assert len(lab.dovecot.messages("INBOX.processed")) == 3
    assert lab.dovecot.messages("INBOX.unmatched") == [UNRELATED]

    # The report and the CSV say which came back, and why.
    lines = {line.email: line for line in campaign.report(settings, campaign_id)}
    assert {e for e, line in lines.items() if line.outcome == "bounced later"} == set(bounced_rows)
    assert "5.1.1" in lines[address(REFUSED[0])].bounce
    assert "bounced later" in campaign.report_csv(list(lines.values()))

    # The same DSNs delivered again count once; the mailbox is filed away again.
    for dsn in dsns:
        lab.dovecot.append(dsn.data)
    assert "2 read: hard 0" in newsletter(settings, "bounces", "fetch")
    assert "duplicate 4" in newsletter(settings, "bounces", "read", _processed_mbox(lab, tmp_path))
    with db.transaction(url) as session:
        counts = set(session.scalars(select(Subscriber.bounce_count)))
    assert counts == {0, 1}


def _rows(url: str, campaign_id: int) -> list[OutboxRow]:
    with db.transaction(url) as session:
        query = select(OutboxRow).where(OutboxRow.campaign_id == campaign_id).order_by(OutboxRow.id)
        return list(session.scalars(query))


def _processed_mbox(lab: MailLab, folder: Path) -> str:
    """The DSNs filed in INBOX.processed, written out as an mbox for ``bounces read``."""
    assert lab.dovecot is not None
    path = folder / "processed.mbox"
    with open(path, "wb") as mbox:
        for message in lab.dovecot.messages("INBOX.processed"):
            if b"delivery-status" in message:
                mbox.write(b"From MAILER-DAEMON Tue Dec  1 09:00:00 2026\n")
                mbox.write(message.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From "))
                mbox.write(b"\n")
    return str(path)


def _log_tail(lab: MailLab) -> str:
    assert lab.postfix is not None
    log = lab.postfix.log
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def test_the_scheduler_reads_the_mailbox_and_a_mailbox_it_cannot_use_is_one_line(
    lab: MailLab,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from newsletter.dispatch.embedded import serve
    from newsletter.errors import ConfigError, MailboxError
    from tests.support.smtp import free_port

    assert lab.dovecot is not None
    url = f"sqlite:///{tmp_path / 'scheduler.db'}"
    db.migrate(url)
    settings = settings.replace(
        database_url=url, bounce_address=BOUNCE_ADDRESS, bounce_imap_url=lab.dovecot.imap_url
    )
    stray = fixture("exim.eml")  # a bounce of a message this database never sent
    lab.dovecot.append(stray)
    serve(settings, sleep=lambda _: None, rounds=1)
    assert lab.dovecot.messages("INBOX") == []
    assert stray.replace(b"\n", b"\r\n") in lab.dovecot.messages("INBOX.unmatched")

    wrong_password = lab.dovecot.imap_url.replace(Dovecot.password, "neteisingas")
    closed = f"imap://bounces:x@127.0.0.1:{free_port()}/INBOX"
    for imap_url, code, words in (
        (wrong_password, ConfigError.exit_code, "refused the login"),
        (closed, MailboxError.exit_code, "cannot reach the IMAP server"),
    ):
        values = {"bounce_imap_url": imap_url}
        for name, value in worker_env(settings, **values).items():
            monkeypatch.setenv(name, value)
        assert main(["bounces", "fetch"]) == code
        error = capsys.readouterr().err.strip()
        assert words in error and len(error.splitlines()) == 1 and "neteisingas" not in error


def test_without_move_a_message_is_copied_then_only_its_own_uid_expunged(lab: MailLab) -> None:
    from newsletter.delivery.mailbox import PROCESSED, ImapMailbox

    assert lab.dovecot is not None
    lab.dovecot.append(UNRELATED)
    lab.dovecot.append(fixture("qmail.eml"))
    with ImapMailbox(lab.dovecot.imap_url, timeout=10) as mailbox:
        mailbox._can_move = False  # as on a server without RFC 6851
        first = mailbox.uids()[0]
        mailbox.move(first, PROCESSED)
        assert len(mailbox.uids()) == 1
    assert UNRELATED in lab.dovecot.messages("INBOX.processed")
    left = lab.dovecot.messages("INBOX")
    assert len(left) == 1 and b"qmail-send" in left[0]
