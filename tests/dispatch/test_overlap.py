"""Sending an issue again: who counts as having it, and two sends at once, in two processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import text, update

from newsletter import db
from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.dispatch import campaign, outbox, overlap
from newsletter.errors import AlreadySentError, StateError
from newsletter.models import Campaign, OutboxRow, utcnow
from newsletter.settings import Settings
from tests.conftest import ROOT
from tests.dispatch.conftest import ISSUE
from tests.dispatch.support import add_people, rows, wait_until, worker_env

LISTS = ["savivaldybes"]


def _set_states(url: str, campaign_id: int, wanted: list[str]) -> list[str]:
    """Give the campaign's rows these states, in id order; return their addresses."""
    found = rows(url, campaign_id)
    with transaction(url) as session:
        for row, state in zip(found, wanted, strict=True):
            session.execute(update(OutboxRow).where(OutboxRow.id == row.id).values(state=state))
    return [row.email for row in found]


def test_who_counts_as_already_reached(db_settings: Settings, issue: CompiledIssue) -> None:
    add_people(db_settings.database, 8)
    first = campaign.create(db_settings, issue, LISTS, {}).campaign_id
    _set_states(
        db_settings.database,
        first,
        ["sent", "uncertain", "sending", "failed", "suppressed", "cancelled", "queued", "queued"],
    )

    def found() -> overlap.Audience:
        return overlap.audience(db_settings, issue, LISTS, {})

    running = found()
    assert (running.recipients, running.already, running.new) == (8, 5, 3)
    assert running.earlier == (overlap.Earlier(first, "running", 5),)
    campaign.pause(db_settings, first)
    assert found().earlier == (overlap.Earlier(first, "paused", 5),), "paused may be resumed"
    campaign.cancel(db_settings, first)
    cancelled = found()
    assert (cancelled.already, cancelled.new) == (3, 5), "only what went out, or may have"
    with pytest.raises(AlreadySentError, match=rf"campaign {first} \(cancelled\) already covers 3"):
        campaign.create(db_settings, issue, LISTS, {})

    second = campaign.create(db_settings, issue, LISTS, {}, repeat=overlap.ONLY_NEW)
    assert second.recipients == 5
    everyone = Counter(
        row.email
        for other in (first, second.campaign_id)
        for row in rows(db_settings.database, other)
        if row.state not in ("failed", "suppressed", "cancelled")
    )
    assert set(everyone.values()) == {1} and len(everyone) == 8


def test_a_test_copy_and_another_issue_do_not_count(
    db_settings: Settings, issue: CompiledIssue
) -> None:
    add_people(db_settings.database, 2)
    campaign.create_test(db_settings, issue, "asmuo00000@savivaldybe.example")
    other = CompiledIssue.from_dict({**issue.to_dict(), "slug": "kitas", "text": "Kitas."})
    campaign.create(db_settings, other, LISTS, {})
    found = overlap.audience(db_settings, issue, LISTS, {})
    assert (found.recipients, found.already) == (2, 0)
    assert campaign.create(db_settings, issue, LISTS, {}).recipients == 2


def test_a_scheduled_campaign_leaves_out_whom_a_later_one_reached(
    db_settings: Settings, issue: CompiledIssue
) -> None:
    url = db_settings.database
    add_people(url, 3)
    later = campaign.create(db_settings, issue, LISTS, {}, send_at=utcnow() + timedelta(days=1))
    add_people(url, 2, prefix="naujas")  # they join after it was made
    now = campaign.create(db_settings, issue, LISTS, {}, repeat=overlap.ONLY_NEW)
    assert (later.recipients, now.recipients) == (3, 2)
    with transaction(url) as session:
        session.execute(
            update(Campaign).where(Campaign.id == later.campaign_id).values(send_at=utcnow())
        )
    assert campaign.start_due(db_settings) == [later.campaign_id]
    holders = Counter(
        row.email for other in (later.campaign_id, now.campaign_id) for row in rows(url, other)
    )
    assert len(holders) == 5 and set(holders.values()) == {1}, holders


def _due_at(url: str, campaign_id: int, moment: datetime) -> None:
    with transaction(url) as session:
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(send_at=moment))


def test_nothing_of_an_issue_is_created_while_one_of_it_is_being_prepared_or_started(
    db_settings: Settings, issue: CompiledIssue
) -> None:
    url = db_settings.database
    add_people(url, 2)
    later = campaign.create(db_settings, issue, LISTS, {}, send_at=utcnow() + timedelta(days=1))
    with transaction(url) as session:  # as a send interrupted while it materialised leaves it
        draft = Campaign(
            issue_slug=issue.slug,
            subject=issue.subject,
            compiled=issue.to_dict(),
            content_hash=overlap.fingerprint(issue),
            lists={"slugs": LISTS, "ids": [], "where": {}},
            status="draft",
        )
        session.add(draft)
        session.flush()
        draft_id = draft.id
    for repeat in (overlap.ONLY_NEW, overlap.AGAIN):
        with pytest.raises(
            StateError, match=f"campaign {draft_id} of this issue is being prepared"
        ):
            campaign.create(db_settings, issue, LISTS, {}, repeat=repeat)
    _due_at(url, later.campaign_id, utcnow() - timedelta(seconds=1))
    assert campaign.start_due(db_settings) == [], "whom the draft reaches is not known yet"
    campaign.cancel(db_settings, draft_id)

    overdue = rf"campaign {later.campaign_id} of this issue is to start at .*scheduler` running"
    with pytest.raises(StateError, match=overdue):
        campaign.create(db_settings, issue, LISTS, {}, repeat=overlap.AGAIN)
    _due_at(url, later.campaign_id, utcnow() + timedelta(seconds=30))
    with pytest.raises(StateError, match=f"campaign {later.campaign_id} of this issue is to start"):
        campaign.create(db_settings, issue, LISTS, {}, repeat=overlap.AGAIN)
    _due_at(url, later.campaign_id, utcnow() - timedelta(seconds=1))
    assert campaign.start_due(db_settings) == [later.campaign_id]
    assert campaign.create(db_settings, issue, LISTS, {}, repeat=overlap.AGAIN).recipients == 2


# Two sends at once, in two processes -----------------------------------------------------


@contextmanager
def writes_held(url: str) -> Iterator[None]:
    """Hold back every write to the campaigns table (reads go on) until the block ends.

    SQLite: the database's write lock. PostgreSQL: an EXCLUSIVE lock on the table, which
    lets plain SELECTs through.
    """
    engine = db.engine_for(url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
            connection.exec_driver_sql("LOCK TABLE campaigns IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.exec_driver_sql("ROLLBACK")


def _waiting_for_a_lock(url: str, processes: list[subprocess.Popen[bytes]]) -> int:
    """How many of the processes wait for a database lock."""
    if db.engine_for(url).dialect.name == "postgresql":
        with db.engine_for(url).connect() as connection:
            return connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
    database = url.removeprefix("sqlite:///")
    # SQLite's busy handler sleeps between tries for the write lock.
    return sum(
        1
        for process in processes
        if _holds_open(process.pid, database)
        and "nanosleep" in Path(f"/proc/{process.pid}/wchan").read_text()
    )


def _holds_open(pid: int, path: str) -> bool:
    folder = Path(f"/proc/{pid}/fd")
    return any(os.path.realpath(fd) == os.path.realpath(path) for fd in folder.iterdir())


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux /proc")
def test_two_sends_started_at_once_give_each_person_one_copy(
    db_settings: Settings, tmp_path: Path
) -> None:
    url = db_settings.database
    add_people(url, 20)
    env = worker_env(
        db_settings,
        templates_dir=db_settings.templates_dir,
        sponsors_file=db_settings.sponsors_file,
    )
    argv = [
        sys.executable,
        "-m",
        "newsletter",
        "send",
        str(ROOT / "issues" / ISSUE),
        "-l",
        LISTS[0],
    ]
    with writes_held(url):
        processes = [
            subprocess.Popen(
                argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(2)
        ]
        # Both have counted who already has the issue (nobody) and wait to write.
        wait_until(
            lambda: (
                _waiting_for_a_lock(url, processes) == 2
                or any(p.poll() is not None for p in processes)
            ),
            60,
            "both sends to wait for the database",
            interval=0.1,
        )
        assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
    results = [(p.wait(60), *(part.decode() for part in p.communicate())) for p in processes]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    (_, out, _), (_, _, refused) = sorted(results, key=lambda result: result[0])
    sent = int(out.split(":", 1)[0].removeprefix("campaign "))
    assert refused.count("\n") == 1 and f"campaign {sent} " in refused, refused
    assert [p.campaign_id for p in campaign.all_campaigns(db_settings)] == [sent]
    files = sorted((db_settings.data_dir / "outbox").glob("*.eml"))
    addresses = Counter(
        message_from_bytes(path.read_bytes(), policy=policy.default)["To"].addresses[0].addr_spec
        for path in files
    )
    assert len(addresses) == 20 and set(addresses.values()) == {1}
    assert {row.state for row in rows(url, sent)} == {outbox.SENT}
