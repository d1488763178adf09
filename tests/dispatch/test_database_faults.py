"""The database fails under a running ``newsletter send``: killed, or out of disk.

Real faults from outside, through the real command in its own process: a private
PostgreSQL server (never the shared one) killed with ``kill -9`` mid-send and started
again, and a SQLite file on a small tmpfs that fills up. Every delivery is counted at a
real SMTP sink. A send waits for a restarted server and sends nobody twice; one that
gives up, or finds the disk full, says so in one line with a distinct exit code, leaves
the database consistent, and ``campaign resume`` finishes it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from newsletter import db
from newsletter.dispatch import campaign
from newsletter.dispatch.sender import ROWS_HELD
from newsletter.settings import Settings
from tests.conftest import ROOT
from tests.dispatch.support import add_people, recipients_of, rows, states, worker_env
from tests.support.disk import fill, free_bytes, small_disk
from tests.support.services import PrivatePostgres
from tests.support.smtp import SmtpSink

NEWSLETTER = Path(sys.executable).with_name("newsletter")
ISSUE = str(ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md")
PEOPLE = 400


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own, with a migrated database ``newsletter``."""
    server = PrivatePostgres().start()
    url = server.create_database("newsletter")
    try:
        db.migrate(url)
        yield server
    finally:
        db.dispose(url)
        server.stop()


def environment(
    settings: Settings, database_url: str, sink: SmtpSink, **values: object
) -> dict[str, str]:
    """The environment of a ``newsletter`` process: this database, this sink, short leases."""
    return worker_env(
        settings.replace(database_url=database_url, smtp_url=sink.url),
        lease_seconds=5,
        tick_seconds=0.2,
        retry_seconds=0.3,
        templates_dir=settings.templates_dir,
        sponsors_file=settings.sponsors_file,
        issues_dir=settings.issues_dir,
        **values,
    )


def newsletter(env: dict[str, str], folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``newsletter ARGS…`` to its end; its output as text."""
    return subprocess.run(
        [str(NEWSLETTER), *args], env=env, cwd=folder, capture_output=True, text=True, timeout=300
    )


def start_send(env: dict[str, str], folder: Path) -> subprocess.Popen[str]:
    """Start ``newsletter send`` of the sample issue to the list, without waiting."""
    return subprocess.Popen(
        [str(NEWSLETTER), "send", ISSUE, "--list", "savivaldybes"],
        env=env,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def campaign_of(out: str) -> int:
    found = re.search(r"^campaign (\d+): ", out, re.MULTILINE)
    assert found, out
    return int(found.group(1))


def assert_one_line(err: str) -> None:
    """Standard error is exactly one line, an error, with no traceback."""
    assert "Traceback" not in err, err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def doubles(sink: SmtpSink) -> set[str]:
    """Addresses the sink received more than one copy for."""
    return {address for address, copies in recipients_of(sink.received).items() if copies > 1}


def reported_uncertain(settings: Settings, campaign_id: int) -> set[str]:
    return {
        line.email
        for line in campaign.report(settings, campaign_id)
        if line.outcome.startswith("uncertain")
    }


# PostgreSQL killed ---------------------------------------------------------------------


def test_a_send_waits_for_a_restarted_postgresql_and_sends_nobody_twice(
    private_postgres: PrivatePostgres, settings: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    url = private_postgres.url("newsletter")
    add_people(url, PEOPLE)
    env = environment(settings, url, smtp_sink)
    sending = start_send(env, tmp_path)
    smtp_sink.wait_for(100, 60)
    private_postgres.kill()
    killed_at = len(smtp_sink.received)
    restart = threading.Timer(2.0, private_postgres.start)
    restart.start()
    try:
        out, err = sending.communicate(timeout=240)
    finally:
        restart.join()
    assert sending.returncode == 0, err
    assert killed_at < PEOPLE, "the server was killed after the send"
    assert "the database is unavailable" in out and "trying again for up to 60 s" in out
    assert "the database answers again" in out
    assert "Traceback" not in err, err
    assert len(recipients_of(smtp_sink.received)) == PEOPLE
    assert doubles(smtp_sink) == set(), "nobody is sent a second copy"
    number = campaign_of(out)
    assert states(url, number) == {"sent": PEOPLE}
    assert campaign.progress(settings.replace(database_url=url), number).status == "done"


def test_a_send_that_gives_up_says_so_in_one_line_and_resume_finishes_it(
    private_postgres: PrivatePostgres, settings: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    url = private_postgres.url("newsletter")
    add_people(url, PEOPLE)
    env = environment(settings, url, smtp_sink, database_retry_seconds=2)
    sending = start_send(env, tmp_path)
    smtp_sink.wait_for(100, 60)
    private_postgres.kill()
    out, err = sending.communicate(timeout=120)
    number = campaign_of(out)
    assert sending.returncode == 75, err
    assert_one_line(err)
    assert "error: the database is unavailable (" in err and "gave up after 2 s" in err
    assert f"then `newsletter campaign resume {number}` continues campaign {number}" in err
    before = len(smtp_sink.received)
    assert before < PEOPLE

    private_postgres.start()
    resumed = newsletter(env, tmp_path, "campaign", "resume", str(number))
    assert resumed.returncode == 0, resumed.stderr
    assert f"campaign {number} done" in resumed.stdout
    on_url = settings.replace(database_url=url)
    assert len(recipients_of(smtp_sink.received)) == PEOPLE, "nobody skipped"
    # Only the rows held when the process gave up can have gone out twice, and
    # what did, the report says so.
    assert doubles(smtp_sink) <= reported_uncertain(on_url, number)
    assert len(doubles(smtp_sink)) <= ROWS_HELD
    assert campaign.progress(on_url, number).status == "done"


# SQLite on a full disk -----------------------------------------------------------------


@pytest.fixture
def small_sqlite(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A migrated SQLite file alone on an 8 MB tmpfs; yields (folder, URL)."""
    with small_disk(tmp_path / "small", 8 * 1024) as folder:
        url = f"sqlite:///{folder / 'newsletter.db'}"
        db.migrate(url)
        try:
            yield folder, url
        finally:
            db.dispose(url)


def consistent(url: str) -> bool:
    """SQLite's own check of the file finds nothing wrong."""
    engine = create_engine(url)
    with engine.connect() as connection:
        verdict = connection.exec_driver_sql("PRAGMA integrity_check").scalar()
    engine.dispose()
    return verdict == "ok"


def test_a_disk_that_fills_mid_send_gives_one_line_and_resume_finishes(
    small_sqlite: tuple[Path, str], settings: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    folder, url = small_sqlite
    add_people(url, PEOPLE)
    db.dispose(url)
    env = environment(settings, url, smtp_sink)
    sending = start_send(env, tmp_path)
    smtp_sink.wait_for(100, 60)
    filler = fill(folder)
    out, err = sending.communicate(timeout=120)
    number = campaign_of(out)
    assert sending.returncode == 74, err
    assert_one_line(err)
    assert "error: the disk holding the database is full (database or disk is full)" in err
    assert f"free space beside {folder / 'newsletter.db'}: it needs at least" in err
    assert f"then `newsletter campaign resume {number}` continues campaign {number}" in err

    filler.unlink()
    assert consistent(url)
    on_url = settings.replace(database_url=url)
    # Every message the sink holds is recorded as sent, but the one in flight.
    delivered = set(recipients_of(smtp_sink.received))
    recorded = {row.email for row in rows(url, number) if row.state == "sent"}
    assert recorded <= delivered and len(delivered - recorded) <= ROWS_HELD

    resumed = newsletter(env, tmp_path, "campaign", "resume", str(number))
    assert resumed.returncode == 0, resumed.stderr
    assert len(recipients_of(smtp_sink.received)) == PEOPLE, "nobody skipped"
    assert doubles(smtp_sink) <= reported_uncertain(on_url, number)
    assert campaign.progress(on_url, number).status == "done"
    assert consistent(url)


def test_an_import_on_a_full_disk_gives_one_line_and_changes_nothing(
    small_sqlite: tuple[Path, str], settings: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    folder, url = small_sqlite
    people = tmp_path / "people.csv"
    lines = ["email,name,municipality"] + [
        f"asmuo{n:05d}@savivaldybe.example,Vardenis Pavardenis {n},Vilniaus m." for n in range(3000)
    ]
    people.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = environment(settings, url, smtp_sink)
    filler = fill(folder, leave=64 * 1024)
    imported = newsletter(env, tmp_path, "subscribers", "import", str(people), "--list", "visi")
    assert imported.returncode == 74, imported.stderr
    assert_one_line(imported.stderr)
    assert "the disk holding the database is full" in imported.stderr
    assert "then run the command again" in imported.stderr
    filler.unlink()
    assert consistent(url)
    listed = newsletter(env, tmp_path, "lists")
    assert "visi" not in listed.stdout, "an import that failed leaves no list behind"
    again = newsletter(env, tmp_path, "subscribers", "import", str(people), "--list", "visi")
    assert again.returncode == 0, again.stderr
    assert re.search(r"added\s+3000\b", again.stdout), again.stdout


def test_a_disk_with_a_few_megabytes_free_finishes_a_campaign(
    small_sqlite: tuple[Path, str], settings: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The write-ahead log used to grow to 4 MB over 400 recipients before it was reset."""
    folder, url = small_sqlite
    add_people(url, PEOPLE)
    db.dispose(url)
    fill(folder, leave=3 * 1024 * 1024)
    assert free_bytes(folder) < 4 * 1024 * 1024
    env = environment(settings, url, smtp_sink)
    sent = newsletter(env, tmp_path, "send", ISSUE, "--list", "savivaldybes")
    assert sent.returncode == 0, sent.stderr
    assert len(recipients_of(smtp_sink.received)) == PEOPLE
    assert states(url, campaign_of(sent.stdout)) == {"sent": PEOPLE}
