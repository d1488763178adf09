"""Mailing lists: their summaries, and importing a list file into a list.

An import runs in one transaction, in two phases:

1. *Staging*: the file is read row by row; each row is validated (address, control
   characters, lengths), normalised and HMAC'd in Python, and written in batches of
   2,000 to a temporary table. Only a batch is held in memory, whatever the file size.
2. *Merging*: set-based SQL against the real tables: duplicates in the file merged,
   suppressed addresses and per-list unsubscribes set aside, new subscribers and
   memberships inserted with ``INSERT … SELECT``, and with ``--sync`` the members
   missing from the file removed. Only the rows of existing subscribers pass through
   Python again (a page at a time) to compare their profile fields.

A crash, an error or Ctrl-C anywhere rolls the whole transaction back: the list is
left exactly as it was. On SQLite the first statement that touches the real tables
is a write, so the import takes the write lock at once instead of failing to upgrade
a read lock that a concurrent writer invalidated.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from newsletter import db
from newsletter.audience.listfiles import ListFile, Row, open_list_file
from newsletter.audience.messages import msg
from newsletter.audience.subscribers import (
    ATTRIBUTES,
    CONTROL_CHARACTERS,
    email_hmac,
    normalise_email,
)
from newsletter.errors import InputError, ListChangedError, Message, NotFoundError
from newsletter.headers import UnsafeValueError, check_header_text
from newsletter.models import (
    ConsentEvent,
    ListImport,
    MailingList,
    Membership,
    Subscriber,
    Suppression,
    search_text,
    utcnow,
)

#: Rows written to the staging table per statement. 2,000 keeps a batch's memory
#: to about 1 MB while making per-statement overhead negligible.
BATCH = 2000
#: Rejections kept with their line and reason for the report; more are only counted.
MAX_REJECTIONS_SHOWN = 1000
#: Column lengths of ``subscribers`` (PostgreSQL enforces them; SQLite would not).
MAX_LENGTHS = {"name": 200, "municipality": 100, "role": 100}
MAX_ATTRIBUTE_LENGTH = 200
MAX_LIST_NAME = 200  # lists.name
PROFILE_FIELDS = ("name", "municipality", "role")
#: Values that go into every message's headers (To: "name" <email>): a row whose value
#: would be refused there, such as an encoded word that decodes to a line break, could
#: never be sent, so it is rejected here with the same check the message builder makes.
HEADER_FIELDS = ("email", "name")

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

Progress = Callable[[str, int, int], None]
#: Called inside the import's transaction just before it commits (see ``import_file``).
BeforeCommit = Callable[[Session, "ImportReport"], None]
#: The counts of a report that an import records and a fingerprint compares.
COUNTS = (
    "rows",
    "added",
    "updated",
    "unchanged",
    "suppressed",
    "duplicates",
    "removed",
    "rejected_count",
)

_staging_metadata = MetaData()
STAGING = Table(
    "import_rows",
    _staging_metadata,
    Column("line", Integer, primary_key=True),
    Column("email", String(320), nullable=False, index=True),
    Column("email_hmac", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("municipality", String(100), nullable=False),
    Column("role", String(100), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("search", Text, nullable=False),  # ``Subscriber.search`` of the row
    Column("subscriber_id", Integer, index=True),
    # NULL while undecided, then added | updated | unchanged | suppressed; or rejected
    Column("outcome", String(12)),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


@dataclass
class Rejection:
    """A row that was not imported, and why: ``reason`` in English, ``message`` by its code."""

    line: int
    reason: str
    message: Message | None = None


@dataclass
class ImportReport:
    """What an import did (or, with ``dry_run``, would have done)."""

    path: Path
    slug: str
    dry_run: bool = False
    sync: bool = False
    list_created: bool = False
    encoding: str = ""
    delimiter: str = ""
    ignored_columns: tuple[str, ...] = ()
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    duplicates: int = 0
    removed: int = 0
    rejected_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    stopped_at: int = 0  # the line where a run of empty rows ended the reading, or 0
    sha256: str = ""  # of the file's bytes
    #: With ``sync``: addresses of the members removed (or, dry, who would be), in order,
    #: the first ``MAX_REJECTIONS_SHOWN`` of ``removed``.
    leaving: list[str] = field(default_factory=list)
    #: A digest of the list's members as they were before this import changed them.
    list_state: str = ""

    def reject(self, line: int, reason: str | Message) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTIONS_SHOWN:
            coded = reason if isinstance(reason, Message) else None
            self.rejected.append(Rejection(line, str(reason), coded))

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.list_created)

    def counts(self) -> dict[str, int]:
        """The report's counts by name (``rejected`` for ``rejected_count``)."""
        return {c.removesuffix("_count"): getattr(self, c) for c in COUNTS}

    def fingerprint(self) -> str:
        """A digest of the list as it was and of everything the import does to it.

        Two runs with the same fingerprint start from the same members and make the same
        changes, so a dry run's fingerprint confirms exactly what it showed.
        """
        outcome = {
            "state": self.list_state,
            "sha256": self.sha256,
            "sync": self.sync,
            "created": self.list_created,
            "counts": self.counts(),
            "leaving": self.leaving,
            "rejected": [(r.line, r.reason) for r in self.rejected],
        }
        return hashlib.sha256(json.dumps(outcome, sort_keys=True).encode()).hexdigest()


class _DryRun(Exception):
    """Raised at the end of a dry run to roll the transaction back."""


#: Who made an import from the command line, as ``list_imports.by`` keeps it.
COMMAND_LINE = "command line"


def import_file(
    url: str,
    key: bytes,
    path: Path,
    slug: str,
    *,
    sync: bool = False,
    dry_run: bool = False,
    name: str = "",
    progress: Progress | None = None,
    by: str = "",
    expected: str = "",
    before_commit: BeforeCommit | None = None,
) -> ImportReport:
    """Import the list file at ``path`` into the list ``slug`` (created when missing).

    All or nothing; with ``dry_run`` everything is done and then rolled back, so the
    report is exact. Raises ``SubscriberFileError`` for a file that cannot be read and
    ``InputError`` for a bad slug or list name; bad rows are reported, not raised.

    A committed import is recorded in ``list_imports`` as done ``by`` (an editor's
    address, or the command). With ``expected`` (a dry run's ``fingerprint()``), an
    import whose list or outcome differs from that dry run's is rolled back and raises
    ``ListChangedError`` carrying the report of what it would do now. ``before_commit``
    runs in the transaction last; whatever it raises rolls everything back.
    """
    if not _SLUG.fullmatch(slug):
        raise InputError(msg("import.slug", slug=slug))
    if len(name) > MAX_LIST_NAME:
        raise InputError(msg("import.name_too_long", limit=MAX_LIST_NAME))
    if CONTROL_CHARACTERS.search(name):
        raise InputError(msg("import.name_control"))
    report = ImportReport(path=path, slug=slug, dry_run=dry_run, sync=sync)
    step: Progress = progress or (lambda stage, done, total: None)
    try:
        with db.transaction(url) as session, open_list_file(path) as listfile:
            _create_staging(session)
            _stage(session, key, listfile, report, step)
            _merge(session, listfile, report, step, name)
            _drop_staging(session)
            if dry_run:
                raise _DryRun
            if expected and report.fingerprint() != expected:
                report.dry_run = True
                raise ListChangedError(report)
            _record_import(session, report, by)
            if before_commit is not None:
                before_commit(session, report)
    except _DryRun:
        return report
    # The next search and the next campaign are planned from these tables' statistics.
    changed = report.added + report.updated + report.removed
    db.refresh_statistics(url, ("subscribers", "memberships"), changed=changed)
    return report


def import_detail(report: ImportReport) -> dict[str, object]:
    """What the audit log keeps of an import: the file's name and hash, and the counts."""
    return {"file": report.path.name, "sha256": report.sha256, **report.counts()}


def _record_import(session: Session, report: ImportReport, by: str) -> None:
    list_id = session.scalar(select(MailingList.id).where(MailingList.slug == report.slug))
    session.add(
        ListImport(
            list_id=list_id,
            at=utcnow(),
            by=by[:320],
            file_name=report.path.name[:300],
            sha256=report.sha256,
            counts=report.counts(),
        )
    )
    session.flush()


# Staging -------------------------------------------------------------------------------


def _create_staging(session: Session) -> None:
    connection = session.connection()
    connection.exec_driver_sql("DROP TABLE IF EXISTS import_rows")
    STAGING.create(connection)


def _drop_staging(session: Session) -> None:
    session.connection().exec_driver_sql("DROP TABLE IF EXISTS import_rows")


def _stage(
    session: Session, key: bytes, listfile: ListFile, report: ImportReport, step: Progress
) -> None:
    """Validate every row and write the good ones to the staging table in batches."""
    report.encoding, report.delimiter = listfile.encoding, listfile.delimiter
    report.sha256 = listfile.sha256
    report.ignored_columns = listfile.ignored
    importable = 0
    for batch in _batches(listfile.rows(), BATCH):
        staged = []
        for row in batch:
            report.rows += 1
            values, reason = _staging_row(key, row)
            if reason:
                report.reject(row.line, reason)
            else:
                importable += 1
            if values:
                staged.append(values)
        if staged:
            _write_staged(session, staged)
        step("reading", listfile.position(), listfile.size)
    report.stopped_at = listfile.stopped_at()
    if report.sync and not importable:
        raise InputError(msg("import.sync_nothing"), path=listfile.path)
    _analyze(session)


def _write_staged(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write a batch to the staging table: COPY on PostgreSQL, one executemany on SQLite.

    COPY because psycopg's executemany cost about 55 µs a row (6.9 s per 100,000).
    """
    if not _is_postgresql(session):
        session.execute(STAGING.insert(), rows)
        return
    columns = ("line", "email", "email_hmac", *PROFILE_FIELDS, "search", "outcome", "attributes")
    connection = session.connection().connection.dbapi_connection
    with (
        connection.cursor() as cursor,  # type: ignore[union-attr]
        cursor.copy(f"COPY import_rows ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([*(row[c] for c in columns[:-1]), json.dumps(row["attributes"])])


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _analyze(session: Session) -> None:
    """Give PostgreSQL's planner statistics of the staging table (autovacuum skips temp
    tables); without them the page queries below scanned the whole table each time."""
    if _is_postgresql(session):
        session.connection().exec_driver_sql("ANALYZE import_rows")


def _batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _staging_row(key: bytes, row: Row) -> tuple[dict[str, Any] | None, Message | None]:
    """Return (staging values, rejection reason or None) for one row.

    A rejected row whose address is valid is still staged, marked ``rejected`` and
    with nothing else from it: the person is in the file, so ``--sync`` must not
    remove them, and nothing else uses the row. Without a valid address: (None, reason).
    """
    values = row.values
    try:
        address = normalise_email(values["email"])
    except InputError as exc:
        return None, exc.coded or Message("", exc.reason)
    reason = _problem(row)
    attributes = {} if reason else {k: values[k] for k in ATTRIBUTES if values.get(k)}
    staged = {
        "line": row.line,
        "email": address,
        "email_hmac": email_hmac(key, address),
        **{column: "" if reason else values.get(column, "") for column in PROFILE_FIELDS},
        "attributes": attributes,
        "outcome": "rejected" if reason else None,
    }
    return {**staged, "search": _search_of(staged)}, reason


def _search_of(values: Any) -> str:
    """``Subscriber.search`` of a staged row or of a subscriber's merged values."""
    institution = str(values["attributes"].get("institution", ""))
    return search_text(values["email"], values["name"], values["municipality"], institution)


def _problem(row: Row) -> Message | None:
    """Why a row with a valid address cannot be imported, or None."""
    if row.overflow is not None:
        return msg("row.overflow", values=row.overflow[0], columns=row.overflow[1])
    values = row.values
    for column, text in values.items():
        if CONTROL_CHARACTERS.search(text):
            return msg("row.control", column=column)
    for column in HEADER_FIELDS:
        try:
            check_header_text(values.get(column, ""))
        except UnsafeValueError as exc:
            return msg("row.header", column=column, detail=str(exc))
    for column, limit in MAX_LENGTHS.items():
        if len(values.get(column, "")) > limit:
            return msg("row.too_long", column=column, limit=limit)
    if any(len(values.get(k, "")) > MAX_ATTRIBUTE_LENGTH for k in ATTRIBUTES):
        return msg("row.attribute_too_long", limit=MAX_ATTRIBUTE_LENGTH)
    return None


# Merging -------------------------------------------------------------------------------


def _merge(
    session: Session, listfile: ListFile, report: ImportReport, step: Progress, name: str
) -> None:
    """Apply the staged rows to the real tables, set-based; fill the report's counts."""
    list_id = _take_list(session, report, name)
    report.list_state = _list_state(session, list_id)
    now = utcnow()
    source = listfile.path.name
    stages: list[tuple[str, Callable[[], None]]] = [
        ("duplicates", lambda: _merge_duplicates(session, report)),
        ("suppressed", lambda: _set_aside_suppressed(session, list_id)),
        ("compare", lambda: _update_existing(session, now)),
        ("subscribers", lambda: _insert_subscribers(session, now)),
        (
            "memberships",
            lambda: _insert_memberships(session, list_id, now, source, listfile.sha256),
        ),
    ]
    if report.sync:
        stages.append(("sync", lambda: _remove_missing(session, report, list_id, now, source)))
    for number, (stage, run) in enumerate(stages, start=1):
        step(stage, number - 1, len(stages))
        run()
    step("done", len(stages), len(stages))
    by_outcome = select(STAGING.c.outcome, func.count()).group_by(STAGING.c.outcome)
    counts = {outcome: number for outcome, number in session.execute(by_outcome)}
    report.added = counts.get("added", 0)
    report.updated = counts.get("updated", 0)
    report.unchanged = counts.get("unchanged", 0)
    report.suppressed = counts.get("suppressed", 0)


def _take_list(session: Session, report: ImportReport, name: str) -> int:
    """Find or create the list and return its id; the first statement is a write (see top)."""
    lists = MailingList.__table__
    changed = session.execute(
        update(lists)
        .where(lists.c.slug == report.slug)
        .values(name=case((literal(name) != "", literal(name)), else_=lists.c.name))
    ).rowcount
    if not changed:
        session.execute(
            lists.insert().values(
                slug=report.slug, name=name or report.slug, description="", created_at=utcnow()
            )
        )
        report.list_created = True
    return session.execute(select(lists.c.id).where(lists.c.slug == report.slug)).scalar_one()


def _list_state(session: Session, list_id: int) -> str:
    """A digest of who is on the list, in which state, and when they last changed.

    Every change to a member moves one of these: joining or leaving changes the count
    and the id sums, a new state the per-state sums, an edit of the person or of the
    membership the latest ``updated_at``.
    """
    receiving = Membership.status + ":" + Subscriber.status
    state = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Membership.subscriber_id), 0),
            func.coalesce(
                func.sum(case((receiving == "active:active", Membership.subscriber_id))), 0
            ),
            func.coalesce(
                func.sum(case((Membership.status == "pending", Membership.subscriber_id))), 0
            ),
            func.max(Membership.updated_at),
            func.max(Subscriber.updated_at),
        )
        .select_from(Membership)
        .join(Subscriber, Subscriber.id == Membership.subscriber_id)
        .where(Membership.list_id == list_id)
    ).one()
    return hashlib.sha256(repr(tuple(str(v) for v in state)).encode()).hexdigest()


def _merge_duplicates(session: Session, report: ImportReport) -> None:
    """Merge rows of the same address into its first row: later non-blank values win."""
    after = ""
    while True:
        emails = list(
            session.scalars(
                select(STAGING.c.email)
                .where(STAGING.c.email > after, STAGING.c.outcome.is_(None))
                .group_by(STAGING.c.email)
                .having(func.count() > 1)
                .order_by(STAGING.c.email)
                .limit(BATCH)
            )
        )
        if not emails:
            return
        rows = session.execute(
            select(STAGING)
            .where(STAGING.c.email.in_(emails), STAGING.c.outcome.is_(None))
            .order_by(STAGING.c.email, STAGING.c.line)
        ).mappings()
        merged: dict[str, dict[str, Any]] = {}
        extra_lines: list[int] = []
        for row in rows:
            if row["email"] not in merged:
                merged[row["email"]] = {**row, "attributes": dict(row["attributes"])}
                continue
            target = merged[row["email"]]
            target.update({f: row[f] for f in PROFILE_FIELDS if row[f]})
            target["attributes"].update(row["attributes"])
            extra_lines.append(row["line"])
        session.execute(STAGING.delete().where(STAGING.c.line.in_(extra_lines)))
        session.execute(
            update(STAGING).where(STAGING.c.line == bindparam("b_line")),
            [
                {
                    "b_line": m["line"],
                    "attributes": m["attributes"],
                    "search": _search_of(m),
                    **{f: m[f] for f in PROFILE_FIELDS},
                }
                for m in merged.values()
            ],
        )
        report.duplicates += len(extra_lines)
        after = emails[-1]


def _link_subscribers(session: Session) -> None:
    """Set ``subscriber_id`` on staged rows whose address is already a subscriber.

    ``UPDATE … FROM`` (a join) rather than a correlated subquery: on PostgreSQL the
    subquery form took 2.2 s for 100,000 rows.
    """
    st = STAGING.c
    session.execute(
        update(STAGING)
        .where(st.subscriber_id.is_(None), Subscriber.email == st.email)
        .values(subscriber_id=Subscriber.id)
    )


def _set_aside_suppressed(session: Session, list_id: int) -> None:
    """Link rows to existing subscribers; mark those that must not be (re-)added."""
    st = STAGING.c
    _link_subscribers(session)
    unsubscribed_here = select(Membership.subscriber_id).where(
        Membership.list_id == list_id, Membership.status == "unsubscribed"
    )
    inactive = select(Subscriber.id).where(Subscriber.status != "active")
    session.execute(
        update(STAGING)
        .where(
            st.outcome.is_(None),
            st.email_hmac.in_(select(Suppression.email_hmac))
            | st.subscriber_id.in_(inactive)
            | st.subscriber_id.in_(unsubscribed_here),
        )
        .values(outcome="suppressed")
    )
    members = select(Membership.subscriber_id).where(Membership.list_id == list_id)
    session.execute(
        update(STAGING)
        .where(st.outcome.is_(None), st.subscriber_id.is_(None) | st.subscriber_id.not_in(members))
        .values(outcome="added")
    )
    _analyze(session)


def _update_existing(session: Session, now: Any) -> None:
    """Update existing subscribers whose non-blank file values differ; mark them updated.

    The comparison is made in Python, a page of staged rows at a time, each page's
    subscribers fetched by primary key. (A join per page let PostgreSQL, without
    statistics on rows written in this transaction, hash all subscribers for every
    page: 70 ms a page, 3.5 s per 100,000 rows.) Attributes are compared as JSON text
    first and decoded only when the texts differ (decoding them all cost 1.5 s).
    """
    st = STAGING.c
    after = 0
    while True:
        page = session.execute(
            select(st.line, st.subscriber_id, st.outcome, *_profile_columns(STAGING.c))
            .where(
                st.line > after,
                st.subscriber_id.is_not(None),
                st.outcome.is_(None) | (st.outcome == "added"),
            )
            .order_by(st.line)
            .limit(BATCH)
        ).all()
        if not page:
            break
        ids = [staged.subscriber_id for staged in page]
        current, emails = {}, {}
        for row in session.execute(
            select(Subscriber.id, Subscriber.email, *_profile_columns(Subscriber)).where(
                Subscriber.id.in_(ids)
            )
        ):
            current[row[0]], emails[row[0]] = tuple(row[2:]), row[1]
        changes, updated_lines = [], []
        for staged in page:
            now_held = current[staged.subscriber_id]
            patch = _profile_patch(tuple(staged[3:]), now_held)
            if patch:
                search = _patched_search(emails[staged.subscriber_id], now_held, patch)
                changes.append(
                    {"id": staged.subscriber_id, "updated_at": now, "search": search, **patch}
                )
                if staged.outcome is None:
                    updated_lines.append(staged.line)
        if changes:
            session.execute(update(Subscriber), changes)
        if updated_lines:
            session.execute(
                update(STAGING).where(st.line.in_(updated_lines)).values(outcome="updated")
            )
        after = page[-1].line
    session.execute(update(STAGING).where(st.outcome.is_(None)).values(outcome="unchanged"))


def _profile_columns(source: Any) -> list[Any]:
    """name, municipality, role and the attributes as JSON text, of a table or model."""
    return [getattr(source, f) for f in PROFILE_FIELDS] + [cast(source.attributes, Text)]


def _profile_patch(staged: tuple[Any, ...], current: tuple[Any, ...]) -> dict[str, Any]:
    """The profile fields a staged row changes (blank values never erase anything)."""
    patch: dict[str, Any] = {
        column: new
        for column, new, old in zip(PROFILE_FIELDS, staged, current, strict=False)
        if new and new != old
    }
    new_text, old_text = staged[-1], current[-1]
    if new_text != old_text and new_text != "{}":
        old_attributes = json.loads(old_text or "{}")
        attributes = {**old_attributes, **json.loads(new_text)}
        if attributes != old_attributes:
            patch["attributes"] = attributes
    return patch


def _patched_search(email: str, current: tuple[Any, ...], patch: dict[str, Any]) -> str:
    """``Subscriber.search`` once ``patch`` is applied to the ``current`` profile columns."""
    values = dict(zip(PROFILE_FIELDS, current, strict=False))
    values["attributes"] = json.loads(current[-1] or "{}")
    values.update(patch)
    return _search_of({**values, "email": email})


def _upsert(session: Session) -> Any:
    """The dialect's INSERT with ON CONFLICT support."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _insert_subscribers(session: Session, now: Any) -> None:
    """Insert the new addresses in one statement, then link their rows to the new ids."""
    st = STAGING.c
    new_rows = select(
        st.email,
        st.name,
        st.municipality,
        st.role,
        st.attributes,
        st.search,
        literal("active"),
        literal(0),
        literal(now, Subscriber.created_at.type),
        literal(now, Subscriber.updated_at.type),
    ).where(st.outcome == "added", st.subscriber_id.is_(None))
    columns = [
        "email",
        "name",
        "municipality",
        "role",
        "attributes",
        "search",
        "status",
        "bounce_count",
        "created_at",
        "updated_at",
    ]
    # ON CONFLICT: a concurrent import may have inserted the same address meanwhile.
    session.execute(
        _upsert(session)(Subscriber)
        .from_select(columns, new_rows)
        .on_conflict_do_nothing(index_elements=["email"])
    )
    _link_subscribers(session)
    _analyze(session)


def _insert_memberships(session: Session, list_id: int, now: Any, source: str, sha256: str) -> None:
    """Add the new members to the list, each with an ``import`` consent event."""
    st = STAGING.c
    added = st.outcome == "added"
    session.execute(
        _upsert(session)(Membership)
        .from_select(
            ["subscriber_id", "list_id", "status", "created_at", "updated_at"],
            select(
                st.subscriber_id,
                literal(list_id),
                literal("active"),
                literal(now, Membership.created_at.type),
                literal(now, Membership.updated_at.type),
            ).where(added),
        )
        .on_conflict_do_nothing(index_elements=["subscriber_id", "list_id"])
    )
    _record_events(
        session,
        select(st.subscriber_id).where(added),
        list_id,
        "import",
        source,
        {"sha256": sha256},
        now,
    )


def _record_events(
    session: Session,
    subscriber_ids: Any,
    list_id: int,
    kind: str,
    source: str,
    detail: dict[str, Any],
    now: Any,
) -> None:
    ids = subscriber_ids.subquery()
    session.execute(
        ConsentEvent.__table__.insert().from_select(
            ["subscriber_id", "list_id", "kind", "source", "text_version", "at", "detail"],
            select(
                ids.c.subscriber_id,
                literal(list_id),
                literal(kind),
                literal(source[:300]),
                literal(""),
                literal(now, ConsentEvent.at.type),
                literal(detail, JSON),
            ),
        )
    )


def _remove_missing(
    session: Session, report: ImportReport, list_id: int, now: Any, source: str
) -> None:
    """``--sync``: remove members not in the file; unsubscribed rows are kept (they are refusals)."""
    in_file = select(STAGING.c.subscriber_id).where(STAGING.c.subscriber_id.is_not(None))
    missing = (
        (Membership.list_id == list_id)
        & (Membership.status != "unsubscribed")
        & Membership.subscriber_id.not_in(in_file)
    )
    report.leaving = list(
        session.scalars(
            select(Subscriber.email)
            .join(Membership, Membership.subscriber_id == Subscriber.id)
            .where(missing)
            .order_by(Subscriber.email)
            .limit(MAX_REJECTIONS_SHOWN)
        )
    )
    _record_events(
        session,
        select(Membership.subscriber_id).where(missing),
        list_id,
        "admin",
        source,
        {"action": "removed from the list: not in the list file"},
        now,
    )
    report.removed = session.execute(Membership.__table__.delete().where(missing)).rowcount


# Summaries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListSummary:
    """A list with its member counts by membership state, and how it is shown."""

    slug: str
    name: str
    active: int
    unsubscribed: int
    pending: int
    bounced: int = 0
    description: str = ""
    public: bool = True
    archived: bool = False


def list_summaries(session: Session) -> list[ListSummary]:
    """Every list with active, unsubscribed, pending and bounced counts, in slug order.

    ``active`` counts only members who can receive mail (the subscriber is active too).
    ``bounced`` counts members whose address bounced (and who did not unsubscribe).
    Archived lists are included (``archived``); the pages decide where to show them.
    """
    receiving = (Membership.status == "active") & (Subscriber.status == "active")
    bounced = (Membership.status != "unsubscribed") & (Subscriber.status == "bounced")
    counts = (
        select(
            MailingList.slug,
            MailingList.name,
            func.count().filter(receiving),
            func.count().filter(Membership.status == "unsubscribed"),
            func.count().filter(Membership.status == "pending"),
            func.count().filter(bounced),
            MailingList.description,
            MailingList.public,
            MailingList.archived_at.is_not(None),
        )
        .select_from(MailingList)
        .outerjoin(Membership, Membership.list_id == MailingList.id)
        .outerjoin(Subscriber, Subscriber.id == Membership.subscriber_id)
        .group_by(MailingList.id)
        .order_by(MailingList.slug)
    )
    return [ListSummary(*row) for row in session.execute(counts)]


@dataclass(frozen=True)
class LastImport:
    """The latest import into a list, as ``list_imports`` recorded it."""

    slug: str
    at: Any
    by: str
    file_name: str
    sha256: str
    counts: dict[str, int]


def last_imports(session: Session) -> dict[str, LastImport]:
    """The latest import of each list that has one, by list slug."""
    latest = select(func.max(ListImport.id)).group_by(ListImport.list_id).scalar_subquery()
    rows = session.execute(
        select(MailingList.slug, ListImport)
        .join(ListImport, ListImport.list_id == MailingList.id)
        .where(ListImport.id.in_(latest))
    )
    return {
        slug: LastImport(slug, row.at, row.by, row.file_name, row.sha256, dict(row.counts))
        for slug, row in rows
    }


def list_slugs(session: Session) -> Sequence[str]:
    """Slugs of every list, sorted."""
    return session.scalars(select(MailingList.slug).order_by(MailingList.slug)).all()


def current_lists(session: Session, *, public_only: bool = False) -> list[MailingList]:
    """Lists that are not archived, by name: the campaign form's; ``public_only``: /subscribe's."""
    query = select(MailingList).where(MailingList.archived_at.is_(None))
    if public_only:
        query = query.where(MailingList.public.is_(True))
    return list(session.scalars(query.order_by(MailingList.name, MailingList.slug)))


# Creating and changing lists -----------------------------------------------------------

MAX_DESCRIPTION = 2000


def check_slug(slug: str) -> None:
    """InputError (``slug: …``) unless ``slug`` is a list's short name: a-z, 0-9 and '-'."""
    if not _SLUG.fullmatch(slug):
        raise InputError(msg("list.slug", slug=slug))


def check_list_text(name: str, description: str) -> None:
    """InputError naming the field when a list's name or description cannot be kept."""
    if not name.strip():
        raise InputError(msg("list.name_required"))
    if len(name) > MAX_LIST_NAME or CONTROL_CHARACTERS.search(name):
        raise InputError(msg("list.name_too_long", limit=MAX_LIST_NAME))
    if len(description) > MAX_DESCRIPTION:
        raise InputError(msg("list.description_too_long", limit=MAX_DESCRIPTION))


def create_list(
    session: Session, slug: str, name: str, description: str = "", *, public: bool = False
) -> MailingList:
    """Create a list; InputError (``slug: …``) when the short name is taken or malformed."""
    check_slug(slug)
    check_list_text(name, description)
    if session.scalar(select(MailingList.id).where(MailingList.slug == slug)) is not None:
        raise InputError(msg("list.slug_taken", slug=slug))
    created = MailingList(
        slug=slug, name=name.strip(), description=description.strip(), public=public
    )
    session.add(created)
    session.flush()
    return created


def find_list(session: Session, slug: str) -> MailingList:
    """The list ``slug``; NotFoundError naming it."""
    found = session.scalar(select(MailingList).where(MailingList.slug == slug))
    if found is None:
        raise NotFoundError(f"no list {slug!r}")
    return found


def change_list(
    session: Session, slug: str, *, name: str, description: str, public: bool
) -> MailingList:
    """Rename, describe and mark a list public or not (its slug stays: mail links name it)."""
    check_list_text(name, description)
    found = find_list(session, slug)
    found.name, found.description, found.public = name.strip(), description.strip(), public
    return found


def archive_list(session: Session, slug: str, *, archived: bool = True) -> MailingList:
    """Archive a list (hidden from new campaigns and /subscribe, members kept), or bring it back."""
    found = find_list(session, slug)
    if archived and found.archived_at is None:
        found.archived_at = utcnow()
    elif not archived:
        found.archived_at = None
    return found
