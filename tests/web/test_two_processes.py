"""Two web processes (uvicorn, ``newsletter web``) on one SQLite file, no Redis.

Each process's loop picks up running campaigns that nobody sends. Only the holder of a
campaign's lease sends it, so the two never send at once (the dashboard used to show
two rows ``sending`` at a time, and each process kept its own rate limit); when the
holder is killed with ``kill -9`` the other takes over and finishes the campaign.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import db
from newsletter.compose.issue import compile_file
from newsletter.dispatch import campaign, lease, sender
from newsletter.models import Campaign, OutboxRow
from newsletter.settings import Settings
from tests.conftest import ROOT
from tests.dispatch.support import add_people, recipients_of, rows, wait_until, worker_env
from tests.support.services import kill_group, port_open
from tests.support.smtp import SmtpSink, free_port

NEWSLETTER = Path(sys.executable).with_name("newsletter")
ISSUE = ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md"
PEOPLE = 150


class WebProcess:
    """``newsletter web`` in its own process group, on a free port."""

    def __init__(self, env: dict[str, str], folder: Path, name: str) -> None:
        self.port = free_port()
        self.log = folder / f"{name}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(NEWSLETTER), "web", "--port", str(self.port), "--no-reload-watch"],
                env=env,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self) -> None:
        wait_until(lambda: port_open("127.0.0.1", self.port), 30, self.tail)

    def kill(self) -> None:
        kill_group(self.process)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


class Watch:
    """Polls the database in a thread: the most rows ever ``sending`` at once, and the holders."""

    def __init__(self, url: str, campaign_id: int) -> None:
        self.url, self.campaign_id = url, campaign_id
        self.most_sending = 0
        self.holders: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            with db.transaction(self.url) as session:
                sending = session.scalar(
                    select(func.count()).where(
                        OutboxRow.campaign_id == self.campaign_id, OutboxRow.state == "sending"
                    )
                )
                holder = session.scalar(
                    select(Campaign.lease_holder).where(Campaign.id == self.campaign_id)
                )
            self.most_sending = max(self.most_sending, sending or 0)
            parsed = lease.Holder.parse(holder or "")
            if parsed is not None:
                self.holders.add(parsed.pid)
            time.sleep(0.005)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def two_webs(
    web_settings: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> Iterator[list[WebProcess]]:
    """Two web processes on the same SQLite file and SMTP sink, fast ticks and leases."""
    env = worker_env(
        web_settings.replace(smtp_url=smtp_sink.url),
        lease_seconds=5,
        tick_seconds=0.2,
        templates_dir=web_settings.templates_dir,
        sponsors_file=web_settings.sponsors_file,
        issues_dir=web_settings.issues_dir,
    )
    webs = [WebProcess(env, tmp_path, "web1"), WebProcess(env, tmp_path, "web2")]
    try:
        for web in webs:
            web.wait_ready()
        yield webs
    finally:
        for web in webs:
            web.kill()


def test_only_one_web_process_sends_a_campaign_and_the_other_takes_over(
    two_webs: list[WebProcess], web_settings: Settings, smtp_sink: SmtpSink
) -> None:
    url = web_settings.database
    add_people(url, PEOPLE)
    # Each message waits a little at the server, so the send lasts a few seconds and
    # both processes' loops see the campaign running.
    smtp_sink.handler.slow_seconds = 0.02
    smtp_sink.fail_next(*["slow"] * PEOPLE * 2)
    compiled = compile_file(ISSUE, web_settings)
    number = campaign.create(web_settings, compiled, ["savivaldybes"], {}).campaign_id
    with Watch(url, number) as watch:
        wait_until(lambda: len(smtp_sink.received) >= PEOPLE // 3, 60, two_webs[0].tail)
        holder = next(web for web in two_webs if web.pid in watch.holders)
        survivor = next(web for web in two_webs if web is not holder)
        assert watch.holders == {holder.pid}
        holder.kill()
        wait_until(
            lambda: campaign.progress(web_settings, number).status == "done",
            60,
            lambda: survivor.tail(),
        )
    # One process holds at most two claimed batches at a time; two sending at once, or the
    # survivor claiming while the killed one's batch was still counted, would show more.
    assert watch.most_sending <= sender.ROWS_HELD, "the two processes sent at the same time"
    assert watch.holders == {holder.pid, survivor.pid}, "the survivor took over"
    copies = recipients_of(smtp_sink.received)
    assert len(copies) == PEOPLE, "nobody skipped"
    twice = {address for address, count in copies.items() if count > 1}
    flagged = {row.email for row in rows(url, number) if row.uncertain_before}
    # The killed process's claimed batch is the most that can be in flight (README).
    assert twice <= flagged and len(flagged) <= sender.ROWS_HELD, "only the rows held"
