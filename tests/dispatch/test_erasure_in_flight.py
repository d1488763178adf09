"""Erasure while one of the person's messages is in a sender's hands.

The SMTP sink holds the RCPT TO of the person being erased, so their row is ``sending``
when ``newsletter subscribers erase`` runs (as a separate process, the way an operator
runs it); the sink then accepts the message with a reply that quotes the address. The
database is read raw afterwards: the SQLite file with its WAL, or ``pg_dump``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from newsletter.audience.subscribers import ErasureReport, erase_person
from newsletter.compose.render import CompiledIssue
from newsletter.delivery.transport import DirectoryTransport
from newsletter.dispatch import campaign, overlap
from newsletter.dispatch.embedded import run_campaign
from newsletter.dispatch.sender import Sender
from newsletter.models import utcnow
from newsletter.settings import Settings
from tests.dispatch.conftest import WorkerFactory
from tests.dispatch.support import (
    add_people,
    outcome_summary,
    recipients_of,
    rows,
    status_of,
    wait_until,
    worker_env,
)
from tests.support.services import RedisServer, unavailable
from tests.support.smtp import SmtpSink

NEWSLETTER = Path(sys.executable).with_name("newsletter")
PEOPLE = 3
# The last recipient, so the sender has nothing else to do while the erasure finishes.
ERASED = f"asmuo{PEOPLE - 1:05d}@savivaldybe.example"
KEPT = "asmuo00000@savivaldybe.example"

StartSender = Callable[[Settings, int], Callable[[], None]]


def raw_database(url: str) -> bytes:
    """Every byte the database holds: the SQLite file and its WAL, or a ``pg_dump``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = Path(parsed.database or "")
        files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
        return b"".join(p.read_bytes() for p in files)
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        unavailable("pg_dump is not installed (Debian package postgresql-client)")
    plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    dump = subprocess.run(
        [str(pg_dump), "--data-only", "--no-owner", plain], capture_output=True, check=True
    )
    return dump.stdout


def erase_while_in_flight(
    settings: Settings,
    issue: CompiledIssue,
    sink: SmtpSink,
    start_sender: StartSender,
    *,
    answer_after_erasure: bool = True,
) -> tuple[int, str]:
    """Stall the person's RCPT, erase them from another process, then let the server accept.

    The server answers as soon as the erasure has changed the outbox, or, with
    ``answer_after_erasure=False``, only once the erase command has given up waiting.
    Returns the campaign and the command's output, once the campaign is done and the
    sender stopped.
    """
    add_people(settings.database, PEOPLE)
    sink.handler.accept_reply = "250 2.0.0 OK queued for <{rcpt}>"
    stall = sink.stall_rcpt(ERASED)
    running = campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id
    later = utcnow() + timedelta(days=1)
    # A second, scheduled campaign of the same issue: its queued row is stopped, not sent.
    campaign.create(settings, issue, ["savivaldybes"], {}, send_at=later, repeat=overlap.AGAIN)
    stop = start_sender(settings, running)
    try:
        assert stall.reached.wait(60), "the sender never reached the person's RCPT TO"
        (in_flight,) = [r for r in rows(settings.database, running) if r.email == ERASED]
        assert in_flight.state == "sending"
        erase = subprocess.Popen(
            [str(NEWSLETTER), "subscribers", "erase", ERASED.upper(), "--yes"],
            env={**worker_env(settings), "COLUMNS": "300"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: rows(settings.database, running)[-1].email.startswith("erased:"),
                30,
                "the erasure never reached the outbox",
            )
            if not answer_after_erasure:
                erase.wait(timeout=120)
        finally:
            stall.release()  # the server now takes the message and quotes the address
        output, _ = erase.communicate(timeout=120)
        assert erase.returncode == 0, output.decode()
        wait_until(
            lambda: status_of(settings, running) == "done",
            60,
            lambda: outcome_summary(settings.database, running),
        )
    finally:
        stop()
    assert recipients_of(sink.received)[ERASED] == 1, "the message in flight was delivered once"
    return running, output.decode()


def assert_erased_everywhere(settings: Settings, campaign_id: int) -> None:
    """No byte of the database holds the address; the reply in the row is scrubbed."""
    row = rows(settings.database, campaign_id)[-1]
    assert (row.state, row.email[:7], row.subscriber_id) == ("sent", "erased:", None)
    assert row.smtp_reply == "250 2.0.0 OK queued for <[erased]>"
    raw = raw_database(settings.database).lower()
    assert KEPT.encode() in raw, "the raw read sees the other recipients' addresses"
    assert ERASED.encode() not in raw


def in_this_process(settings: Settings, campaign_id: int) -> Callable[[], None]:
    """Send the campaign in a thread of this process, as ``newsletter send`` does embedded."""
    sending = threading.Thread(target=run_campaign, args=(settings, campaign_id), daemon=True)
    sending.start()
    return lambda: sending.join(60)


def test_an_embedded_send_in_flight_is_waited_for_and_its_reply_scrubbed(
    fast: Settings, issue: CompiledIssue, smtp_sink: SmtpSink
) -> None:
    settings = fast.replace(smtp_url=smtp_sink.url)
    campaign_id, output = erase_while_in_flight(settings, issue, smtp_sink, in_this_process)
    assert_erased_everywhere(settings, campaign_id)
    said = " ".join(output.split())
    assert f"1 message is being sent to {ERASED}; waiting (at most 5 s)" in said, output
    assert "2 outbox rows anonymised: 1 sent, 1 stopped before sending" in said, output
    assert "waited for 1 message already being sent when the erasure began: 1 sent" in said


def test_a_send_that_outlasts_the_wait_still_stores_no_address(
    fast: Settings, issue: CompiledIssue, smtp_sink: SmtpSink
) -> None:
    """The command gives up after a lease; the outcome written later is scrubbed all the same."""
    settings = fast.replace(smtp_url=smtp_sink.url)
    campaign_id, output = erase_while_in_flight(
        settings, issue, smtp_sink, in_this_process, answer_after_erasure=False
    )
    assert_erased_everywhere(settings, campaign_id)
    said = " ".join(output.split())
    assert "2 outbox rows anonymised: 1 stopped before sending, 1 still being sent" in said
    assert "the mail server may still receive it: its outcome will be kept without" in said


@pytest.fixture
def worker_settings(
    request: pytest.FixtureRequest, redis_server: RedisServer, smtp_sink: SmtpSink
) -> Iterator[Settings]:
    """Fast settings for a Celery worker on SQLite, then PostgreSQL."""
    base: Settings = request.getfixturevalue(request.param)
    yield base.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url)


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize(
    "worker_settings",
    ["sqlite_fast", pytest.param("postgres_fast", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_a_celery_worker_in_flight_is_waited_for_and_its_reply_scrubbed(
    worker_settings: Settings,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    start_worker: WorkerFactory,
) -> None:
    def in_a_worker(settings: Settings, campaign_id: int) -> Callable[[], None]:
        worker = start_worker(settings)
        return worker.stop

    campaign_id, output = erase_while_in_flight(worker_settings, issue, smtp_sink, in_a_worker)
    assert_erased_everywhere(worker_settings, campaign_id)
    said = " ".join(output.split())
    assert "waited for 1 message already being sent when the erasure began: 1 sent" in said


class SlowDisk(DirectoryTransport):
    """The folder transport on a disk that takes its time: each write waits for ``go``."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.writing, self.go = threading.Event(), threading.Event()

    def send(self, mail_from: str, recipient: str, data: bytes) -> str:
        self.writing.set()
        assert self.go.wait(60), "the test never let the write go on"
        return super().send(mail_from, recipient, data)


def test_an_eml_file_written_after_the_erasure_began_is_removed(
    fast: Settings, issue: CompiledIssue
) -> None:
    add_people(fast.database, 2)
    campaign_id = campaign.create(fast, issue, ["savivaldybes"], {}).campaign_id
    kept, erased = rows(fast.database, campaign_id)
    disk = SlowDisk(fast.outbox)
    sender = Sender(fast, transport=disk)
    sending = threading.Thread(target=sender.send_rows, args=([erased.id, kept.id],))
    sending.start()
    reports: list[ErasureReport] = []
    try:
        assert disk.writing.wait(60), "the sender never reached the transport"
        erasing = threading.Thread(
            target=lambda: reports.append(
                erase_person(fast.database, fast.key(), erased.email, fast.outbox, wait_seconds=60)
            )
        )
        erasing.start()
        wait_until(
            lambda: rows(fast.database, campaign_id)[1].email.startswith("erased:"),
            30,
            "the erasure never reached the outbox",
        )
    finally:
        disk.go.set()
    erasing.join(60)
    sending.join(60)
    sender.close()
    (report,) = reports
    assert (report.files, report.in_flight) == (1, {"sent": 1})
    left = [path.read_bytes() for path in fast.outbox.iterdir()]
    assert len(left) == 1 and kept.email.encode() in left[0], "only the other person's file stays"
