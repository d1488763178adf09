"""The in-process runner: the same tick and send functions the Celery tasks call, in one loop.

With no ``NEWSLETTER_REDIS_URL`` there is no broker and no worker: ``newsletter send``
runs the campaign here, through the same outbox rows, claims, leases and state machine,
and the periodic tick is a loop. A queue in memory stands in for Redis; losing it (the
process stops) loses nothing, since the next run hands out every unfinished row again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

from newsletter.db import transaction
from newsletter.dispatch import campaign, outbox
from newsletter.dispatch.sender import Outcome, Sender
from newsletter.models import utcnow
from newsletter.settings import Settings

Sleep = Callable[[float], None]


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
) -> campaign.Progress:
    """Send a running campaign to the end (or until it is paused or cancelled); return its progress.

    Waits, when only retries or leases are pending, until the earliest of them is due.
    """
    own = sender or Sender(settings)
    broker = LocalBroker()
    try:
        while True:
            # Nothing else hands out this campaign's rows in embedded mode: anything
            # marked as handed out but not done was lost with an earlier process.
            campaign.tick(settings, broker, stale_after=0, campaign_id=campaign_id)
            while broker.tasks:
                _, row_ids = broker.tasks.popleft()
                own.send_rows(row_ids, on_outcome=on_outcome)
            now = campaign.progress(settings, campaign_id)
            if now.status != "running":
                return now
            sleep(_wait_seconds(settings, campaign_id))
    finally:
        if sender is None:
            own.close()


def _wait_seconds(settings: Settings, campaign_id: int) -> float:
    """Seconds until a waiting row of the campaign can be worked on (at most one tick)."""
    with transaction(settings.database) as session:
        wake: datetime | None = outbox.next_wake(session, campaign_id)
    if wake is None:
        return min(0.2, settings.tick_seconds)
    return max(0.05, min(settings.tick_seconds, (wake - utcnow()).total_seconds()))


def serve(settings: Settings, *, sleep: Sleep = time.sleep, rounds: int | None = None) -> None:
    """The scheduler without Redis: every tick, start due campaigns and send their rows here."""
    sender = Sender(settings)
    broker = LocalBroker()
    try:
        done = 0
        while rounds is None or done < rounds:
            campaign.tick(settings, broker, stale_after=0)
            while broker.tasks:
                _, row_ids = broker.tasks.popleft()
                sender.send_rows(row_ids)
            done += 1
            sleep(settings.tick_seconds)
    finally:
        sender.close()
