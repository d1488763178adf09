"""Send outbox rows: the plain function behind the Celery task and the in-process runner.

Without a rate limit, rows go in batches of ``CLAIM_BATCH``: one transaction writes the
previous batch's outcomes, claims the batch (``queued → sending`` with a lease, one
conditional UPDATE … RETURNING that leaves out rows done or held elsewhere) and checks
that each recipient may still receive mail (two SELECTs); then each message is built
(one ``MessageFactory`` per campaign per process) and handed to the transport, and its
outcome, fenced by the attempt number, waits for the next batch's transaction (and is
always written before ``send_rows`` returns). That transaction runs on a second
connection, in a thread, while the batch before it is being sent, so the database's
round trips and its commit wait overlap the SMTP dialogue instead of adding to it.

With a rate limit, one row at a time: re-read it and skip it if it is done or not due,
wait for a token, then claim and check it, so a lease is never spent waiting for a token.

The window in which a crash leaves a message accepted but not recorded is therefore
``ROWS_HELD`` rows per worker process (two batches: the one being sent and the one
claimed meanwhile; one row when rate limited): those rows stay ``sending`` and are
reported as possible duplicates once their lease ends. An unsubscribe or erasure
committed before a batch's claim is honoured for every row of it; one committed after
the claim (a batch's sending time earlier than the send, a few milliseconds) can miss
that batch's rows, and an erasure reports them as in flight.

The campaign is paused, with the reason, when the server refuses our own setup (login,
sender) or when ``SILENT_SERVER_TIMEOUTS`` sends in a row got no answer at all.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from newsletter.audience.subscribers import (
    is_suppressed,
    receiving,
    receiving_many,
    record_bounce,
)
from newsletter.audience.tokens import make_token, preferences_url, unsubscribe_url, view_url
from newsletter.compose.render import CompiledIssue
from newsletter.db import database_error, engine_for
from newsletter.delivery.message import MessageFactory, Recipient
from newsletter.delivery.transport import Transport, transport_for
from newsletter.dispatch import outbox
from newsletter.dispatch.ratelimit import NoLimit, RateLimiter, limiter_for
from newsletter.errors import (
    DeliveryConfigError,
    DeliveryError,
    NewsletterError,
    PermanentDeliveryError,
    UncertainDeliveryError,
)
from newsletter.models import Campaign
from newsletter.settings import Settings

log = logging.getLogger(__name__)

SKIPPED = "skipped"
# Rows claimed, checked and recorded per transaction when no rate limit applies.
CLAIM_BATCH = 10
# The most rows one sender holds ``sending`` at once: the batch going to the server and
# the next one, claimed meanwhile. The bound on rows a crashed worker leaves behind,
# each reported as a possible duplicate once its lease ends.
ROWS_HELD = 2 * CLAIM_BATCH
# Campaigns whose factory (header templates, encoded subject, DKIM key) stays built;
# a worker rarely serves more than one or two campaigns at a time.
FACTORY_CACHE = 8
# Sends in a row without any answer from the mail server (timeouts) after which the
# campaign is paused, with the reason, as a refused login pauses it. Any answer, a
# refusal too, starts the count again: a server that answers nothing three times in a
# row has stopped answering, where a slow moment costs one timeout. Without this, a
# server that accepts connections and never speaks costs NEWSLETTER_SMTP_TIMEOUT per
# row (30 s: 400 recipients took over three hours) with no sign of why.
SILENT_SERVER_TIMEOUTS = 3


@dataclass(frozen=True)
class Prepared:
    """One built message and its envelope."""

    message_id: str
    mail_from: str
    rcpt_to: str
    data: bytes


NOT_ALLOWED = "not allowed to receive mail any more"


@dataclass(frozen=True)
class Outcome:
    """What happened to one row in this call: a state of ``outbox`` or ``skipped``."""

    row_id: int
    state: str
    detail: str = ""


@dataclass(frozen=True)
class _Unwritten:
    """An outcome this process knows and the database does not yet: written with the next claim."""

    held: outbox.Claim
    write: Callable[[Session], bool]
    outcome: Outcome
    # (message_id, reply) of a message the server accepted: written with the others sent.
    accepted: tuple[str, str] | None = None


@dataclass(frozen=True)
class _Batch:
    """A committed claim: the rows asked for, the outcomes written with it, what it took."""

    row_ids: Sequence[int]
    written: list[_Unwritten]
    claims: list[outbox.Claim]
    factories: dict[int, MessageFactory]
    recipients: list[Recipient | None]


class Sender:
    """Sends outbox rows from one process: one transport, one rate limiter, cached factories."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.url = settings.database
        self.key = settings.key()
        self.transport = transport or transport_for(settings)
        self.limiter = limiter or limiter_for(settings)
        self._factories: OrderedDict[int, MessageFactory] = OrderedDict()
        # Outcomes wait for the next claim's commit only when no token wait comes between.
        self._defer = isinstance(self.limiter, NoLimit)
        self._unwritten: list[_Unwritten] = []
        # Set when a send paused the campaign: the rest of the batch is given back.
        self._halted = False
        # Sends in a row that timed out, across campaigns: the server is the same.
        self._timeouts = 0
        # One session for every transaction of this sender: making a Session per step
        # cost about 0.2 ms, four times per recipient.
        self._session = Session(engine_for(self.url), expire_on_commit=False)
        # The next batch is claimed on a connection of its own, in a thread of its own.
        self._ahead_session = Session(engine_for(self.url), expire_on_commit=False)
        self._ahead_pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Release the transport's connection, the claiming thread and the database sessions."""
        self.transport.close()
        if self._ahead_pool is not None:
            self._ahead_pool.shutdown()
            self._ahead_pool = None
        self._session.close()
        self._ahead_session.close()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """Commit on success, roll back on any exception."""
        with self._session.begin():
            yield self._session

    # Rows ------------------------------------------------------------------------------

    def send_row(self, row_id: int) -> Outcome:
        """Attempt one row once; return what became of it (``skipped`` if not ours to send)."""
        outcomes: list[Outcome] = []
        self.send_rows([row_id], on_outcome=outcomes.append)
        return outcomes[-1]

    def send_rows(
        self,
        row_ids: Sequence[int],
        *,
        budget_seconds: float | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[int]:
        """Send rows in order until done or ``budget_seconds`` passed; return the ids left.

        ``on_outcome`` hears of each row once its outcome is committed. Every outcome is
        in the database when this returns or raises, except when the database itself
        failed: then the last one is written by this sender's next transaction.
        """
        report = on_outcome or _ignore
        started = time.monotonic()

        def over_budget() -> bool:
            return budget_seconds is not None and time.monotonic() - started > budget_seconds

        left: list[int] = []
        try:
            if self._defer:
                left = self._send_batches(row_ids, over_budget, report)
            else:
                for index, row_id in enumerate(row_ids):
                    if over_budget():
                        left = list(row_ids[index:])
                        break
                    self._attempt(row_id, report)
        except BaseException as exc:
            # A database that stopped answering cannot take the outcome now: it stays in
            # hand and the next transaction writes it (fenced by its attempt), so a send
            # continued after the outage neither loses it nor sends that row again.
            if database_error(exc) is None:
                self._write_unwritten_alone(report, quietly=True)
            raise
        self._write_unwritten_alone(report)
        return left

    def _attempt(self, row_id: int, report: Callable[[Outcome], None]) -> None:
        """Claim, check, build and send one row (rate limited); report its outcome once recorded."""
        # Spend no rate token on a row that is done (a task delivered twice).
        with self._transaction() as session:
            claimable = outbox.is_claimable(session, row_id)
        if not claimable:
            report(Outcome(row_id, SKIPPED))
            return
        self.limiter.acquire()
        # The previous row's outcome, this row's claim and its recipient check share one
        # transaction: one commit per recipient, and a row whose recipient left never
        # shows as ``sending``.
        recipient: Recipient | None = None
        with self._transaction() as session:
            written = self._write_unwritten(session, list(self._unwritten))
            held = outbox.claim(session, row_id, self.settings.lease_seconds)
            if held is not None:
                factory = self._factory(session, held.campaign_id)
                recipient = self._allowed_recipient(session, held, factory)
                if recipient is None:
                    outbox.mark_suppressed(session, held, NOT_ALLOWED)
        self._written(written, report)
        if held is None:
            report(Outcome(row_id, SKIPPED))
            return
        if recipient is None:
            report(Outcome(row_id, outbox.SUPPRESSED, NOT_ALLOWED))
            return
        self._send_claimed(held, factory, recipient, report)

    def _send_batches(
        self,
        row_ids: Sequence[int],
        over_budget: Callable[[], bool],
        report: Callable[[Outcome], None],
    ) -> list[int]:
        """Send rows a batch at a time, claiming the next batch while one is sent; the ids left.

        The first batch is claimed here; from then on, while batch *n* goes to the
        server, another connection writes batch *n − 1*'s outcomes and claims and checks
        batch *n + 1* in one transaction, so the database's round trips and commit wait
        overlap the SMTP dialogue instead of following it. A batch claimed ahead is
        given back when sending stops early (an error, a pause); once the budget is
        spent, none is claimed ahead.
        """
        batches = [row_ids[i : i + CLAIM_BATCH] for i in range(0, len(row_ids), CLAIM_BATCH)]
        if not batches or over_budget():
            return list(row_ids)
        batch = self._claim_batch(self._session, list(self._unwritten), batches[0])
        left: list[int] = []
        for index in range(len(batches)):
            to_send = self._claimed(batch, report)
            ahead: Future[_Batch] | None = None
            if index + 1 < len(batches):
                if over_budget():
                    left = [row_id for later in batches[index + 1 :] for row_id in later]
                else:
                    ahead = self._ahead().submit(
                        self._claim_batch,
                        self._ahead_session,
                        list(self._unwritten),
                        batches[index + 1],
                    )
            try:
                self._send_batch(to_send, batch.factories, report)
            except BaseException:
                self._abandon(ahead, report)
                raise
            if ahead is None:
                return left
            batch = ahead.result()
            if self._halted:
                # The campaign was paused during the batch: the next one is not sent.
                self._hand_back(batch, report)
                batch = _Batch((), [], [], {}, [])
        return []

    def _claim_batch(
        self, session: Session, unwritten: list[_Unwritten], row_ids: Sequence[int]
    ) -> _Batch:
        """In one transaction: write ``unwritten``, claim the rows, check their recipients."""
        with session.begin():
            written = self._write_unwritten(session, unwritten)
            claims = outbox.claim_many(session, row_ids, self.settings.lease_seconds)
            factories = {c: self._factory(session, c) for c in {h.campaign_id for h in claims}}
            recipients = self._allowed_recipients(session, claims, factories)
            for held, recipient in zip(claims, recipients, strict=True):
                if recipient is None:
                    outbox.mark_suppressed(session, held, NOT_ALLOWED)
        return _Batch(row_ids, written, claims, factories, recipients)

    def _claimed(
        self, batch: _Batch, report: Callable[[Outcome], None]
    ) -> list[tuple[outbox.Claim, Recipient]]:
        """A committed claim: report what it wrote and what it left out; the rows to send."""
        self._written(batch.written, report)
        claimed = {held.row_id for held in batch.claims}
        for row_id in batch.row_ids:
            if row_id not in claimed:
                report(Outcome(row_id, SKIPPED))
        return self._sendable(batch, report)

    @staticmethod
    def _sendable(
        batch: _Batch, report: Callable[[Outcome], None]
    ) -> list[tuple[outbox.Claim, Recipient]]:
        """The batch's claims whose recipient may receive mail; the others reported."""
        to_send = []
        for held, recipient in zip(batch.claims, batch.recipients, strict=True):
            if recipient is None:
                report(Outcome(held.row_id, outbox.SUPPRESSED, NOT_ALLOWED))
            else:
                to_send.append((held, recipient))
        return to_send

    def _abandon(self, ahead: Future[_Batch] | None, report: Callable[[Outcome], None]) -> None:
        """Sending stopped with a batch being claimed ahead: wait for it, then give it back.

        Its failure is logged, not raised: the error that stopped sending is on its way.
        """
        if ahead is None:
            return
        try:
            batch = ahead.result()
        except Exception:
            log.exception("the batch claimed ahead did not commit")
            return
        self._hand_back(batch, report)

    def _hand_back(self, batch: _Batch, report: Callable[[Outcome], None]) -> None:
        """A committed claim that will not be sent: report what it wrote, give its rows back."""
        self._written(batch.written, report)
        self._give_back([held for held, _ in self._sendable(batch, report)])

    def _ahead(self) -> ThreadPoolExecutor:
        """The one thread that claims the next batch (made on first use, after any fork)."""
        if self._ahead_pool is None:
            self._ahead_pool = ThreadPoolExecutor(1, thread_name_prefix="newsletter-claim")
        return self._ahead_pool

    def _send_batch(
        self,
        to_send: list[tuple[outbox.Claim, Recipient]],
        factories: dict[int, MessageFactory],
        report: Callable[[Outcome], None],
    ) -> None:
        """Send claimed rows in order; give back those not reached when something stops it."""
        self._halted = False
        done = 0
        try:
            for held, recipient in to_send:
                if self._halted:
                    break
                done += 1
                self._send_claimed(held, factories[held.campaign_id], recipient, report)
        finally:
            if done < len(to_send):
                self._give_back([held for held, _ in to_send[done:]])

    def _give_back(self, claims: list[outbox.Claim]) -> None:
        """Put claimed rows that were never sent back to ``queued``; logged if impossible.

        If the database cannot take it, the rows stay ``sending`` until their lease ends
        and are then reported as possible duplicates: never lost.
        """
        try:
            with self._transaction() as session:
                for held in claims:
                    outbox.release(session, held)
        except Exception:
            log.exception("rows %s: not given back", [held.row_id for held in claims])

    def _send_claimed(
        self,
        held: outbox.Claim,
        factory: MessageFactory,
        recipient: Recipient,
        report: Callable[[Outcome], None],
    ) -> None:
        """Build and send one claimed row; its outcome is recorded or held for the next commit."""
        try:
            message = self._build(factory, recipient, held.row_id)
        except NewsletterError as exc:
            self._finish(held, f"cannot build the message: {exc}", report)
            return
        except Exception:
            # A bug, not the recipient's fault: give the row back (attempts still cap it).
            self._record_now(held, lambda s: self._retry(s, held, "internal error while building"))
            raise
        self._deliver(held, message, report)

    # Outcomes not yet written ----------------------------------------------------------
    #
    # Without a rate limit, the outcomes of a batch are written in the transaction that
    # claims a later batch, instead of one transaction each: the rows held ``sending``
    # meanwhile are the window in which a crash leaves a message accepted but not
    # recorded. With a rate limit the next claim waits for a token, so outcomes are
    # written at once.

    def _record(
        self,
        held: outbox.Claim,
        write: Callable[[Session], bool],
        outcome: Outcome,
        report: Callable[[Outcome], None],
        accepted: tuple[str, str] | None = None,
    ) -> None:
        """Write one outcome with the next claim (or at once, when rate limited)."""
        if self._defer:
            self._unwritten.append(_Unwritten(held, write, outcome, accepted))
            return
        self._record_now(held, write)
        report(outcome)

    def _write_unwritten(self, session: Session, unwritten: list[_Unwritten]) -> list[_Unwritten]:
        """Write held-back outcomes (the oldest of ``_unwritten``) in ``session``'s
        transaction; the caller commits, then hands them to ``_written``."""
        accepted = [(one.held, *one.accepted) for one in unwritten if one.accepted]
        recorded = outbox.mark_sent_many(session, accepted) if accepted else 0
        if 0 <= recorded < len(accepted):
            log.warning(
                "%d of %d sends outlived their lease; results not recorded",
                len(accepted) - recorded,
                len(accepted),
            )
        for one in unwritten:
            if one.accepted is None and one.write(session) is False:
                _log_outlived(one.held)
        return unwritten

    def _written(self, written: list[_Unwritten], report: Callable[[Outcome], None]) -> None:
        """The transaction holding ``written`` committed: forget them and report them."""
        del self._unwritten[: len(written)]
        for one in written:
            report(one.outcome)

    def _write_unwritten_alone(
        self, report: Callable[[Outcome], None], quietly: bool = False
    ) -> None:
        """Write the held-back outcomes in a transaction of their own.

        ``quietly`` when another exception is on its way out: a failure here is logged
        (the row stays ``sending`` and its lease expiry reports it) instead of hiding it.
        """
        if not self._unwritten:
            return
        try:
            with self._transaction() as session:
                written = self._write_unwritten(session, list(self._unwritten))
        except Exception:
            if not quietly:
                raise
            lost = [one.held.row_id for one in self._unwritten]
            log.exception("rows %s: outcomes not recorded", lost)
            self._unwritten = []
            return
        self._written(written, report)

    def _record_now(self, held: outbox.Claim, write: Callable[[Session], bool]) -> None:
        """Write one outcome in its own transaction."""
        with self._transaction() as session:
            result = write(session)
        if result is False:
            _log_outlived(held)

    # Steps -----------------------------------------------------------------------------

    def _allowed_recipients(
        self,
        session: Session,
        claims: list[outbox.Claim],
        factories: dict[int, MessageFactory],
    ) -> list[Recipient | None]:
        """``_allowed_recipient`` for each claim; list copies checked together, in two reads."""
        listed = [held for held in claims if not factories[held.campaign_id].test]
        wanted = [(held.subscriber_id, held.list_id, held.email) for held in listed]
        people = dict(zip(listed, receiving_many(session, self.key, wanted), strict=True))
        answers: list[Recipient | None] = []
        for held in claims:
            if held in people:
                person = people[held]
                answers.append(None if person is None else self._recipient(held, person))
            else:
                answers.append(self._allowed_recipient(session, held, factories[held.campaign_id]))
        return answers

    def _allowed_recipient(
        self, session: Session, held: outbox.Claim, factory: MessageFactory
    ) -> Recipient | None:
        """The recipient's values if they may receive mail right now, else None."""
        if factory.test:  # a test copy is on no list: only the suppression list applies
            if is_suppressed(session, self.key, held.email):
                return None
            return self._recipient(held, None)
        person = receiving(session, self.key, held.subscriber_id, held.list_id, held.email)
        if person is None:
            return None
        return self._recipient(held, person)

    @staticmethod
    def _build(factory: MessageFactory, recipient: Recipient, row_id: int) -> Prepared:
        """Personalise and build the message and its envelope (the return path names the row)."""
        message_id, data = factory.build(recipient)
        mail_from, rcpt_to = factory.envelope(recipient, row_id)
        return Prepared(message_id, mail_from, rcpt_to, data)

    def _recipient(self, held: outbox.Claim, person: Row[tuple[str, str]] | None) -> Recipient:
        """The personal values of one message: name, municipality, the person's links."""
        if person is None or held.subscriber_id is None:  # a test copy: no personal links
            return Recipient(email=held.email)
        token = make_token(self.key, held.subscriber_id, held.list_id)
        return Recipient(
            email=held.email,
            name=person.name,
            municipality=person.municipality,
            unsubscribe_url=unsubscribe_url(self.settings, token),
            preferences_url=preferences_url(self.settings, token),
            view_url=view_url(self.settings, held.campaign_id, token),
        )

    def _deliver(
        self, held: outbox.Claim, message: Prepared, report: Callable[[Outcome], None]
    ) -> None:
        """Hand the message to the transport and record what the server said."""
        try:
            reply = self.transport.send(message.mail_from, message.rcpt_to, message.data)
        except DeliveryError as exc:
            self._refused(held, message.message_id, exc, report)
            return
        self._timeouts = 0
        outcome = Outcome(held.row_id, outbox.SENT, reply)
        self._record(
            held,
            lambda s: outbox.mark_sent(s, held, message.message_id, reply),
            outcome,
            report,
            accepted=(message.message_id, reply),
        )

    def _refused(
        self,
        held: outbox.Claim,
        message_id: str,
        exc: DeliveryError,
        report: Callable[[Outcome], None],
    ) -> None:
        """Record a send that did not succeed, by what the error says to do next.

        After ``SILENT_SERVER_TIMEOUTS`` sends in a row without an answer, the row is
        recorded as its error says (retry, or uncertain after DATA) and the campaign paused.
        """
        detail = str(exc)
        silent = self._server_went_silent(exc)
        if isinstance(exc, DeliveryConfigError):
            self._record_now(held, lambda s: self._stop_campaign(s, held, exc))
            report(Outcome(held.row_id, outbox.QUEUED, detail))
            raise exc
        write: Callable[[Session], bool]
        if isinstance(exc, UncertainDeliveryError):
            lease = self.settings.lease_seconds
            write = lambda s: outbox.mark_uncertain(s, held, detail, message_id, lease)  # noqa: E731
            state = outbox.UNCERTAIN
        elif isinstance(exc, PermanentDeliveryError):
            write = lambda s: self._bounce(s, held, exc)  # noqa: E731
            state = outbox.FAILED
        else:
            write = lambda s: self._retry(s, held, detail, exc.smtp_code, exc.smtp_reply)  # noqa: E731
            state = outbox.QUEUED
        outcome = Outcome(held.row_id, state, detail)
        if silent:
            reason = self._silence_reason(exc)
            log.warning("campaign %s paused: %s", held.campaign_id, reason)
            self._record_now(held, lambda s: self._pause_after(s, write, held, reason))
            report(outcome)
            self._halted = True
            return
        self._record(held, write, outcome, report)

    def _server_went_silent(self, exc: DeliveryError) -> bool:
        """Count a send without an answer; True (and count again) at the one that makes it enough."""
        if not exc.timed_out:
            self._timeouts = 0
            return False
        self._timeouts += 1
        if self._timeouts < SILENT_SERVER_TIMEOUTS:
            return False
        self._timeouts = 0
        return True

    def _silence_reason(self, exc: DeliveryError) -> str:
        """Why the campaign stopped, for ``campaign status`` and the dashboard."""
        return (
            f"stopped: the mail server did not answer {SILENT_SERVER_TIMEOUTS} sends in a row "
            f"(nothing within NEWSLETTER_SMTP_TIMEOUT, {self.settings.smtp_timeout:g} s; "
            f"last: {exc}); check that it is up and answering, then resume"
        )

    @staticmethod
    def _pause_after(
        session: Session, write: Callable[[Session], bool], held: outbox.Claim, reason: str
    ) -> bool:
        """Record the row's own outcome, then pause its campaign, in one transaction."""
        recorded = write(session)
        _pause_campaign(session, held.campaign_id, reason)
        return recorded

    def _retry(
        self,
        session: Session,
        held: outbox.Claim,
        error: str,
        code: int | None = None,
        reply: str = "",
    ) -> bool:
        """Put the row back with a backoff, or fail it when its attempts are used up."""
        return outbox.mark_retry(
            session,
            held,
            error,
            max_attempts=self.settings.max_attempts,
            base_seconds=self.settings.retry_seconds,
            code=code,
            reply=reply,
        )

    def _bounce(self, session: Session, held: outbox.Claim, exc: PermanentDeliveryError) -> bool:
        """Fail the row and count a hard bounce against the subscriber, in one transaction."""
        recorded = outbox.mark_failed(session, held, str(exc), exc.smtp_code, exc.smtp_reply)
        if recorded and held.subscriber_id is not None:
            record_bounce(
                session, self.key, held.subscriber_id, self.settings.bounce_threshold, str(exc)
            )
        return recorded

    def _stop_campaign(
        self, session: Session, held: outbox.Claim, exc: DeliveryConfigError
    ) -> bool:
        """The server refuses our own setup: give the row back and pause the whole campaign."""
        recorded = self._retry(session, held, str(exc), exc.smtp_code, exc.smtp_reply)
        _pause_campaign(session, held.campaign_id, f"stopped: {exc}")
        return recorded

    def _finish(self, held: outbox.Claim, reason: str, report: Callable[[Outcome], None]) -> None:
        """Fail a row whose message cannot be built (never handed to the transport)."""
        outcome = Outcome(held.row_id, outbox.FAILED, reason)
        self._record(held, lambda s: outbox.mark_failed(s, held, reason), outcome, report)

    def _factory(self, session: Session, campaign_id: int) -> MessageFactory:
        """The campaign's message factory, built once per process."""
        factory = self._factories.get(campaign_id)
        if factory is not None:
            self._factories.move_to_end(campaign_id)
            return factory
        campaign = session.execute(select(Campaign).where(Campaign.id == campaign_id)).scalar_one()
        factory = MessageFactory(
            CompiledIssue.from_dict(campaign.compiled),
            self.settings,
            campaign_id=campaign_id,
            list_id_header=list_id_header(campaign.lists.get("slugs", [])),
            test=campaign.is_test,
        )
        self._factories[campaign_id] = factory
        while len(self._factories) > FACTORY_CACHE:
            self._factories.popitem(last=False)
        return factory


def _pause_campaign(session: Session, campaign_id: int, reason: str) -> None:
    """Pause a running campaign on the sender's own account, saying why."""
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "running")
        .values(status="paused", status_reason=reason[:500])
    )


def _ignore(_: Outcome) -> None:
    """An ``on_outcome`` that listens to nothing."""


def _log_outlived(held: outbox.Claim) -> None:
    log.warning(
        "row %s: attempt %s outlived its lease; result not recorded", held.row_id, held.attempt
    )


def list_id_header(slugs: Sequence[str]) -> str:
    """The List-Id label of a campaign: its lists' slugs (none for a test send)."""
    return ".".join(slugs)


_process_sender: tuple[int, Sender] | None = None


def sender_for(settings: Settings) -> Sender:
    """The one sender of this process (rebuilt after a fork, which must not share a socket)."""
    global _process_sender
    if _process_sender is None or _process_sender[0] != os.getpid():
        _process_sender = (os.getpid(), Sender(settings))
    return _process_sender[1]
