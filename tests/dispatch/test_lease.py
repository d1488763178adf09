"""One process at a time sends a campaign without Redis: the lease on its row, and resume.

The lease itself on SQLite and PostgreSQL; then real ``newsletter send`` processes: one
that is alive keeps its campaign (``resume`` names it), one killed with ``kill -9``
leaves a campaign ``running`` that ``resume`` picks up at once.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.dispatch import campaign, embedded, lease
from newsletter.dispatch.sender import ROWS_HELD, Outcome
from newsletter.errors import SendingElsewhereError
from newsletter.models import Campaign, utcnow
from newsletter.settings import Settings
from tests.conftest import ROOT
from tests.dispatch.support import add_people, recipients_of, rows, states, wait_until, worker_env
from tests.support.smtp import SmtpSink

NEWSLETTER = Path(sys.executable).with_name("newsletter")
ISSUE = str(ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md")


def _running(settings: Settings, issue: CompiledIssue, people: int) -> int:
    add_people(settings.database, people)
    return campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id


def _expire(settings: Settings, campaign_id: int) -> None:
    with transaction(settings.database) as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )


def test_one_lease_at_a_time_taken_over_when_it_expires(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _running(fast, issue, 2)
    first, second = lease.CampaignLease(fast, campaign_id), lease.CampaignLease(fast, campaign_id)
    first.take()
    with pytest.raises(SendingElsewhereError) as refused:
        second.take()
    here = socket.gethostname()
    assert f"is being sent by process {os.getpid()} on {here}" in str(refused.value)
    assert first.renew()
    _expire(fast, campaign_id)
    second.take()  # an expired lease is free
    assert not first.renew(), "the first holder learns it lost the lease"
    second.release()
    with transaction(fast.database) as session:
        assert lease.live_holder(session, campaign_id) is None


def test_the_lease_of_a_process_that_no_longer_exists_is_free_at_once(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _running(fast, issue, 2)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = lease.Holder(socket.gethostname(), gone.pid, "0000")
    with transaction(fast.database) as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(lease_holder=str(dead), lease_until=utcnow() + timedelta(hours=1))
        )
        assert lease.live_holder(session, campaign_id) is None
    taken = lease.CampaignLease(fast, campaign_id)
    taken.take()
    assert taken.renew()


def test_a_campaign_sent_elsewhere_is_left_alone(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _running(fast, issue, 3)
    other = lease.CampaignLease(fast, campaign_id)
    other.take()
    with pytest.raises(SendingElsewhereError):
        embedded.run_campaign(fast, campaign_id)
    embedded.serve(fast, sleep=lambda _: None, rounds=2)
    assert states(fast.database, campaign_id) == {"queued": 3}, "nobody here sent it"
    with pytest.raises(SendingElsewhereError):
        campaign.resume(fast, campaign_id)
    other.release()
    embedded.serve(fast, sleep=lambda _: None, rounds=2)
    assert states(fast.database, campaign_id) == {"sent": 3}
    with transaction(fast.database) as session:
        assert lease.live_holder(session, campaign_id) is None, "serve let the lease go"


def test_a_sender_that_lost_its_lease_stops(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _running(fast, issue, 150)
    taken_over: list[lease.CampaignLease] = []

    def slowly(_: Outcome) -> None:
        # After the first message another process takes the lease over (as if this
        # one had not renewed it in time); the sender notices at its next renewal.
        if not taken_over:
            _expire(fast, campaign_id)
            taken_over.append(lease.CampaignLease(fast, campaign_id))
            taken_over[0].take()
        time.sleep(0.05)

    stopped = embedded.run_campaign(fast, campaign_id, on_outcome=slowly)
    assert stopped.status == "running"
    sent = states(fast.database, campaign_id)["sent"]
    assert 1 <= sent <= 100, "it stopped after the batch in hand"
    with transaction(fast.database) as session:
        assert lease.live_holder(session, campaign_id) == taken_over[0].me


# Real processes --------------------------------------------------------------------------


def _env(settings: Settings, sink: SmtpSink, **values: object) -> dict[str, str]:
    return worker_env(
        settings.replace(smtp_url=sink.url),
        templates_dir=settings.templates_dir,
        sponsors_file=settings.sponsors_file,
        issues_dir=settings.issues_dir,
        **values,
    )


def test_resume_refuses_a_live_send_and_picks_up_a_killed_one(
    sqlite_fast: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    people = 200
    add_people(sqlite_fast.database, people)
    slow = _env(sqlite_fast, smtp_sink, rate=10)
    sending = subprocess.Popen(
        [str(NEWSLETTER), "send", ISSUE, "--list", "savivaldybes"],
        env=slow,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        smtp_sink.wait_for(20, 60)
        with transaction(sqlite_fast.database) as session:
            number = session.query(Campaign.id).scalar()
        resume = [str(NEWSLETTER), "campaign", "resume", str(number)]
        fast = _env(sqlite_fast, smtp_sink)
        refused = subprocess.run(resume, env=fast, cwd=tmp_path, capture_output=True, text=True)
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr == (
            f"error: campaign {number} is being sent by process {sending.pid} on "
            f"{socket.gethostname()}; follow it with "
            f"`newsletter campaign status {number} --follow`\n"
        )
        status = [str(NEWSLETTER), "campaign", "status", str(number)]
        shown = subprocess.run(status, env=fast, cwd=tmp_path, capture_output=True, text=True)
        assert f"being sent by process {sending.pid} on {socket.gethostname()}" in shown.stdout
        os.kill(sending.pid, signal.SIGKILL)
        sending.wait(10)
    finally:
        if sending.poll() is None:
            sending.kill()
        sending.communicate()
    assert len(smtp_sink.received) < people, "killed mid-send"
    assert campaign.progress(sqlite_fast, number).status == "running"
    shown = subprocess.run(status, env=fast, cwd=tmp_path, capture_output=True, text=True)
    assert (
        f"no process is sending it; `newsletter campaign resume {number}` continues it"
        in shown.stdout
    )

    resumed = subprocess.run(resume, env=fast, cwd=tmp_path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(rf"campaign {number} done: sent {people}\b", resumed.stdout), resumed.stdout
    copies = recipients_of(smtp_sink.received)
    assert len(copies) == people, "nobody skipped"
    twice = {address for address, count in copies.items() if count > 1}
    # The rows held when the process died may have gone out twice: then the
    # report says so.
    flagged = {row.email for row in rows(sqlite_fast.database, number) if row.uncertain_before}
    assert twice <= flagged and len(flagged) <= ROWS_HELD


def test_resume_sends_a_running_campaign_that_nobody_sends(
    sqlite_fast: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A running campaign no process holds (its sender stopped) used to need pause first."""
    add_people(sqlite_fast.database, 5)
    settings = sqlite_fast.replace(smtp_url=smtp_sink.url)
    from newsletter.compose.issue import compile_file

    compiled = compile_file(Path(ISSUE), settings)
    number = campaign.create(settings, compiled, ["savivaldybes"], {}).campaign_id
    resumed = subprocess.run(
        [str(NEWSLETTER), "campaign", "resume", str(number)],
        env=_env(sqlite_fast, smtp_sink),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"campaign {number} is running again" in resumed.stdout
    wait_until(lambda: len(smtp_sink.received) == 5, 10, "all five delivered")
    assert states(sqlite_fast.database, number) == {"sent": 5}
