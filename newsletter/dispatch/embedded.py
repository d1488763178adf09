"""The in-process runner: the same tick and send functions the Celery tasks call, in one loop.

With no ``NEWSLETTER_REDIS_URL`` there is no broker and no worker: ``newsletter send``
runs the campaign here, through the same outbox rows, claims, leases and state machine,
and the periodic tick is a loop. A queue in memory stands in for Redis; losing it (the
process stops) loses nothing, since the next run hands out every unfinished row again.
One process at a time sends a campaign: the holder of its lease (``lease``). When the
database stops answering, the send waits for it, for a while, instead of failing.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from newsletter.db import database_errors, transaction
from newsletter.dispatch import bounces, campaign, outbox
from newsletter.dispatch.lease import CampaignLease
from newsletter.dispatch.sender import Outcome, Sender
from newsletter.errors import (
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnavailableError,
    SendingElsewhereError,
)
from newsletter.models import Campaign, utcnow
from newsletter.settings import Settings

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
Notice = Callable[[str], None]
# Waits between tries while the database does not answer: 0.5 s, doubling, at most 5 s.
FIRST_OUTAGE_PAUSE = 0.5
MAX_OUTAGE_PAUSE = 5.0


class LocalBroker:
    """A queue of ``(campaign_id, row_ids)`` in this process."""

    def __init__(self) -> None:
        self.tasks: deque[tuple[int, list[int]]] = deque()

    def publish(self, campaign_id: int, row_ids: list[int]) -> None:
        """Queue one batch."""
        self.tasks.append((campaign_id, row_ids))

    def backlog(self) -> int:
        """Batches not yet run."""
        return len(self.tasks)


def run_campaign(
    settings: Settings,
    campaign_id: int,
    *,
    sender: Sender | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    sleep: Sleep = time.sleep,
    notice: Notice | None = None,
) -> campaign.Progress:
    """Send a running campaign to the end (or until it is paused or cancelled); return its progress.

    Holds the campaign's lease while it sends (``SendingElsewhereError`` when a live
    process holds it; it returns early if another process takes the lease over). Waits,
    when only retries or leases are pending, until the earliest of them is due. A lost
    database connection or a lock not granted is retried for up to
    ``settings.database_retry_seconds``, told to ``notice``; then, as for a full disk,
    the ``DatabaseError`` is raised with the advice to resume the campaign.
    """
    own = sender or Sender(settings)
    try:
        with CampaignLease(settings, campaign_id) as held:
            return _send_until_done(settings, campaign_id, own, held, on_outcome, sleep, notice)
    finally:
        if sender is None:
            own.close()


def _send_until_done(
    settings: Settings,
    campaign_id: int,
    sender: Sender,
    held: CampaignLease,
    on_outcome: Callable[[Outcome], None] | None,
    sleep: Sleep,
    notice: Notice | None,
) -> campaign.Progress:
    """The loop of ``run_campaign``: rounds of sending, and waits for the database."""
    outage = Outage(settings.database_retry_seconds, campaign_id, sleep, notice or log.warning)

    def recorded(outcome: Outcome) -> None:
        outage.over()  # an outcome was committed: the database answers
        if on_outcome is not None:
            on_outcome(outcome)

    while True:
        try:
            with database_errors(settings.database):
                now = _send_round(settings, campaign_id, sender, held, recorded)
                if now.status == "running" and not held.lost.is_set():
                    sleep(_wait_seconds(settings, campaign_id))
        except (DatabaseUnavailableError, DatabaseBusyError) as exc:
            outage.wait(exc)
            continue
        except DatabaseError as exc:
            raise exc.instead(outage.resume_advice) from exc
        outage.over()
        if now.status != "running" or held.lost.is_set():
            return now


def _send_round(
    settings: Settings,
    campaign_id: int,
    sender: Sender,
    held: CampaignLease,
    on_outcome: Callable[[Outcome], None],
) -> campaign.Progress:
    """Hand out the campaign's unfinished rows and send them; return where it stands."""
    broker = LocalBroker()
    # Nothing else hands out this campaign's rows while this process holds its lease:
    # anything marked as handed out but not done was lost with an earlier process.
    campaign.tick(settings, broker, stale_after=0, campaign_id=campaign_id)
    while broker.tasks and not held.lost.is_set():
        _, row_ids = broker.tasks.popleft()
        sender.send_rows(row_ids, on_outcome=on_outcome)
    return campaign.progress(settings, campaign_id)


class Outage:
    """A bounded wait for the database to answer again, with a notice when it starts and ends.

    Waits 0.5 s, then twice as long each time up to ``MAX_OUTAGE_PAUSE``, until
    ``bound`` seconds have passed since the first failure; then gives up. The sender
    keeps the outcome it could not write and writes it with its next transaction (fenced
    by the attempt), so a send interrupted and continued here sends nobody twice.
    """

    def __init__(self, bound: float, campaign_id: int, sleep: Sleep, notice: Notice) -> None:
        self.bound = bound
        self.resume_advice = (
            f"`newsletter campaign resume {campaign_id}` continues campaign {campaign_id}"
        )
        self.sleep = sleep
        self.notice = notice
        self.started: float | None = None
        self.pause = FIRST_OUTAGE_PAUSE

    def wait(self, exc: DatabaseError) -> None:
        """Wait a little before the next try, or raise ``exc`` once the bound has passed."""
        now = time.monotonic()
        if self.started is None:
            self.started = now
            self.notice(f"{exc.what}; trying again for up to {self.bound:g} s")
        waited = now - self.started
        if waited >= self.bound:
            raise type(exc)(
                f"{exc.what}; gave up after {waited:.0f} s", exc.fix, self.resume_advice
            ) from exc
        self.sleep(min(self.pause, self.bound - waited))
        self.pause = min(self.pause * 2, MAX_OUTAGE_PAUSE)

    def over(self) -> None:
        """The database answered: say so if it had not, and start afresh."""
        if self.started is not None:
            self.notice(f"the database answers again after {time.monotonic() - self.started:.0f} s")
        self.started = None
        self.pause = FIRST_OUTAGE_PAUSE


def _wait_seconds(settings: Settings, campaign_id: int) -> float:
    """Seconds until a waiting row of the campaign can be worked on (at most one tick)."""
    with transaction(settings.database) as session:
        wake: datetime | None = outbox.next_wake(session, campaign_id)
    if wake is None:
        return min(0.2, settings.tick_seconds)
    return max(0.05, min(settings.tick_seconds, (wake - utcnow()).total_seconds()))


def serve(settings: Settings, *, sleep: Sleep = time.sleep, rounds: int | None = None) -> None:
    """The scheduler without Redis: every tick, start due campaigns and send their rows here.

    Only campaigns whose lease this process holds, or can take, are sent: a web process
    or ``newsletter send`` may be sending another one.
    """
    sender = Sender(settings)
    leases: dict[int, CampaignLease] = {}
    next_fetch = 0.0  # the bounce mailbox, every NEWSLETTER_BOUNCE_FETCH_SECONDS
    try:
        done = 0
        while rounds is None or done < rounds:
            if settings.bounce_imap_url and time.monotonic() >= next_fetch:
                bounces.scheduled_fetch(settings)
                next_fetch = time.monotonic() + settings.bounce_fetch_seconds
            campaign.start_due(settings)
            for campaign_id in _held(settings, leases):
                broker = LocalBroker()
                campaign.tick(settings, broker, stale_after=0, campaign_id=campaign_id)
                while broker.tasks:
                    _, row_ids = broker.tasks.popleft()
                    sender.send_rows(row_ids)
            done += 1
            sleep(settings.tick_seconds)
    finally:
        for held in leases.values():
            held.let_go()
        sender.close()


def _held(settings: Settings, leases: dict[int, CampaignLease]) -> list[int]:
    """The running campaigns this process holds the lease of, taking free ones; drops the rest."""
    with transaction(settings.database) as session:
        running = set(session.scalars(select(Campaign.id).where(Campaign.status == "running")))
    for campaign_id in [c for c, held in leases.items() if c not in running or held.lost.is_set()]:
        leases.pop(campaign_id).let_go()
    for campaign_id in sorted(running - leases.keys()):
        try:
            leases[campaign_id] = CampaignLease(settings, campaign_id).hold()
        except SendingElsewhereError:
            continue
    return sorted(leases)
