"""Campaigns: one compiled issue sent to a set of lists, from creation to the per-recipient report.

A campaign moves along::

    draft ──materialised──▶ scheduled ──send_at reached──▶ running ──nothing left──▶ done
      └─(approvals needed)─▶ awaiting ──approved, started or due──▶ scheduled (approval.py)
                 └─────────────(no send_at)────────────────▶ │ ▲
                                         pause: running/scheduled ──▶ paused ──resume──┘
                          resume: running that no live process sends ──▶ running
                          cancel: draft/awaiting/scheduled/running/paused ──▶ cancelled

Creating a campaign stores the compiled issue on it (with click counting on, its links
replaced once by the campaign's counted links, ``clicks``) and materialises one outbox row per
eligible recipient with set-based ``INSERT … SELECT`` statements (no Python loop per
recipient). Pause and cancel act within one send: every claim checks that the campaign
is running, so only a message already in a worker's hands goes out after them.

Sending an issue twice does not send anyone a second copy: before a campaign is created,
recipients whom another campaign of the same issue reached are counted, and the campaign
is refused, made without them or made for everyone again (``overlap`` has the rules).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Insert, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.audience.export import spreadsheet_safe
from newsletter.audience.subscribers import (
    Where,
    eligible_recipients,
    normalise_email,
    resolve_lists,
)
from newsletter.db import engine_for, refresh_statistics, transaction
from newsletter.dispatch import approval, clicks, lease, outbox, overlap
from newsletter.dispatch.messages import msg
from newsletter.errors import InputError, NotFoundError, StateError
from newsletter.models import Campaign, Membership, OutboxRow, Subscriber, utcnow
from newsletter.settings import Settings

if TYPE_CHECKING:
    from newsletter.compose.render import CompiledIssue

# Subscriber ids per INSERT … SELECT: each batch is its own short transaction, so a large
# materialisation never holds the SQLite write lock for long. (On PostgreSQL 5,000,
# 20,000 and 50,000 measured the same within 10% at 1,000,000 rows.)
MATERIALISE_BATCH = 5000
# Batches run at once on PostgreSQL, each on its own connection: checking the outbox's
# three foreign keys takes half of a batch's time in the server (1,000,000 rows: 23.5 s
# with the checks, 10 s without), and two server processes check twice as many rows.
# SQLite has one writer, so there batches run one after another.
PARALLEL_BATCHES = 2
# Tables whose statistics the materialising INSERT … SELECT is planned from.
AUDIENCE_TABLES = ("subscribers", "memberships", "outbox")
# The rate shown in the status is measured over this many seconds of sent rows.
RATE_WINDOW_SECONDS = 10
ACTIVE = ("scheduled", "running", "paused")
# Rounds of count and insert before giving up while campaigns of the issue keep appearing.
CHECK_ROUNDS = 3


@dataclass(frozen=True)
class Created:
    """A new campaign: its id, how many rows it holds, and its status.

    ``existing`` when the start token had created it already (a second POST of one page).
    """

    campaign_id: int
    recipients: int
    status: str
    send_at: datetime | None = None
    existing: bool = False


@dataclass(frozen=True)
class Progress:
    """Where a campaign stands: its status and its rows per state."""

    campaign_id: int
    issue_slug: str
    subject: str
    status: str
    status_reason: str
    is_test: bool
    created_at: datetime
    send_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int] = field(default_factory=dict)
    rate: float = 0.0
    source_sha256: str = ""  # of the issue file's text that was compiled and sent
    created_by: str = ""

    @property
    def total(self) -> int:
        """Rows in the campaign."""
        return sum(self.counts.get(state, 0) for state in outbox.STATES)

    @property
    def finished_rows(self) -> int:
        """Rows that will not be attempted again."""
        return self.total - self.counts.get(outbox.QUEUED, 0) - self.counts.get(outbox.SENDING, 0)


@dataclass(frozen=True)
class ReportLine:
    """One recipient's outcome: the campaign's send log, one line per address."""

    email: str
    outcome: str
    attempts: int
    smtp_code: int | None
    smtp_reply: str
    reason: str
    message_id: str
    sent_at: datetime | None
    # A bounce or complaint that came back by mail later: kind, status and diagnostic.
    bounce: str = ""
    bounced_at: datetime | None = None


# Creating -------------------------------------------------------------------------------


def create(
    settings: Settings,
    compiled: CompiledIssue,
    slugs: Sequence[str],
    where: Where,
    *,
    send_at: datetime | None = None,
    repeat: str = overlap.REFUSE,
    start_token: str | None = None,
    created_by: str = "",
    hold: bool = False,
) -> Created:
    """Store the compiled issue as a campaign and materialise its outbox rows.

    ``created_by`` names its author. ``hold`` leaves it ``awaiting`` approval, with no
    rows yet (``approval`` hands it on; ``start_due`` materialises it then).

    Without ``send_at`` the campaign is ``running`` at once; with it, ``scheduled`` (the
    periodic tick starts it and adds anyone who became eligible meanwhile). ``repeat``
    says what becomes of people whom another campaign of the issue reached
    (``overlap.REPEAT_CHOICES``; AlreadySentError under ``REFUSE``). A ``start_token``
    that created a campaign before returns that campaign (``existing``), creating nothing.
    """
    if repeat not in overlap.REPEAT_CHOICES:
        choices = ", ".join(overlap.REPEAT_CHOICES)
        raise InputError(f"repeat: expected one of {choices}, not {repeat!r}")
    settings.refuse_unfit_base_url()
    if send_at is not None:
        # SQLite keeps a datetime's wall time and drops its offset: a local "09:00+02:00"
        # came back as 09:00 UTC, two hours late. Every stored time is UTC.
        send_at = send_at.astimezone(UTC)
    before = _started_with(settings, start_token) if start_token else None
    if before is not None:
        return before
    for _round in range(CHECK_ROUNDS):
        counted = None
        if repeat == overlap.REFUSE:
            # Counted before the lock: on SQLite it stops every writer, and counting a
            # large audience takes seconds. Under the lock only newer campaigns are sought.
            # ONLY_NEW needs no count: materialise leaves out whoever was reached.
            found = overlap.audience(settings, compiled, slugs, where)
            overlap.refuse_if_reached(found)
            counted = found.newest_id
        inserted = _insert_draft(
            settings, compiled, slugs, where, send_at, repeat, start_token, counted, created_by
        )
        if inserted is not None:
            break
    else:
        raise StateError(f"campaigns of {compiled.slug!r} keep being created; nothing was sent")
    if isinstance(inserted, Created):
        return inserted
    campaign_id, list_ids = inserted
    if hold:
        with transaction(settings.database) as session:
            session.execute(
                update(Campaign).where(Campaign.id == campaign_id).values(status=approval.AWAITING)
            )
        return Created(campaign_id, 0, approval.AWAITING, send_at)
    with transaction(settings.database) as session:
        # Never None here: no other campaign of the issue was a draft under the lock.
        others = overlap.to_skip(session, campaign_id, repeat) or []
    recipients = materialise(
        settings.database, campaign_id, list_ids, where, skip_reached_by=others
    )
    status = "scheduled" if send_at is not None and send_at > utcnow() else "running"
    with transaction(settings.database) as session:
        values: dict[str, object] = {"status": status}
        if status == "running":
            values["started_at"] = utcnow()
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
    return Created(campaign_id, recipients, status, send_at)


def _insert_draft(
    settings: Settings,
    compiled: CompiledIssue,
    slugs: Sequence[str],
    where: Where,
    send_at: datetime | None,
    repeat: str,
    start_token: str | None,
    counted_up_to: int | None,
    created_by: str = "",
) -> tuple[int, list[int]] | Created | None:
    """Insert the campaign as ``draft`` under the creation lock; return (its id, list ids).

    Returns the campaign the start token created (``existing``) if there is one, and
    None when a campaign of the issue was created after ``counted_up_to`` (count again).
    StateError while another campaign of the issue is being prepared or started.
    """
    content_hash = overlap.fingerprint(compiled)
    try:
        with transaction(settings.database) as session:
            overlap.lock_creation(session)
            before = overlap.started_by(session, start_token) if start_token else None
            if before is not None:
                return _existing(session, before)
            overlap.refuse_while_busy(session, compiled.slug, content_hash)
            if counted_up_to is not None and overlap.created_since(
                session, compiled.slug, content_hash, counted_up_to
            ):
                return None
            list_ids = [found.id for found in resolve_lists(session, slugs)]
            lists = {"slugs": list(slugs), "ids": list_ids, "where": dict(where), "repeat": repeat}
            row = Campaign(
                issue_slug=compiled.slug,
                subject=compiled.subject,
                compiled=compiled.to_dict(),
                content_hash=content_hash,
                lists=lists,
                status="draft",
                send_at=send_at,
                start_token=start_token or None,
                created_by=created_by[:320],
            )
            session.add(row)
            session.flush()
            if clicks.counting(settings):
                row.compiled = clicks.attach_links(session, settings, row.id, compiled).to_dict()
            return row.id, list_ids
    except IntegrityError:
        # The start token is the only unique value here; under the lock this is a backstop.
        before_created = _started_with(settings, start_token) if start_token else None
        if before_created is None:
            raise
        return before_created


def _started_with(settings: Settings, start_token: str) -> Created | None:
    """The campaign this start token created (``existing``), or None."""
    with transaction(settings.database) as session:
        before = overlap.started_by(session, start_token)
        return None if before is None else _existing(session, before)


def _existing(session: Session, campaign_id: int) -> Created:
    """A campaign created earlier, as ``create`` returns it, marked ``existing``."""
    status, send_at = session.execute(
        select(Campaign.status, Campaign.send_at).where(Campaign.id == campaign_id)
    ).one()
    rows = session.scalar(select(func.count()).where(OutboxRow.campaign_id == campaign_id))
    return Created(campaign_id, rows or 0, status, outbox.aware(send_at), existing=True)


def create_test(settings: Settings, compiled: CompiledIssue, address: str) -> int:
    """A one-row test campaign to ``address``: ``[TEST]`` subject, on no list."""
    settings.refuse_unfit_base_url()
    email = normalise_email(address)
    with transaction(settings.database) as session:
        person = session.execute(
            select(Subscriber.id).where(Subscriber.email == email)
        ).scalar_one_or_none()
        row = Campaign(
            issue_slug=compiled.slug,
            subject=compiled.subject,
            compiled=compiled.to_dict(),
            content_hash=overlap.fingerprint(compiled),
            lists={"slugs": [], "ids": [], "where": {}, "test_to": email},
            status="running",
            is_test=True,
            started_at=utcnow(),
        )
        session.add(row)
        session.flush()
        session.add(OutboxRow(campaign_id=row.id, subscriber_id=person, list_id=None, email=email))
        return row.id


def materialise(
    url: str,
    campaign_id: int,
    list_ids: Sequence[int],
    where: Where,
    *,
    skip_reached_by: Sequence[int] = (),
) -> int:
    """Insert an outbox row for every eligible recipient not yet in the campaign.

    Set-based: one ``INSERT … SELECT`` per range of ``MATERIALISE_BATCH`` subscriber ids,
    each skipping addresses the campaign already holds, so running it again (when a
    scheduled campaign starts) adds only newcomers, and those whom a campaign in
    ``skip_reached_by`` reached. Returns the rows added.
    """
    engine = engine_for(url)
    postgres = engine.dialect.name == "postgresql"
    # Lists imported a moment ago would otherwise be planned as empty tables.
    refresh_statistics(url, AUDIENCE_TABLES)
    with transaction(url) as session:
        highest = session.execute(select(func.max(Subscriber.id))).scalar_one_or_none() or 0

    def insert_range(low: int) -> int:
        statement = _insert_eligible(
            engine.dialect.name,
            campaign_id,
            list_ids,
            where,
            low,
            low + MATERIALISE_BATCH,
            skip_reached_by,
        )
        with transaction(url) as session:
            return int(session.execute(statement).rowcount)

    lows = range(0, highest, MATERIALISE_BATCH)
    if postgres:
        with ThreadPoolExecutor(PARALLEL_BATCHES) as pool:
            added = sum(pool.map(insert_range, lows))
    else:
        added = sum(map(insert_range, lows))
    # Until then the planner believes the campaign holds no rows: it sorted every queued
    # row of it for each chunk the reconciler hands out (0.6 s a chunk at 1,000,000;
    # 2.5 ms once analysed), and each claim of ten rows scanned all of them (1.4 ms at
    # 5,000 instead of 0.1). ANALYZE reads a fixed sample: 0.3 s at 1,000,000 rows.
    refresh_statistics(url, [outbox.table.name], changed=added)
    return added


def _insert_eligible(
    dialect: str,
    campaign_id: int,
    list_ids: Sequence[int],
    where: Where,
    low: int,
    high: int,
    skip_reached_by: Sequence[int] = (),
) -> Insert:
    """``INSERT INTO outbox … SELECT`` the eligible subscribers with ids in (low, high].

    The id range is put on both joined tables: PostgreSQL does not carry a range from
    ``subscribers.id`` over to ``memberships.subscriber_id``, and without it every batch
    read all memberships (110 ms a batch at 1,000,000). Addresses the campaign already
    holds are skipped by ``ON CONFLICT DO NOTHING`` on its unique (campaign, email)
    index: a ``NOT EXISTS`` there was planned as a hash of every row the campaign
    already had, so each batch cost more than the last (87 s in all for 1,000,000
    rows, against 19 s one batch at a time and 11 s two at a time now).
    """
    table = outbox.table
    in_range = (
        Subscriber.id > low,
        Subscriber.id <= high,
        Membership.subscriber_id > low,
        Membership.subscriber_id <= high,
    )
    reached = overlap.reached_rows(skip_reached_by, Subscriber.email)
    skip = (~exists(reached),) if skip_reached_by else ()
    rows = (
        eligible_recipients(list_ids, where)
        .where(*in_range, *skip)
        .add_columns(
            literal(campaign_id),
            literal(outbox.QUEUED),
            literal(0),
            literal(""),
            literal(""),
            literal(""),
            literal(False),
            literal(utcnow(), table.c.updated_at.type),
        )
    )
    columns = [
        "subscriber_id",
        "list_id",
        "email",
        "campaign_id",
        "state",
        "attempts",
        "last_error",
        "smtp_reply",
        "message_id",
        "uncertain_before",
        "updated_at",
    ]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["campaign_id", "email"])
    )
    # SQLAlchemy reports the row count of INSERT … SELECT only when asked to.
    return statement.execution_options(preserve_rowcount=True)


# Starting and the periodic tick ------------------------------------------------------


def start_due(settings: Settings, now: datetime | None = None) -> list[int]:
    """Start scheduled campaigns whose time has come; return their ids.

    Campaigns awaiting approval whose time came are handed on first if approved.
    """
    now = now or utcnow()
    approval.release_due(settings, now)
    with transaction(settings.database) as session:
        due = session.execute(
            select(Campaign.id, Campaign.lists).where(
                Campaign.status == "scheduled", Campaign.send_at <= now
            )
        ).all()
    started = []
    for campaign_id, lists in due:
        with transaction(settings.database) as session:
            others = overlap.to_skip(session, campaign_id, lists.get("repeat", overlap.REFUSE))
        if others is None:
            continue  # another campaign of the issue is being prepared: the next tick
        materialise(
            settings.database,
            campaign_id,
            lists.get("ids", []),
            lists.get("where", {}),
            skip_reached_by=others,
        )
        with transaction(settings.database) as session:
            moved = session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status == "scheduled")
                .values(status="running", started_at=now)
            ).rowcount
        if moved:
            started.append(campaign_id)
    return started


def tick(
    settings: Settings,
    broker: outbox.Broker,
    *,
    stale_after: float | None = None,
    campaign_id: int | None = None,
    max_backlog: int | None = None,
) -> outbox.Reconciled:
    """The periodic pass: start due campaigns, then reconcile the outbox.

    Work handed to the broker more than a lease ago, and not done, is handed out again
    once the broker has no backlog (``stale_after`` overrides that age). No more is
    handed out than keeps ``max_backlog`` tasks (default ``outbox.MAX_BACKLOG``) waiting in
    the broker.
    """
    start_due(settings)
    return outbox.reconcile(
        settings.database,
        broker,
        max_attempts=settings.max_attempts,
        stale_after=settings.lease_seconds if stale_after is None else stale_after,
        campaign_id=campaign_id,
        max_backlog=max_backlog,
    )


# Pause, resume, cancel --------------------------------------------------------------


def _move(session: Session, campaign_id: int, allowed: Sequence[str], **values: object) -> str:
    """Change the campaign's status if it is in one of ``allowed``; return the old status."""
    current = session.execute(
        select(Campaign.status).where(Campaign.id == campaign_id)
    ).scalar_one_or_none()
    if current is None:
        raise NotFoundError(msg("campaign.not_found", campaign_id=campaign_id))
    if current not in allowed:
        wanted = " or ".join(allowed)
        raise StateError(
            msg("campaign.wrong_status", campaign_id=campaign_id, current=current, wanted=wanted)
        )
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == current)
        .values(**values)
    )
    return current


def pause(settings: Settings, campaign_id: int) -> None:
    """Stop handing out rows; a message already in a worker's hands still goes."""
    with transaction(settings.database) as session:
        _move(session, campaign_id, ("running", "scheduled"), status="paused", status_reason="")


def resume(settings: Settings, campaign_id: int) -> str:
    """Continue a paused campaign (``scheduled`` again if its time is still ahead).

    A ``running`` campaign is picked up too when no live process sends it (a send that
    stopped on an error or was killed): without Redis its lease tells, and
    ``SendingElsewhereError`` names the process that holds it; with Redis the workers
    take whatever is unfinished.
    """
    with transaction(settings.database) as session:
        current = _move(session, campaign_id, ("paused", "running"), status_reason="")
        if current == "running":
            if settings.embedded:
                _refuse_if_sent_elsewhere(session, campaign_id)
            status = "running"
        else:
            send_at = outbox.aware(
                session.execute(select(Campaign.send_at).where(Campaign.id == campaign_id)).scalar()
            )
            status = "scheduled" if send_at is not None and send_at > utcnow() else "running"
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=status))
        if status == "running":
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.started_at.is_(None))
                .values(started_at=utcnow())
            )
        # Tasks that arrived while paused were dropped: hand every queued row out again.
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.campaign_id == campaign_id, OutboxRow.state == outbox.QUEUED)
            .values(enqueued_at=None)
        )
    return status


def _refuse_if_sent_elsewhere(session: Session, campaign_id: int) -> None:
    """SendingElsewhereError when a live process holds the campaign's sending lease."""
    holder = lease.live_holder(session, campaign_id)
    if holder is not None:
        raise lease.sent_elsewhere(campaign_id, holder)


def cancel(settings: Settings, campaign_id: int) -> int:
    """End the campaign: rows not yet sent become ``cancelled``; return how many."""
    with transaction(settings.database) as session:
        _move(
            session,
            campaign_id,
            ("draft", approval.AWAITING, *ACTIVE),
            status="cancelled",
            finished_at=utcnow(),
            status_reason="",
        )
        return outbox.cancel_queued(session, campaign_id)


# Looking at campaigns ---------------------------------------------------------------


def progress(settings: Settings, campaign_id: int) -> Progress:
    """The campaign's status, its rows per state and its recent sending rate."""
    with transaction(settings.database) as session:
        row = session.get(Campaign, campaign_id)
        if row is None:
            raise NotFoundError(
                f"campaign {campaign_id} does not exist; see `newsletter campaigns`"
            )
        return _progress(session, row)


def _progress(session: Session, row: Campaign) -> Progress:
    return Progress(
        **_describe(row),
        counts=outbox.counts(session, row.id),
        rate=_recent_rate(session, row.id),
    )


def _recent_rate(session: Session, campaign_id: int) -> float:
    """Messages per second over the last ``RATE_WINDOW_SECONDS`` (or since the first of them)."""
    now = utcnow()
    recent, first, last = session.execute(
        select(func.count(), func.min(OutboxRow.sent_at), func.max(OutboxRow.sent_at)).where(
            OutboxRow.campaign_id == campaign_id,
            OutboxRow.sent_at >= now - timedelta(seconds=RATE_WINDOW_SECONDS),
        )
    ).one()
    if recent < 2:
        return 0.0
    span = (outbox.aware(last) - outbox.aware(first)).total_seconds()  # type: ignore[operator]
    return recent / max(span, 1.0)


def _describe(row: Campaign) -> dict[str, object]:
    """The campaign row's own fields of ``Progress``."""
    return {
        "campaign_id": row.id,
        "issue_slug": row.issue_slug,
        "subject": row.subject,
        "status": row.status,
        "status_reason": row.status_reason,
        "is_test": row.is_test,
        "created_at": outbox.aware(row.created_at) or utcnow(),
        "send_at": outbox.aware(row.send_at),
        "started_at": outbox.aware(row.started_at),
        "finished_at": outbox.aware(row.finished_at),
        "source_sha256": str((row.compiled or {}).get("source_sha256") or ""),
        "created_by": row.created_by,
    }


def all_campaigns(settings: Settings, limit: int = 50) -> list[Progress]:
    """The newest campaigns first, with their progress."""
    with transaction(settings.database) as session:
        rows = session.execute(select(Campaign).order_by(Campaign.id.desc()).limit(limit)).scalars()
        return [_progress(session, row) for row in rows]


def report(settings: Settings, campaign_id: int) -> list[ReportLine]:
    """One line per recipient: outcome, attempts, the server's reply and the reason."""
    progress(settings, campaign_id)  # NotFoundError for an unknown id
    with transaction(settings.database) as session:
        rows = session.execute(
            select(OutboxRow).where(OutboxRow.campaign_id == campaign_id).order_by(OutboxRow.id)
        ).scalars()
        return [
            ReportLine(
                email=row.email,
                outcome=outcome_of(row.state, row.uncertain_before, row.bounce_kind),
                attempts=row.attempts,
                smtp_code=row.smtp_code,
                smtp_reply=row.smtp_reply,
                reason=row.last_error,
                message_id=row.message_id,
                sent_at=outbox.aware(row.sent_at),
                bounce=f"{row.bounce_kind}: {row.bounce_detail}" if row.bounce_kind else "",
                bounced_at=outbox.aware(row.bounced_at),
            )
            for row in rows
        ]


BOUNCED_LATER = "bounced later"
COMPLAINED = "complained"


def outcome_of(state: str, uncertain_before: bool, bounce_kind: str = "") -> str:
    """The report's word for a row: a sent row with an unknown earlier attempt is uncertain.

    A message whose bounce or complaint came back by mail is ``bounced later`` (or
    ``complained``): the server had accepted it, the mailbox then refused it.
    """
    if bounce_kind:
        return COMPLAINED if bounce_kind == "complaint" else BOUNCED_LATER
    if state == outbox.SENT and uncertain_before:
        return "uncertain (possible duplicate)"
    return state


REPORT_COLUMNS = (
    "email",
    "outcome",
    "attempts",
    "smtp_code",
    "smtp_reply",
    "reason",
    "message_id",
    "sent_at",
    "bounce",
    "bounced_at",
)


def report_csv(lines: Sequence[ReportLine]) -> str:
    """The per-recipient report as CSV text, safe to open in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(REPORT_COLUMNS)
    for line in lines:
        values: Mapping[str, object] = asdict(line)
        row = []
        for column in REPORT_COLUMNS:
            value = values[column]
            text = (
                ""
                if value is None
                else value.isoformat()
                if isinstance(value, datetime)
                else str(value)
            )
            row.append(spreadsheet_safe(text))
        writer.writerow(row)
    return buffer.getvalue()
