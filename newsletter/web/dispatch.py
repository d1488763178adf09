"""Getting campaigns started from the web: in this process, or handed to the workers.

With no Redis (the embedded default) nothing else is running, so the web process sends
itself: each started campaign runs ``embedded.run_campaign`` in a thread of its own, and
a small loop starts scheduled campaigns when their time comes and picks up running ones
that no live process sends (after a restart, or when another web process on the same
database stopped). One thread per campaign keeps the configured rate: each sender has
its own rate limiter when embedded, and the campaign's lease lets only one process
send it (``newsletter.dispatch.lease``). With Redis, the web only
hands the campaign's rows to the broker at once (``campaign.tick``); the workers send
and the scheduler handles the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from sqlalchemy import select

from newsletter.db import database_errors, transaction
from newsletter.dispatch import campaign, lease
from newsletter.errors import NewsletterError, SendingElsewhereError
from newsletter.models import Campaign
from newsletter.settings import Settings

log = logging.getLogger(__name__)


class Dispatcher:
    """Starts sending campaigns for the web app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, campaign_id: int) -> None:
        """Begin sending a running campaign; a no-op when it is being sent already."""
        if not self.settings.embedded:
            self._hand_to_workers()
            return
        with self._lock:
            running = self._threads.get(campaign_id)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(
                target=self._run, args=(campaign_id,), name=f"campaign-{campaign_id}", daemon=True
            )
            self._threads[campaign_id] = thread
            thread.start()

    def run_now(self, campaign_id: int, timeout: float | None = None) -> None:
        """Send the campaign and wait until its sending stops (a test send, embedded)."""
        self.start(campaign_id)
        thread = self._threads.get(campaign_id)
        if thread is not None:
            thread.join(timeout)

    def is_sending(self, campaign_id: int) -> bool:
        """True while this process sends the campaign."""
        thread = self._threads.get(campaign_id)
        return thread is not None and thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for every sending thread (tests, and an orderly stop)."""
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def _run(self, campaign_id: int) -> None:
        from newsletter.dispatch.embedded import run_campaign

        try:
            run_campaign(self.settings, campaign_id, notice=log.warning)
        except SendingElsewhereError as exc:
            log.info("campaign %s not sent here: %s", campaign_id, exc)
        except NewsletterError as exc:
            log.warning("campaign %s stopped: %s", campaign_id, exc)
        except Exception:
            log.exception("campaign %s stopped by an unexpected error", campaign_id)

    def _hand_to_workers(self) -> None:
        from newsletter.dispatch.tasks import CeleryBroker, app_for

        campaign.tick(self.settings, CeleryBroker(app_for(self.settings)))

    def start_due(self) -> list[int]:
        """Start scheduled campaigns whose time has come, and send every running one.

        Embedded only. A running campaign no live process sends is one a process was
        sending when it stopped (or one resumed elsewhere): its unfinished rows go out now.
        One that another process sends is left to it.
        """
        with database_errors(self.settings.database):
            campaign.start_due(self.settings)
            with transaction(self.settings.database) as session:
                running = list(
                    session.scalars(select(Campaign.id).where(Campaign.status == "running"))
                )
                started = [
                    campaign_id
                    for campaign_id in running
                    if not self.is_sending(campaign_id)
                    and lease.live_holder(session, campaign_id) is None
                ]
        for campaign_id in started:
            self.start(campaign_id)
        return started

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """While the app runs embedded, start scheduled campaigns when they are due."""
        if not self.settings.embedded:
            yield
            return
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._schedule_loop)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()

    async def _schedule_loop(self) -> None:
        while True:
            try:
                await anyio.to_thread.run_sync(self.start_due)
            except NewsletterError as exc:
                log.warning("starting scheduled campaigns failed: %s", exc)
            await anyio.sleep(self.settings.tick_seconds)
