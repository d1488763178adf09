"""The audit log: who did what, when, from where; append-only and tamper-evident.

Every entry is hashed together with the hash of the entry before it, so changing an
entry in the database changes its hash, and removing one breaks the link from the next.
``verify`` walks the chain and names the first entry that does not fit.

The hashed serialisation of an entry is the UTF-8 of this JSON object, keys sorted, no
spaces (``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)``)::

    {"action": str, "actor": str, "at": "2026-01-31T09:00:00.000000Z" (UTC, microseconds),
     "client": str, "detail": {...}, "object": str, "prev": <hash of entry seq-1>,
     "seq": int}

``hash`` is the hex SHA-256 of it; the first entry's ``prev`` is 64 zeros. ``seq``
counts from 1 without gaps. Appends are serialised, so two writers never chain to the
same predecessor: on PostgreSQL an advisory lock held to commit, on SQLite
``BEGIN IMMEDIATE`` (the write lock is taken before the last hash is read).

Removing the newest entries leaves a shorter chain that is still intact; ``verify``
prints the count and the newest hash so that they can be kept elsewhere and compared.
Never written here: a subscriber's address. A person is named by id, or, once erased,
by the suppression list's keyed HMAC of the address.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from newsletter import db
from newsletter.models import AuditEntry, utcnow
from newsletter.settings import Settings

GENESIS = "0" * 64
# The PostgreSQL advisory lock held while an entry is appended (overlap.CREATE_LOCK is
# the only other one).
APPEND_LOCK = 0x6E6C6175
CLI_CLIENT = "cli"
VERIFY_PAGE = 1000
COLUMNS = ("seq", "at", "actor", "client", "action", "object", "detail", "hash")
# Cells starting with these are formulas to a spreadsheet; any text here could start with one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed for an entry (the module docstring draws them)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def timestamp(moment: datetime) -> str:
    """``moment`` as the UTC text that is hashed (SQLite returns naive UTC datetimes)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fields(row: AuditEntry) -> dict[str, Any]:
    """The entry's own fields, as they are hashed (without ``prev``)."""
    return {
        "seq": row.seq,
        "at": timestamp(row.at),
        "actor": row.actor,
        "client": row.client,
        "action": row.action,
        "object": row.object,
        "detail": row.detail,
    }


def entry_hash(row: AuditEntry) -> str:
    """The hash ``row`` must carry, from its own fields and its ``prev_hash``."""
    return hashlib.sha256(canonical({**_fields(row), "prev": row.prev_hash})).hexdigest()


def operator(settings: Settings) -> str:
    """The command line's actor: ``NEWSLETTER_OPERATOR``, else the system user."""
    name = settings.operator.strip()
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return f"cli:{name}"[:320]


def _lock_appends(session: Session) -> None:
    """Make this transaction the only one appending now; must be its first statement."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(APPEND_LOCK)))
    else:
        session.execute(text("BEGIN IMMEDIATE"))


def record(
    url: str,
    actor: str,
    action: str,
    obj: str = "",
    *,
    client: str = "",
    detail: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Append one entry to the audit log in its own transaction; return its ``seq``."""
    with db.transaction(url) as session:
        _lock_appends(session)
        last = session.execute(
            select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
        row = AuditEntry(
            seq=(last.seq + 1) if last else 1,
            at=(now or utcnow()).astimezone(UTC),
            actor=actor[:320],
            client=client[:64],
            action=action[:40],
            object=obj[:300],
            detail=dict(detail or {}),
            prev_hash=last.hash if last else GENESIS,
        )
        row.hash = entry_hash(row)
        session.add(row)
        return row.seq


def record_cli(settings: Settings, action: str, obj: str = "", **detail: Any) -> int:
    """Append an entry by the command line's operator."""
    actor = operator(settings)
    return record(settings.database, actor, action, obj, client=CLI_CLIENT, detail=detail)


# Verifying ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What ``verify`` found: how many entries, and the first that does not fit (or None)."""

    entries: int
    head: str
    problem: str | None = None

    def line(self) -> str:
        """One line for a person."""
        if self.problem:
            return self.problem
        return f"{self.entries} entries, chain intact (newest hash {self.head})"


def verify(url: str) -> Verdict:
    """Walk the chain in order; name the first entry altered, or the first removed."""
    expected_seq, prev, count, after = 1, GENESIS, 0, 0
    while True:
        with db.transaction(url) as session:  # a page at a time: the log only grows
            page = list(
                session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.seq > after)
                    .order_by(AuditEntry.seq)
                    .limit(VERIFY_PAGE)
                )
            )
        if not page:
            return Verdict(count, prev)
        for row in page:
            problem = _misfit(row, expected_seq, prev)
            if problem:
                return Verdict(count, prev, problem)
            expected_seq, prev, count = row.seq + 1, row.hash, count + 1
        after = page[-1].seq


def _misfit(row: AuditEntry, expected_seq: int, prev: str) -> str:
    """Why ``row`` does not follow an entry of hash ``prev`` at ``expected_seq``; '' if it does."""
    if row.seq != expected_seq or row.prev_hash != prev:
        if row.seq > expected_seq and entry_hash(row) == row.hash:
            return (
                f"audit entry {expected_seq} was removed "
                f"(the chain skips from entry {expected_seq - 1} to entry {row.seq}, id {row.id})"
            )
        return f"audit entry {row.seq} (id {row.id}) was altered: it does not follow entry {expected_seq - 1}"
    if entry_hash(row) != row.hash:
        return (
            f"audit entry {row.seq} (id {row.id}) was altered: its hash does not match its content"
        )
    return ""


# Reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the audit page narrows the log to; empty means any."""

    actor: str = ""
    action: str = ""
    obj: str = ""
    since: datetime | None = None
    until: datetime | None = None


def _filtered(filters: Filters) -> Select[tuple[AuditEntry]]:
    query = select(AuditEntry).order_by(AuditEntry.seq.desc())
    if filters.actor:
        query = query.where(AuditEntry.actor.contains(filters.actor, autoescape=True))
    if filters.action:
        query = query.where(AuditEntry.action.startswith(filters.action, autoescape=True))
    if filters.obj:
        query = query.where(AuditEntry.object.contains(filters.obj, autoescape=True))
    if filters.since is not None:
        query = query.where(AuditEntry.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.at < filters.until)
    return query


def entries(url: str, filters: Filters, limit: int = 200) -> list[dict[str, Any]]:
    """The newest entries that match, as plain values (``COLUMNS``)."""
    with db.transaction(url) as session:
        return [_values(row) for row in session.scalars(_filtered(filters).limit(limit))]


def actions(url: str) -> list[str]:
    """Every action name the log holds, for the page's filter."""
    with db.transaction(url) as session:
        return list(
            session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
        )


def _values(row: AuditEntry) -> dict[str, Any]:
    detail = json.dumps(row.detail, sort_keys=True, ensure_ascii=False)
    return {**_fields(row), "detail": detail, "hash": row.hash}


def neutralise(value: object) -> str:
    """A cell a spreadsheet will not run as a formula."""
    cell = str(value)
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Entries as CSV text, every cell formula-neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([neutralise(row[column]) for column in COLUMNS])
    return buffer.getvalue()
