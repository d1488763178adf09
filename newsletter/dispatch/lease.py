"""Which process sends a campaign without Redis: a lease on the campaign's row.

Without a broker each process that can send (``newsletter send`` and ``campaign
resume``, every web process, ``newsletter scheduler``) would otherwise send every
running campaign. Claims keep a row from going out twice, but two senders split the
campaign and each keeps its own rate limit, so ``NEWSLETTER_RATE`` would be exceeded.
So one process at a time sends a campaign: the one named in ``campaigns.lease_holder``
while ``lease_until`` lies ahead. The holder renews the lease from a thread of its own
every third of ``NEWSLETTER_LEASE_SECONDS`` (a slow SMTP reply does not lose it) and
gives it up when it stops. Another process takes it over once it has expired, or at
once when the holder was a process on this machine that no longer exists (the send
that stopped on an error, the web process killed). A holder that finds it lost the
lease (it could not renew it in time, and another took it) stops sending.

Celery workers take no lease: with Redis the reconciler hands rows out and the rate
limiter is shared through Redis.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from newsletter.db import transaction
from newsletter.dispatch import outbox
from newsletter.dispatch.messages import msg
from newsletter.errors import SendingElsewhereError
from newsletter.models import Campaign, OutboxRow, utcnow
from newsletter.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    """A process that may hold a lease: its host, its process id, and a random part.

    The random part tells apart two leases of one process and a new process that got
    the id of a dead one.
    """

    host: str
    pid: int
    token: str

    @classmethod
    def of_this_process(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), secrets.token_hex(4))

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """Read ``host/pid/token`` as stored; None for an empty or unreadable value."""
        parts = text.rsplit("/", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        host, pid, token = parts
        return cls(host, int(pid), token)

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.token}"

    def describe(self) -> str:
        """How a person would name it: ``process 1234 on host``."""
        return f"process {self.pid} on {self.host}"

    def is_gone(self) -> bool:
        """True when it was a process on this machine that no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False


def live_holder(session: Session, campaign_id: int, now: datetime | None = None) -> Holder | None:
    """The process holding the campaign's lease, if the lease holds and that process may live."""
    now = now or utcnow()
    found = session.execute(
        select(Campaign.lease_holder, Campaign.lease_until).where(Campaign.id == campaign_id)
    ).one_or_none()
    if found is None:
        return None
    holder, until = Holder.parse(found[0] or ""), outbox.aware(found[1])
    if holder is None or until is None or until <= now or holder.is_gone():
        return None
    return holder


def sending_elsewhere(settings: Settings, campaign_id: int) -> Holder | None:
    """The live process that sends the campaign, if one does."""
    with transaction(settings.database) as session:
        return live_holder(session, campaign_id)


def sent_elsewhere(campaign_id: int, holder: Holder | None) -> SendingElsewhereError:
    """The error that says who sends the campaign and how to follow it."""
    who = holder.describe() if holder is not None else "another process"
    return SendingElsewhereError(msg("campaign.sent_elsewhere", campaign_id=campaign_id, who=who))


class CampaignLease:
    """This process's lease on one campaign; a context manager that takes, renews, releases.

    ``lost`` is set when a renewal found that another process holds the lease now: the
    caller stops sending.
    """

    def __init__(self, settings: Settings, campaign_id: int) -> None:
        self.url = settings.database
        self.campaign_id = campaign_id
        self.seconds = settings.lease_seconds
        self.me = Holder.of_this_process()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self) -> None:
        """Take the lease; SendingElsewhereError when a live process holds it."""
        now = utcnow()
        # Read apart from the write: on SQLite a transaction that reads and then writes
        # fails at once ("database is locked") when another process wrote in between.
        with transaction(self.url) as session:
            seen = session.execute(
                select(Campaign.lease_holder).where(Campaign.id == self.campaign_id)
            ).scalar_one_or_none()
        previous = Holder.parse(seen or "")
        gone = previous is not None and previous.is_gone()
        with transaction(self.url) as session:
            free = or_(
                Campaign.lease_holder == "",
                Campaign.lease_until.is_(None),
                Campaign.lease_until < now,
                # Set only when the holder seen is dead: the update then takes it from
                # that one holder, and not from one that took it over meanwhile.
                Campaign.lease_holder == (seen if gone else str(self.me)),
            )
            taken = session.execute(
                update(Campaign)
                .where(Campaign.id == self.campaign_id, free)
                .values(lease_holder=str(self.me), lease_until=self._until(now))
            ).rowcount
            if taken and gone:
                _end_row_leases(session, self.campaign_id, now)
            holder = None if taken else live_holder(session, self.campaign_id, now)
        if not taken:
            raise sent_elsewhere(self.campaign_id, holder)

    def renew(self) -> bool:
        """Extend the lease; False when another process holds it now."""
        with transaction(self.url) as session:
            renewed = session.execute(
                update(Campaign)
                .where(Campaign.id == self.campaign_id, Campaign.lease_holder == str(self.me))
                .values(lease_until=self._until(utcnow()))
            ).rowcount
        return renewed == 1

    def release(self) -> None:
        """Give the lease up (if this process still holds it)."""
        with transaction(self.url) as session:
            session.execute(
                update(Campaign)
                .where(Campaign.id == self.campaign_id, Campaign.lease_holder == str(self.me))
                .values(lease_holder="", lease_until=None)
            )

    def _until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds)

    def _keep(self) -> None:
        """Renew every third of the lease until stopped or lost."""
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.renew():
                    log.warning(
                        "campaign %s: another process took over its sending", self.campaign_id
                    )
                    self.lost.set()
                    return
            except SQLAlchemyError as exc:  # the database is away: the sender waits too
                log.info("campaign %s: lease not renewed: %s", self.campaign_id, exc.orig)

    def hold(self) -> CampaignLease:
        """Take the lease and keep renewing it from a thread until ``let_go``."""
        self.take()
        self._thread = threading.Thread(
            target=self._keep, name=f"lease-{self.campaign_id}", daemon=True
        )
        self._thread.start()
        return self

    def let_go(self) -> None:
        """Stop renewing and release the lease (when the database lets us)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.release()
        except SQLAlchemyError as exc:
            # The database is away (why the send stopped, perhaps): the lease expires,
            # and a process on this machine takes it over at once, the holder being gone.
            log.info("campaign %s: lease not released: %s", self.campaign_id, exc.orig)

    def __enter__(self) -> CampaignLease:
        return self.hold()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.let_go()


def _end_row_leases(session: Session, campaign_id: int, now: datetime) -> None:
    """End the leases of rows a dead holder left ``sending``: the next pass requeues them.

    Their messages may have gone out (the holder died after the server's 250), so they
    are sent again as possible duplicates, now instead of when their leases run out.
    """
    session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.campaign_id == campaign_id,
            OutboxRow.state == outbox.SENDING,
            OutboxRow.lease_until > now,
        )
        .values(lease_until=now - timedelta(microseconds=1))
    )
