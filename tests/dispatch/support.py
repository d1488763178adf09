"""Helpers for the dispatch tests: people in a real database, Celery worker processes, waits."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import insert, select

from newsletter.db import transaction
from newsletter.dispatch import campaign
from newsletter.dispatch.outbox import Broker
from newsletter.models import MailingList, Membership, OutboxRow, Subscriber
from newsletter.settings import Settings
from tests.support.services import kill_group
from tests.support.smtp import Received, SinkHandler, SmtpSink

CELERY = Path(sys.executable).with_name("celery")


def add_people(
    url: str, count: int, lists: Sequence[str] = ("savivaldybes",), *, prefix: str = "asmuo"
) -> list[int]:
    """Insert ``count`` active subscribers on every list named (lists made when missing)."""
    with transaction(url) as session:
        list_ids = []
        for slug in lists:
            found = session.execute(
                select(MailingList.id).where(MailingList.slug == slug)
            ).scalar_one_or_none()
            if found is None:
                row = MailingList(slug=slug, name=slug)
                session.add(row)
                session.flush()
                found = row.id
            list_ids.append(found)
        people = [
            {
                "email": f"{prefix}{number:05d}@savivaldybe.example",
                "name": f"Vardenis Pavardenis {number}",
                "municipality": "Vilniaus m.",
                "role": "specialistas",
                "attributes": {},
                "status": "active",
                "bounce_count": 0,
            }
            for number in range(count)
        ]
        ids = list(session.execute(insert(Subscriber).returning(Subscriber.id), people).scalars())
        memberships = [
            {"subscriber_id": person, "list_id": list_id, "status": "active"}
            for person in ids
            for list_id in list_ids
        ]
        session.execute(insert(Membership), memberships)
    return ids


def rows(url: str, campaign_id: int) -> list[OutboxRow]:
    """Every outbox row of a campaign, by id."""
    with transaction(url) as session:
        found = session.execute(
            select(OutboxRow).where(OutboxRow.campaign_id == campaign_id).order_by(OutboxRow.id)
        ).scalars()
        return list(found)


def states(url: str, campaign_id: int) -> Counter[str]:
    """How many rows of the campaign are in each state."""
    return Counter(row.state for row in rows(url, campaign_id))


def status_of(settings: Settings, campaign_id: int) -> str:
    """The campaign's status."""
    return campaign.progress(settings, campaign_id).status


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    message: str | Callable[[], str],
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` until it holds; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"after {timeout:g} s: {text}")
        time.sleep(interval)


def recipients_of(received: Sequence[Received]) -> Counter[str]:
    """How many copies each address got."""
    return Counter(address for message in received for address in message.rcpt_tos)


def message_ids_by_address(received: Sequence[Received]) -> dict[str, list[str]]:
    """The Message-ID of every copy, per address."""
    found: dict[str, list[str]] = {}
    for message in received:
        ident = str(message.parsed()["Message-ID"])
        for address in message.rcpt_tos:
            found.setdefault(address, []).append(ident)
    return found


class EveryBatchTwice:
    """A broker that publishes each batch twice: two tasks, one set of rows."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner

    def publish(self, campaign_id: int, row_ids: list[int]) -> None:
        self.inner.publish(campaign_id, row_ids)
        self.inner.publish(campaign_id, row_ids)

    def backlog(self) -> int:
        return self.inner.backlog()


def worker_env(settings: Settings, **values: object) -> dict[str, str]:
    """The environment of a worker process: this machine's, minus any NEWSLETTER_*, plus ours."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("NEWSLETTER_")}
    fixed = {
        "DATA_DIR": settings.data_dir,
        "DATABASE_URL": settings.database,
        "REDIS_URL": settings.redis_url,
        "SMTP_URL": settings.smtp_url,
        "SECRET_KEY": settings.secret_key.reveal(),
        "BASE_URL": settings.base_url,
        "LEASE_SECONDS": settings.lease_seconds,
        "TICK_SECONDS": settings.tick_seconds,
        "RETRY_SECONDS": settings.retry_seconds,
        "SMTP_TIMEOUT": settings.smtp_timeout,
        "RATE": settings.rate,
        "MAX_ATTEMPTS": settings.max_attempts,
    }
    fixed.update({name.upper(): value for name, value in values.items()})
    env.update({f"NEWSLETTER_{name}": str(value) for name, value in fixed.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Worker:
    """A real ``celery worker`` process (prefork, one child) in its own process group."""

    def __init__(
        self,
        env: dict[str, str],
        folder: Path,
        name: str,
        *,
        beat: bool,
        command: Sequence[str] | None = None,
    ) -> None:
        self.env, self.folder, self.name, self.beat = env, folder, name, beat
        self.command = list(command) if command is not None else None
        self.log = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        """``celery -A newsletter.dispatch.tasks worker …``, or the command given instead."""
        if self.command is not None:
            return self.command
        argv = [
            str(CELERY), "-A", "newsletter.dispatch.tasks", "worker", "--pool=prefork",
            "--concurrency=1", "--queues=newsletter.send,newsletter.tick",
            f"--hostname={self.name}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel=INFO",
        ]  # fmt: skip
        if self.beat:
            argv += ["--beat", f"--schedule={self.folder / (self.name + '-beat')}"]
        return argv

    def start(self) -> Worker:
        """Start the worker (and its beat, if asked) and return at once."""
        self.starts += 1
        argv = self.argv()
        with open(self.log, "ab") as log:
            log.write(f"\n==== start {self.starts} ====\n".encode())
            self.process = subprocess.Popen(
                argv,
                env=self.env,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill -9 takes every child
            )
        return self

    def kill(self) -> None:
        """``kill -9`` the whole process group: main process, pool child and beat."""
        if self.process is None:
            return
        kill_group(self.process)
        self.process = None

    def stop(self) -> None:
        """End the worker for good; used in ``finally`` so nothing outlives the test."""
        self.kill()

    def tail(self, lines: int = 40) -> str:
        """The end of the worker's log, for failure messages."""
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def outcome_summary(url: str, campaign_id: int) -> str:
    """A short description of the campaign's rows, for failure messages."""
    found = states(url, campaign_id)
    return ", ".join(f"{state} {number}" for state, number in sorted(found.items()))


class KeepingHandler(SinkHandler):
    """A sink handler whose ``slow`` keeps the message even if the client hangs up.

    That is what a real server does once the data and its final dot arrived: the message
    is queued, and only the reply is late (RFC 1047). aiosmtpd cancels a handler whose
    client disconnected, so the shared sink would drop such a message instead.
    """

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        with self.lock:
            slow = bool(self.script) and self.script[0] == "slow"
            if slow:
                self.script.popleft()
                self.received.append(
                    Received(
                        envelope.mail_from,  # type: ignore[attr-defined]
                        list(envelope.rcpt_tos),  # type: ignore[attr-defined]
                        bytes(envelope.original_content or envelope.content),  # type: ignore[attr-defined]
                    )
                )
        if not slow:
            return await super().handle_DATA(server, session, envelope)  # type: ignore[arg-type]
        await asyncio.sleep(self.slow_seconds)
        return "250 2.0.0 OK queued"


def keeping_sink() -> SmtpSink:
    """An ``SmtpSink`` (not yet started) with the ``KeepingHandler``."""
    sink = SmtpSink()
    sink.handler = KeepingHandler()
    sink.controller.handler = sink.handler
    return sink
