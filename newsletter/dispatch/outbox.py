"""The outbox: one row per recipient of a campaign, the state machine it moves along, the reconciler.

The database is the record of truth; Redis only carries row ids, and anything it loses
the reconciler hands out again. Each row moves along::

    queued ──claim (conditional UPDATE, lease)──▶ sending ──250──────────────▶ sent
      ▲  ▲                                          │ ├─ 5xx ─────────────────▶ failed (+ bounce)
      │  │                                          │ ├─ 4xx, attempts used ──▶ failed
      │  └──── 4xx: not_before = backoff + jitter ──┘ ├─ not allowed any more ─▶ suppressed
      │                                               └─ timeout after DATA ──▶ uncertain (lease)
      ├── lease expired while sending (worker lost) ─ uncertain_before ─ from sending
      └── uncertain whose lease expired, once ─────── uncertain_before ─ from uncertain
    queued ── campaign cancelled ──▶ cancelled

``attempts`` is the fencing token: a claim increments it, and a result is recorded only
while the row still carries the attempt number of the claim that produced it, so a worker
that outlived its lease cannot overwrite a newer attempt. A row whose earlier attempt ended
without a known outcome carries ``uncertain_before``: if it is sent again, the recipient
may hold two copies, and the report says so. ``attempts`` is capped here, in the row, not
in the broker: ``task_reject_on_worker_lost`` would otherwise redeliver a poison task forever.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    DateTime,
    Select,
    Update,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from newsletter.audience.subscribers import ERASED_PREFIX, scrub_address
from newsletter.db import transaction
from newsletter.models import QUEUED_ONLY, Campaign, OutboxRow, utcnow

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
UNCERTAIN = "uncertain"
SUPPRESSED = "suppressed"
CANCELLED = "cancelled"
STATES = (QUEUED, SENDING, SENT, FAILED, UNCERTAIN, SUPPRESSED, CANCELLED)

WORKER_LOST = "previous attempt outcome unknown (worker lost)"
# A backoff longer than this only delays the campaign's end; greylisting servers
# accept a retry after 5-15 minutes.
MAX_BACKOFF_SECONDS = 3600.0
# Rows handed to the broker per task: enough that Celery's per-task cost (about 1-2 ms
# measured on Redis) is small beside 50 sends, few enough that two workers share a
# small campaign.
BATCH_SIZE = 50
# Rows looked at per reconciler statement, so no transaction holds the SQLite write
# lock for long while workers wait to record their results.
RECONCILE_CHUNK = 2000
# Tasks the reconciler lets wait in the broker (100,000 rows, about 4 MB in Redis): a
# campaign of a million is handed out a part per tick, as workers take it, instead of
# all at once. At 3,000 messages a second this is half a minute of work, and a tick
# tops it up every few seconds.
MAX_BACKLOG = 2000

table = OutboxRow.__table__
campaigns = Campaign.__table__
Executor = Session | Connection


class Broker(Protocol):
    """Where the reconciler hands out work: Celery on Redis, or a queue in this process."""

    def publish(self, campaign_id: int, row_ids: list[int]) -> None: ...

    def backlog(self) -> int:
        """Tasks waiting in the broker; re-sending stale work waits until this is 0."""
        ...


@dataclass(frozen=True)
class Claim:
    """A row this worker holds for one attempt; ``attempt`` fences the result."""

    row_id: int
    campaign_id: int
    subscriber_id: int | None
    list_id: int | None
    email: str
    attempt: int
    uncertain_before: bool


def aware(moment: datetime | None) -> datetime | None:
    """Return ``moment`` as aware UTC (SQLite gives back naive datetimes, stored as UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def backoff_seconds(attempt: int, base: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt``: ``base`` doubled per attempt, jittered ±50%.

    The jitter spreads the retries of a whole campaign refused at once (a 421 from an
    overloaded relay) so they do not all arrive again in the same second.
    """
    rng = rng or random.Random()
    delay = min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempt - 1))
    return delay * rng.uniform(0.5, 1.5)


def _running_campaign() -> exists:
    return exists().where(campaigns.c.id == table.c.campaign_id, campaigns.c.status == "running")


def _claimable(
    now: datetime | BindParameter[datetime], state: ColumnElement[str] = table.c.state
) -> list[ColumnElement[bool]]:
    return [
        state == QUEUED,
        or_(table.c.not_before.is_(None), table.c.not_before <= now),
        _running_campaign(),
    ]


# Claims and results ----------------------------------------------------------------
#
# These run once per recipient, so their statements are built once, with bound
# parameters: building a SQLAlchemy statement costs more than executing it on SQLite
# (measured: about 0.3 ms against 0.1 ms, with 4 statements per recipient).

_NOW = bindparam("p_now", type_=DateTime(timezone=True))


@functools.cache
def _is_claimable_statement() -> Select[Any]:
    return select(table.c.id).where(table.c.id == bindparam("p_row"), *_claimable(_NOW))


@functools.cache
def _claim_statement() -> Update:
    return _claim_update(table.c.id == bindparam("p_row"))


@functools.cache
def _claim_many_statement() -> Update:
    return _claim_update(table.c.id.in_(bindparam("p_rows", expanding=True)))


def _claim_update(which: ColumnElement[bool]) -> Update:
    """The claim's conditional UPDATE … RETURNING for the rows ``which`` selects by id.

    Both the rows locked and the rows updated are found by their ids alone. The state is
    compared as ``state || ''``, which no index answers: otherwise, on an estimate made
    before a campaign was materialised (one queued row where there were thousands),
    PostgreSQL read the campaign's queued rows through (campaign_id, state) instead of
    probing ten ids, and ran the locking subquery once for each of them: 3.7 s per
    claim of ten, four workers at 17 msg/s (benchmarks/dispatch.py, celery -c 4).
    """
    target = select(table.c.id).where(which)
    target = target.with_for_update(skip_locked=True)  # dropped on SQLite: see claim()
    return (
        update(table)
        .where(
            which, table.c.id.in_(target.scalar_subquery()), *_claimable(_NOW, table.c.state + "")
        )
        .values(
            state=SENDING,
            attempts=table.c.attempts + 1,
            lease_until=bindparam("p_lease", type_=DateTime(timezone=True)),
            not_before=None,
            updated_at=_NOW,
        )
        .returning(
            table.c.campaign_id,
            table.c.subscriber_id,
            table.c.list_id,
            table.c.email,
            table.c.attempts,
            table.c.uncertain_before,
            table.c.id,
        )
    )


def _core(session: Executor) -> Connection:
    """The connection under ``session``: Core statements skip the ORM's execute layer,
    about 0.1 ms per statement (measured), which matters four times per recipient."""
    return session.connection() if isinstance(session, Session) else session


def is_claimable(session: Executor, row_id: int, now: datetime | None = None) -> bool:
    """True when the row is queued, due and its campaign is running (a cheap read)."""
    parameters = {"p_row": row_id, "p_now": now or utcnow()}
    found = _core(session).execute(_is_claimable_statement(), parameters)
    return found.first() is not None


def claim(
    session: Executor, row_id: int, lease_seconds: float, now: datetime | None = None
) -> Claim | None:
    """Take the row for one attempt, or return None when it is not claimable now.

    One conditional UPDATE … RETURNING: two workers racing for the same row cannot both
    see it queued, on SQLite (the write lock serialises the statement) and on PostgreSQL
    (the row lock, with SKIP LOCKED so a loser moves on instead of waiting).
    """
    now = now or utcnow()
    lease = now + timedelta(seconds=lease_seconds)
    parameters = {"p_row": row_id, "p_now": now, "p_lease": lease}
    found = _core(session).execute(_claim_statement(), parameters)
    row = found.first()
    if row is None:
        return None
    return Claim(row_id, row[0], row[1], row[2], row[3], row[4], bool(row[5]))


def claim_many(
    session: Executor, row_ids: Sequence[int], lease_seconds: float, now: datetime | None = None
) -> list[Claim]:
    """Take those of the rows that are claimable now, in one statement; in ``row_ids`` order.

    The same conditional UPDATE … RETURNING as ``claim``, for several rows: a row another
    worker holds or finished is left out, never taken twice.
    """
    now = now or utcnow()
    lease = now + timedelta(seconds=lease_seconds)
    parameters = {"p_rows": list(row_ids), "p_now": now, "p_lease": lease}
    found = _core(session).execute(_claim_many_statement(), parameters)
    claims = {row[6]: Claim(row[6], *row[:5], bool(row[5])) for row in found}
    return [claims[row_id] for row_id in row_ids if row_id in claims]


def release(session: Executor, held: Claim) -> bool:
    """Give back a claimed row that was never handed to the server, its attempt uncounted."""
    return _record(session, held, state=QUEUED, lease_until=None, attempts=held.attempt - 1)


#: Columns that may quote the recipient's address (a server's reply, an error text).
QUOTING = frozenset({"smtp_reply", "last_error"})


@functools.cache
def _fenced_statement(names: frozenset[str], clear_lost_note: bool) -> Update:
    """``UPDATE outbox SET <names>`` for one attempt's row, built once per shape.

    A text that may quote the address is chosen in the statement itself: verbatim, or
    scrubbed when the row was erased while this attempt was in flight. The choice reads
    the row the UPDATE writes, so no erasure can come between the check and the write.
    """
    erased = table.c.email.startswith(ERASED_PREFIX, autoescape=True)
    values: dict[str, object] = {}
    for name in names:
        verbatim = bindparam(f"v_{name}", type_=table.c[name].type)
        if name in QUOTING:
            scrubbed = bindparam(f"e_{name}", type_=table.c[name].type)
            values[name] = case((erased, scrubbed), else_=verbatim)
        else:
            values[name] = verbatim
    if clear_lost_note:
        note = table.c.last_error
        values["last_error"] = case((note == WORKER_LOST, ""), else_=note)
    return (
        update(table)
        .where(
            table.c.id == bindparam("p_id"),
            table.c.attempts == bindparam("p_attempt"),
            # Not IN (…): an expanding list cannot go into an executemany.
            or_(table.c.state == SENDING, table.c.state == QUEUED),
        )
        .values(values)
    )


def _record(
    session: Executor, held: Claim, clear_lost_note: bool = False, **values: object
) -> bool:
    """Write the outcome of ``held`` unless a newer attempt has claimed the row since.

    A row the reconciler put back to ``queued`` after this worker's lease expired, and
    nobody claimed again, still carries this attempt number: the result stands, and the
    possible-duplicate mark the reconciler set is taken back. When the person was
    erased meanwhile, the reply and error are stored without their address.
    """
    statement, parameters = _fenced(held, clear_lost_note, values)
    return _core(session).execute(statement, parameters).rowcount == 1


def _fenced(
    held: Claim, clear_lost_note: bool, values: dict[str, object]
) -> tuple[Update, dict[str, object]]:
    """The fenced UPDATE that writes ``values`` for ``held``, and its parameters."""
    values.setdefault("uncertain_before", held.uncertain_before)
    values["updated_at"] = utcnow()
    statement = _fenced_statement(frozenset(values), clear_lost_note)
    parameters = {f"v_{name}": value for name, value in values.items()}
    for name in QUOTING.intersection(values):
        parameters[f"e_{name}"] = scrub_address(str(values[name]), held.email)
    parameters.update(p_id=held.row_id, p_attempt=held.attempt)
    return statement, parameters


def mark_sent(session: Executor, held: Claim, message_id: str, reply: str) -> bool:
    """Record that the server accepted the message.

    ``last_error`` stays as the log of why earlier attempts did not succeed, except the
    worker-lost note the reconciler wrote after this very attempt's lease ran out.
    """
    return _record(session, held, not held.uncertain_before, **_sent(message_id, reply))


def mark_sent_many(session: Executor, accepted: Sequence[tuple[Claim, str, str]]) -> int:
    """``mark_sent`` for several ``(claim, message_id, reply)``; how many were recorded.

    One executemany per statement shape: psycopg sends its statements in one pipeline,
    one round trip instead of one per row (SQLite runs them in-process anyway).
    """
    groups: dict[Update, list[dict[str, object]]] = {}
    for held, message_id, reply in accepted:
        statement, parameters = _fenced(held, not held.uncertain_before, _sent(message_id, reply))
        groups.setdefault(statement, []).append(parameters)
    return sum(_core(session).execute(s, rows).rowcount for s, rows in groups.items())


def _sent(message_id: str, reply: str) -> dict[str, object]:
    """The columns ``mark_sent`` writes."""
    return {
        "state": SENT,
        "lease_until": None,
        "message_id": message_id,
        "smtp_code": _code_of(reply),
        "smtp_reply": reply[:1000],
        "sent_at": utcnow(),
    }


def mark_failed(
    session: Executor, held: Claim, error: str, code: int | None = None, reply: str = ""
) -> bool:
    """Record a permanent refusal (or a message that cannot be built): never retried."""
    return _record(
        session,
        held,
        state=FAILED,
        lease_until=None,
        last_error=error[:1000],
        smtp_code=code,
        smtp_reply=reply[:1000],
    )


def mark_retry(
    session: Executor,
    held: Claim,
    error: str,
    *,
    max_attempts: int,
    base_seconds: float,
    code: int | None = None,
    reply: str = "",
) -> bool:
    """Put the row back to ``queued`` with a backoff, or fail it when attempts are used up."""
    if held.attempt >= max_attempts:
        message = f"{error} (gave up after {held.attempt} attempts)"
        return mark_failed(session, held, message, code, reply)
    due = utcnow() + timedelta(seconds=backoff_seconds(held.attempt, base_seconds))
    return _record(
        session,
        held,
        state=QUEUED,
        lease_until=None,
        not_before=due,
        enqueued_at=None,
        last_error=error[:1000],
        smtp_code=code,
        smtp_reply=reply[:1000],
    )


def mark_uncertain(
    session: Executor, held: Claim, error: str, message_id: str, lease_seconds: float
) -> bool:
    """Record an attempt whose outcome is unknown (the server may hold the message).

    The first time, the row keeps a lease and the reconciler queues it once more when
    the lease ends; a row that was already uncertain stays uncertain for good.
    """
    again = not held.uncertain_before
    lease = utcnow() + timedelta(seconds=lease_seconds) if again else None
    return _record(
        session,
        held,
        state=UNCERTAIN,
        lease_until=lease,
        message_id=message_id,
        last_error=error[:1000],
    )


def mark_suppressed(session: Executor, held: Claim, reason: str) -> bool:
    """Record that the recipient may no longer receive mail (checked just before sending)."""
    return _record(session, held, state=SUPPRESSED, lease_until=None, last_error=reason)


def _code_of(reply: str) -> int | None:
    head = reply[:3]
    return int(head) if head.isdigit() else None


# The reconciler ---------------------------------------------------------------------


@dataclass
class Reconciled:
    """What one reconciler pass did, for logs and tests."""

    requeued_lost: int = 0
    requeued_uncertain: int = 0
    exhausted: int = 0
    cancelled: int = 0
    published: int = 0
    finished: int = 0


def expire_leases(session: Session, max_attempts: int, now: datetime | None = None) -> Reconciled:
    """Put rows whose lease ended back to ``queued``, marked as possible duplicates.

    ``sending`` past its lease means the worker died (or hung) with the message perhaps
    accepted; ``uncertain`` past its lease is the one retry an unknown outcome gets.
    A row that used every attempt stays ``uncertain`` and is reported.
    """
    now = now or utcnow()
    expired = and_(table.c.lease_until.is_not(None), table.c.lease_until < now)
    used_up = table.c.attempts >= max_attempts
    done = Reconciled()
    done.exhausted = session.execute(
        update(table)
        .where(table.c.state == SENDING, expired, used_up)
        .values(
            state=UNCERTAIN,
            lease_until=None,
            last_error=f"{WORKER_LOST}; gave up after {max_attempts} attempts",
            updated_at=now,
        )
    ).rowcount
    done.exhausted += session.execute(
        update(table)
        .where(table.c.state == UNCERTAIN, expired, used_up)
        .values(lease_until=None, updated_at=now)
    ).rowcount
    requeue = {
        "state": QUEUED,
        "lease_until": None,
        "enqueued_at": None,
        "uncertain_before": True,
        "updated_at": now,
    }
    done.requeued_lost = session.execute(
        update(table)
        .where(table.c.state == SENDING, expired)
        .values(last_error=WORKER_LOST, **requeue)
    ).rowcount
    done.requeued_uncertain = session.execute(
        update(table).where(table.c.state == UNCERTAIN, expired).values(**requeue)
    ).rowcount
    return done


def cancel_queued(session: Session, campaign_id: int | None = None) -> int:
    """End the queued rows of cancelled campaigns (or of one campaign) as ``cancelled``."""
    condition = (
        table.c.campaign_id == campaign_id
        if campaign_id is not None
        else exists().where(
            campaigns.c.id == table.c.campaign_id, campaigns.c.status == "cancelled"
        )
    )
    statement = (
        update(table)
        .where(table.c.state == QUEUED, condition)
        .values(state=CANCELLED, lease_until=None, updated_at=utcnow())
    )
    return session.execute(statement).rowcount


def take_for_publishing(
    session: Session,
    stale_before: datetime | None,
    now: datetime | None = None,
    *,
    campaign_id: int | None = None,
    after: int = 0,
    limit: int = RECONCILE_CHUNK,
) -> dict[int, list[int]]:
    """Mark up to ``limit`` due queued rows as handed out; return their ids by campaign.

    Rows never handed out (or put back by a retry or an expired lease) are always taken.
    Rows handed out before ``stale_before`` are taken again only when the caller passes
    it, i.e. when the broker holds no backlog: then their task was lost (Redis restarted
    empty, or a killed worker held it unacknowledged). The caller fixes ``stale_before``
    once per pass, so rows taken in this pass are never taken twice in it.

    Only rows with ids above ``after`` are looked at: a pass continues from the last id
    of its previous chunk, so the database walks the outbox once per pass instead of
    passing over every row already taken for each chunk (a pass over 1,000,000 queued
    rows: 19 s this way, 147 s and growing with the square of the size without it).
    """
    now = now or utcnow()
    never = table.c.enqueued_at.is_(None)
    fresh = never if stale_before is None else or_(never, table.c.enqueued_at < stale_before)
    only = [] if campaign_id is None else [table.c.campaign_id == campaign_id]
    # A materialised CTE, run once: as a plain ``IN (subquery)`` PostgreSQL re-ran the
    # locking subquery for each row it updated, each run finding the next rows, and
    # the LIMIT bounded nothing (measured: all 230 rows taken for a limit of 100).
    due = (
        select(table.c.id)
        .where(QUEUED_ONLY, table.c.id > after, *_claimable(now), fresh, *only)
        .order_by(table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    statement = (
        update(table)
        .where(table.c.id.in_(select(due.c.id)), table.c.state == QUEUED, fresh)
        .values(enqueued_at=now)
        .returning(table.c.id, table.c.campaign_id)
    )
    taken: dict[int, list[int]] = {}
    for row_id, campaign_id in session.execute(statement):
        taken.setdefault(campaign_id, []).append(row_id)
    for ids in taken.values():
        ids.sort()
    return taken


def reconcile(
    url: str,
    broker: Broker,
    *,
    max_attempts: int,
    stale_after: float,
    campaign_id: int | None = None,
    max_backlog: int | None = None,
) -> Reconciled:
    """One pass: expire leases, end cancelled rows, hand out due work, finish campaigns.

    Run periodically (Celery beat in the service, a loop in embedded mode); every step
    is a conditional update, so two passes at once do no harm. ``campaign_id`` limits
    the work handed out to one campaign (the in-process runner sends only its own).
    Work is handed out until the broker holds ``max_backlog`` tasks (``MAX_BACKLOG`` by
    default); the rest waits in the database, never marked as handed out, for the next pass.
    """
    with transaction(url) as session:
        done = expire_leases(session, max_attempts)
        done.cancelled = cancel_queued(session)
    waiting = broker.backlog()
    stale = utcnow() - timedelta(seconds=stale_after) if waiting == 0 else None
    room = (MAX_BACKLOG if max_backlog is None else max_backlog) - waiting  # in tasks
    after = 0
    while room > 0:
        # A task carries at most BATCH_SIZE rows (fewer where a campaign's rows end).
        limit = min(RECONCILE_CHUNK, room * BATCH_SIZE)
        with transaction(url) as session:
            taken = take_for_publishing(
                session, stale, campaign_id=campaign_id, after=after, limit=limit
            )
        after = max((ids[-1] for ids in taken.values()), default=after)
        # Published after the commit: a crash in between leaves rows marked as handed
        # out with no task, and the next pass with an empty broker hands them out again.
        for owner, row_ids in taken.items():
            for batch in batches(row_ids):
                broker.publish(owner, batch)
                room -= 1
        handed = sum(len(ids) for ids in taken.values())
        done.published += handed
        if handed < limit:
            break
    with transaction(url) as session:
        done.finished = finish_campaigns(session)
    return done


def batches(row_ids: list[int], size: int = BATCH_SIZE) -> Iterable[list[int]]:
    """Split ``row_ids`` into the lists one task carries."""
    for start in range(0, len(row_ids), size):
        yield row_ids[start : start + size]


def finish_campaigns(session: Session, now: datetime | None = None) -> int:
    """Mark running campaigns ``done`` when no row can still be attempted."""
    now = now or utcnow()
    pending = exists().where(
        table.c.campaign_id == campaigns.c.id,
        or_(
            table.c.state.in_((QUEUED, SENDING)),
            and_(table.c.state == UNCERTAIN, table.c.lease_until.is_not(None)),
        ),
    )
    statement = (
        update(campaigns)
        .where(campaigns.c.status == "running", ~pending)
        .values(status="done", finished_at=now)
    )
    return session.execute(statement).rowcount


def counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Rows per state of one campaign, every state present; ``possible_duplicates`` and
    ``bounced_later`` (a bounce or complaint that came back by mail) too."""
    found = dict.fromkeys(STATES, 0)
    rows = session.execute(
        select(table.c.state, func.count())
        .where(table.c.campaign_id == campaign_id)
        .group_by(table.c.state)
    )
    for state, number in rows:
        found[state] = number
    found["possible_duplicates"] = session.execute(
        select(func.count()).where(
            table.c.campaign_id == campaign_id,
            table.c.uncertain_before.is_(True),
            table.c.state == SENT,
        )
    ).scalar_one()
    found["bounced_later"] = session.execute(
        select(func.count()).where(
            table.c.campaign_id == campaign_id, table.c.bounced_at.is_not(None)
        )
    ).scalar_one()
    return found


def not_handed_out(session: Session, campaign_id: int) -> int:
    """Queued rows of the campaign that no task carries yet (beyond the broker's backlog)."""
    return session.execute(
        select(func.count()).where(
            table.c.campaign_id == campaign_id,
            table.c.state == QUEUED,
            table.c.enqueued_at.is_(None),
        )
    ).scalar_one()


def next_wake(session: Session, campaign_id: int) -> datetime | None:
    """The earliest time a waiting row of the campaign becomes workable again."""
    retry = select(func.min(table.c.not_before)).where(
        table.c.campaign_id == campaign_id, table.c.state == QUEUED
    )
    lease = select(func.min(table.c.lease_until)).where(
        table.c.campaign_id == campaign_id, table.c.state.in_((SENDING, UNCERTAIN))
    )
    moments = [aware(session.execute(q).scalar_one_or_none()) for q in (retry, lease)]
    present = [m for m in moments if m is not None]
    return min(present) if present else None
