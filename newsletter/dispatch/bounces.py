"""Bounces and complaints that come back by mail: find the row each is about, apply the policy.

A report (``newsletter.delivery.bounces``) is acted on only when it leads to a message this
system sent, by one of two ways:

- its VERP return path (the address it came back to, or the quoted original's
  Return-Path) carries a token that verifies under the secret key and names an outbox
  row (``newsletter.delivery.verp``);
- or it quotes the original's Message-ID (``<c{campaign}.{hmac}@…>``, unguessable without
  the key) and names the very address that campaign's row was sent to.

The row must be ``sent`` or ``uncertain``. Anything else is *unmatched*: a forged or stray
report suppresses nobody. Then, per finding, the policy:

- **hard** (5.x.x): ``bounce_count`` + 1; at ``NEWSLETTER_BOUNCE_THRESHOLD`` the address is
  suppressed;
- **soft** (4.x.x): suppressed at ``NEWSLETTER_SOFT_BOUNCE_THRESHOLD`` soft bounces within
  ``NEWSLETTER_SOFT_BOUNCE_DAYS``;
- **complaint**: unsubscribed from every list at once, with a consent event.

The row keeps when and what (``bounced_at``, ``bounce_kind``, ``bounce_detail``): the
report, the CSV and the dashboard show it as *bounced later*. Each report counts once per
row (``bounce_events.fingerprint``), however often it is read. Auto-replies are never
counted.

Mailbox runs commit every ``BATCH`` reports, and only then move those messages out of
the inbox (``INBOX.processed`` or ``INBOX.unmatched``): a run stopped in between reads
some again and counts none twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from itertools import islice

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from newsletter.audience.subscribers import (
    ERASED_PREFIX,
    record_bounce,
    record_complaint,
    record_soft_bounce,
    scrub_address,
)
from newsletter.db import transaction
from newsletter.delivery.bounces import (
    AUTOREPLY,
    COMPLAINT,
    FEEDBACK,
    HARD,
    SOFT,
    UNKNOWN,
    Finding,
    Report,
    read_report,
)
from newsletter.delivery.mailbox import PROCESSED, UNMATCHED, ImapMailbox, read_messages
from newsletter.delivery.verp import row_of
from newsletter.dispatch import outbox
from newsletter.errors import ConfigError, MailboxError
from newsletter.models import BounceEvent, OutboxRow, utcnow
from newsletter.settings import Settings

log = logging.getLogger(__name__)

#: Reports per transaction (and per IMAP search): a commit per report would cost more
#: than reading it; the batch bounds what one crash makes the next run read again.
BATCH = 200
DUPLICATE = "duplicate"
IGNORED = "ignored"  # read, about nothing that failed (a delay notice): filed as processed
NOT_MATCHED = "unmatched"
_RANK = {"": 0, SOFT: 1, HARD: 2, COMPLAINT: 3}
_OUR_MESSAGE_ID = re.compile(r"<c(\d{1,18})\.[0-9a-f]{32}@[^>]+>")


@dataclass
class Tally:
    """What one run did: messages read, and what became of them."""

    read: int = 0
    hard: int = 0
    soft: int = 0
    complaint: int = 0
    autoreply: int = 0
    duplicate: int = 0
    ignored: int = 0
    unmatched: int = 0

    def count(self, result: str) -> None:
        """Add one message's result."""
        self.read += 1
        setattr(self, result, getattr(self, result) + 1)

    def __str__(self) -> str:
        parts = [f"{f.name} {getattr(self, f.name)}" for f in fields(self) if f.name != "read"]
        return f"{self.read} read: " + ", ".join(parts)


# One report -----------------------------------------------------------------------------


def apply_report(session: Session, settings: Settings, key: bytes, report: Report) -> str:
    """Match the report and apply the policy; return what it was (a ``Tally`` field)."""
    if report.kind == AUTOREPLY:
        return AUTOREPLY
    if report.kind == UNKNOWN:
        return NOT_MATCHED
    matches = _matches(session, settings, key, report)
    if not matches:  # a complaint always names someone: one we cannot find is unmatched
        return NOT_MATCHED if report.findings or report.kind == FEEDBACK else IGNORED
    results = [_count(session, settings, key, report, row, finding) for row, finding in matches]
    counted = [r for r in results if r != DUPLICATE]
    return max(counted, key=_RANK.__getitem__) if counted else DUPLICATE


def _matches(
    session: Session, settings: Settings, key: bytes, report: Report
) -> list[tuple[OutboxRow, Finding]]:
    """The rows the report is about, each with its finding: by VERP, else by Message-ID."""
    if not report.findings:
        return []
    row = _row_by_return_path(session, settings, key, report)
    if row is not None:
        return [(row, _finding_for(row, report.findings))]
    found = []
    for finding in report.findings:
        row = _row_by_message_id(session, report.message_ids, finding.recipient)
        if row is not None:
            found.append((row, finding))
    return found


def _row_by_return_path(
    session: Session, settings: Settings, key: bytes, report: Report
) -> OutboxRow | None:
    if not settings.bounce_address:
        return None
    for address in report.addressed_to:
        row_id = row_of(settings.bounce_address, key, address)
        if row_id is not None:
            row = session.get(OutboxRow, row_id)
            return row if row is not None and row.state in _WAS_SENT else None
    return None


_WAS_SENT = (outbox.SENT, outbox.UNCERTAIN)


def _row_by_message_id(
    session: Session, message_ids: Iterable[str], recipient: str
) -> OutboxRow | None:
    """The row of a campaign that sent this Message-ID to exactly this address."""
    for message_id in message_ids:
        found = _OUR_MESSAGE_ID.fullmatch(message_id)
        if found is None:
            continue
        row = session.scalar(
            select(OutboxRow).where(
                OutboxRow.campaign_id == int(found.group(1)),
                OutboxRow.email == recipient,
                OutboxRow.message_id == message_id,
                OutboxRow.state.in_(_WAS_SENT),
            )
        )
        if row is not None:
            return row
    return None


def _finding_for(row: OutboxRow, findings: tuple[Finding, ...]) -> Finding:
    """The finding about the row's own address, else the gravest (a VERP row has one recipient)."""
    own = [f for f in findings if f.recipient == row.email]
    return own[0] if own else max(findings, key=lambda f: _RANK[f.kind])


def _count(
    session: Session,
    settings: Settings,
    key: bytes,
    report: Report,
    row: OutboxRow,
    finding: Finding,
) -> str:
    """Record the finding on the row and apply the policy, once per report and row."""
    fingerprint = hashlib.sha256(f"{report.fingerprint}\0{row.id}".encode()).hexdigest()
    if not _first_time(session, fingerprint, row, finding):
        return DUPLICATE
    detail = " ".join(part for part in (finding.status, finding.diagnostic) if part)
    if row.email.startswith(ERASED_PREFIX):
        detail = scrub_address(detail, finding.recipient)
    if _RANK[finding.kind] >= _RANK[row.bounce_kind or ""]:
        row.bounced_at = utcnow()
        row.bounce_kind = finding.kind
        row.bounce_detail = detail[:1000]
    if row.subscriber_id is not None:
        _apply_policy(session, settings, key, row.subscriber_id, finding.kind, detail)
    return finding.kind


def _first_time(session: Session, fingerprint: str, row: OutboxRow, finding: Finding) -> bool:
    """Insert the event; False when this report was already counted for this row."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(BounceEvent)
        .values(
            fingerprint=fingerprint,
            outbox_id=row.id,
            subscriber_id=row.subscriber_id,
            kind=finding.kind,
            status=finding.status[:20],
            at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(BounceEvent.id)  # rowcount is -1 on PostgreSQL for an ORM insert
    )
    return session.execute(statement).first() is not None


def _apply_policy(
    session: Session, settings: Settings, key: bytes, subscriber_id: int, kind: str, detail: str
) -> None:
    if kind == HARD:
        record_bounce(session, key, subscriber_id, settings.bounce_threshold, detail)
    elif kind == SOFT:
        record_soft_bounce(
            session,
            key,
            subscriber_id,
            settings.soft_bounce_threshold,
            settings.soft_bounce_days,
            detail,
        )
    else:
        record_complaint(session, key, subscriber_id, detail)


# Runs -----------------------------------------------------------------------------------


def read_file(settings: Settings, path: str) -> Tally:
    """Apply every report in a message file, an mbox, a Maildir or ``-`` (standard input)."""
    tally = Tally()
    key = settings.key()
    for batch in _batches(read_messages(path)):
        with transaction(settings.database) as session:
            results = [apply_report(session, settings, key, read_report(raw)) for raw in batch]
        for result in results:
            tally.count(result)
    return tally


def _batches(messages: Iterable[bytes]) -> Iterator[list[bytes]]:
    left = iter(messages)
    while batch := list(islice(left, BATCH)):
        yield batch


def fetch(settings: Settings) -> Tally:
    """Read the bounce mailbox (``NEWSLETTER_BOUNCE_IMAP_URL``) until it is empty.

    Each batch is recorded first, then its messages are moved to ``processed`` or
    ``unmatched``; nothing is deleted.
    """
    if not settings.bounce_imap_url:
        raise ConfigError("NEWSLETTER_BOUNCE_IMAP_URL is not set: it names the bounce mailbox")
    tally = Tally()
    key = settings.key()
    with ImapMailbox(settings.bounce_imap_url, timeout=settings.smtp_timeout) as mailbox:
        previous: list[bytes] = []
        while True:
            uids = mailbox.uids(BATCH)
            if not uids or uids == previous:  # a server that would not move them: stop
                break
            previous = uids
            with transaction(settings.database) as session:
                results = [
                    apply_report(session, settings, key, read_report(mailbox.fetch(uid)))
                    for uid in uids
                ]
            for uid, result in zip(uids, results, strict=True):
                mailbox.move(uid, UNMATCHED if result == NOT_MATCHED else PROCESSED)
                tally.count(result)
    if tally.read:
        log.info("bounce mailbox: %s", tally)
    return tally


def scheduled_fetch(settings: Settings) -> Tally | None:
    """The scheduler's fetch: a mailbox that does not answer is logged, never fatal.

    Nothing is lost meanwhile: the reports wait in the mailbox for the next run.
    """
    if not settings.bounce_imap_url:
        return None
    try:
        return fetch(settings)
    except (MailboxError, ConfigError) as exc:
        log.warning("bounce mailbox not read: %s", exc)
        return None
