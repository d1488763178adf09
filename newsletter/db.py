"""Database access: engines, sessions, migrations, and the translation of database errors.

SQLite is the embedded default (one file, WAL mode so readers never block the writer);
PostgreSQL is used at scale. Both are migrated by Alembic to the same schema. Errors
of SQLAlchemy that are about the database itself (connection lost, disk full, a lock
not granted) become ``newsletter.errors.DatabaseError`` here, in ``database_error``.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from newsletter.errors import (
    ConfigError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnavailableError,
    DiskFullError,
    SchemaMissingError,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def _not_a_second_report(record: logging.LogRecord) -> bool:
    """Drop psycopg's "error ignored terminating <Pipeline>" when a connection dies.

    An executemany runs in a pipeline; when the server goes away mid-way psycopg logs the
    lost connection once more while the error itself is raised, mapped (``database_error``)
    and reported in one line. The log line would be a second, raw report of it.
    """
    return not str(record.msg).startswith("error ignored terminating")


logging.getLogger("psycopg").addFilter(_not_a_second_report)
# The write-ahead log is copied back into the database every this many pages (1000 by
# default: a 400-recipient send grew it to 4 MB, about 10 KB per recipient, and a
# volume with less free space stopped the campaign). After a checkpoint the file is cut
# back to WAL_SIZE_LIMIT; only one transaction larger than that (an import, a
# materialisation) grows it further, for as long as it runs.
WAL_CHECKPOINT_PAGES = 100
WAL_SIZE_LIMIT = 1024 * 1024
# Connections a process keeps open, and how many more it may open for a burst. The web
# app runs each request's database work on one of anyio's 40 worker threads. SQLAlchemy's
# default (5 kept, 10 more closed again when given back) made 20 concurrent one-click
# POSTs open a new connection for every fourth to sixth request (on PostgreSQL a server
# process forked and a SCRAM login: 5 ms, far more on a busy machine; on SQLite six
# PRAGMAs) while the rest queued for one (benchmarks/unsubscribe.py). Connections are
# opened only when needed, so a worker that uses one keeps one; kept plus extra covers
# the web's 40 threads.
POOL_SIZE = 20
POOL_OVERFLOW = 20
# Free space a SQLite database needs beside it to keep sending: the log between two
# checkpoints, cut back to WAL_SIZE_LIMIT, and room for the rows' outcomes.
SQLITE_ROOM = 2 * WAL_SIZE_LIMIT


def is_sqlite(engine: Engine) -> bool:
    """True when ``engine`` talks to SQLite (no SKIP LOCKED; conditional updates only)."""
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL: readers do not block the writer, so the preview and the status page stay
    # responsive while a send runs. busy_timeout: concurrent workers wait for the
    # write lock instead of failing with "database is locked" at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``, creating the SQLite file's folder when needed."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"NEWSLETTER_DATABASE_URL is not a database URL: {url!r}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            pool = {}  # one in-memory database per connection: no pool of them to size
        engine = create_engine(parsed, connect_args={"timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **pool)


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    """Return the one shared engine for ``url`` in this process (kept until ``dispose``)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def forget_inherited() -> None:
    """In a forked child, drop the parent's engines without closing their connections.

    A connection shared across a fork corrupts both sides' sessions; ``close=False``
    leaves the parent's sockets alone and makes this process open its own.
    """
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose(close=False)


def dispose(url: str) -> None:
    """Close the pooled connections of ``url``'s engine and forget it."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


_factories: dict[str, sessionmaker[Session]] = {}


def session_factory(url: str) -> sessionmaker[Session]:
    """Return the session factory bound to the shared engine for ``url``.

    Kept per engine: building a ``sessionmaker`` per transaction was a tenth of the CPU
    time of a one-click unsubscribe.
    """
    engine = engine_for(url)
    factory = _factories.get(url)
    if factory is None or factory.kw.get("bind") is not engine:
        factory = _factories[url] = sessionmaker(engine, expire_on_commit=False)
    return factory


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any exception."""
    with session_factory(url).begin() as session:
        yield session


_writer_locks: dict[str, threading.Lock] = {}


@contextmanager
def _writer_turn(url: str) -> Iterator[None]:
    """On SQLite, wait for this process's other writers of ``url``; elsewhere nothing.

    SQLite has a single writer. A connection that finds the lock taken polls for it under
    its busy timeout, sleeping 1, 2, 5 … up to 100 ms between tries, so among many
    concurrent writers one that has waited a while keeps losing to newcomers: 20
    concurrent one-click unsubscribes had a p99 of 1.45 s and requests past 2 s while
    each write holds the lock for about a millisecond (benchmarks/unsubscribe.py).
    Threads of one process queue on a Python lock instead and get the database as soon
    as it is free; other processes (a sending worker) still meet the busy timeout.
    """
    if not is_sqlite(engine_for(url)):
        yield
        return
    with _engines_lock:
        lock = _writer_locks.setdefault(url, threading.Lock())
    with lock:
        yield


@contextmanager
def write_transaction(url: str) -> Iterator[Session]:
    """A transaction that will write; on SQLite, one such at a time in this process."""
    with _writer_turn(url), transaction(url) as session:
        yield session


# PostgreSQL plans from statistics that autovacuum refreshes in its own time, a minute or
# more after a change (never where it is off). Right after a large import the planner
# still believes a table empty, and chose a nested loop that read every subscriber of
# the range once per membership: 1.9 s to materialise 5,000 recipients instead of
# 20 ms, and at 1,000,000 one batch's time squared. A table is analysed at once when it
# changed by at least STALE_FRACTION of its rows and STALE_MINIMUM rows (autovacuum's own
# trigger is 10% plus 50 rows).
STALE_FRACTION = 0.1
STALE_MINIMUM = 1000

_STATISTICS = """
SELECT s.relname, s.n_mod_since_analyze, c.reltuples
FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND s.relname = ANY(:names)
"""


def refresh_statistics(url: str, tables: Sequence[str], changed: int = 0) -> list[str]:
    """ANALYZE those of ``tables`` whose PostgreSQL statistics lag their contents; which.

    ``changed`` adds rows the caller just changed in each of them itself, which the
    server's counters may not show yet (a backend reports them at most once a second). Nothing on SQLite,
    whose planner needs no statistics for these queries.
    """
    engine = engine_for(url)
    if engine.dialect.name != "postgresql":
        return []
    stale = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        rows = connection.execute(text(_STATISTICS), {"names": list(tables)}).all()
        for name, modified, estimated in rows:
            modified = (modified or 0) + changed
            if modified >= STALE_MINIMUM and modified >= STALE_FRACTION * max(estimated, 0):
                stale.append(name)
        for name in stale:
            connection.execute(text(f'ANALYZE "{name}"'))
    return stale


@contextmanager
def write_connection(url: str) -> Iterator[Connection]:
    """``write_transaction`` without the ORM: a Core connection in one write transaction."""
    with _writer_turn(url), engine_for(url).begin() as connection:
        yield connection


@contextmanager
def autocommit(url: str) -> Iterator[Connection]:
    """A Core connection on which each statement is a transaction of its own.

    For reads, and for a write that is one statement: on PostgreSQL it saves the round
    trips of BEGIN and COMMIT (a statement commits, durably, before it returns, or
    changes nothing). Not for a write on SQLite: it would skip ``write_connection``'s queue.
    """
    with engine_for(url).connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine_for(url)
    try:
        command.upgrade(config, "head")
    except OperationalError as exc:
        mapped = database_error(exc, url)
        if mapped is not None:
            raise mapped from exc
        raise ConfigError(f"cannot reach the database: {exc.orig}") from exc


# Translating database errors ------------------------------------------------------------

# SQLite's primary result codes (https://www.sqlite.org/rescode.html).
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 5, 6, 10, 13, 14
# PostgreSQL's SQLSTATEs (Appendix A of its manual): class 08 is "connection exception".
PG_DISK_FULL = "53100"
PG_UNAVAILABLE = {
    "53300",  # too_many_connections
    "57P01",  # admin_shutdown (also: a backend told the postmaster died)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up, recovering)
}
PG_BUSY = {
    "55P03",  # lock_not_available (lock_timeout)
    "57014",  # query_canceled (statement_timeout)
    "40P01",  # deadlock_detected
    "40001",  # serialization_failure
}
# undefined_table, undefined_column: a database not migrated to this version.
PG_SCHEMA_MISSING = {"42P01", "42703"}
SQLITE_SCHEMA_MISSING = ("no such table", "no such column", "has no column named")
MIGRATE_FIX = "run `newsletter migrate` against it"
UNAVAILABLE_FIX = "check that the database server is running and reachable"
BUSY_FIX = "wait until the other work on the database has finished"


def database_error(exc: BaseException, url: str | None = None) -> DatabaseError | None:
    """The package's error for a SQLAlchemy error about the database itself, else None.

    Connection lost or refused, the server shutting down or starting up, a lock or
    statement timeout, a deadlock, a full disk: each is one line saying what happened
    and what to do. Anything else (a constraint violated, bad SQL) is a bug and None.
    ``url``, when known, lets a full SQLite disk say how much room is needed.
    """
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return DatabaseBusyError(f"no database connection came free in time ({exc})", BUSY_FIX)
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    original = exc.orig
    reason = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if isinstance(original, sqlite3.Error):
        return _sqlite_error(original, reason, url)
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in PG_SCHEMA_MISSING:
        return _schema_missing(reason)
    if sqlstate == PG_DISK_FULL:
        return DiskFullError(
            f"the database server's disk is full ({reason})", "free space on that server"
        )
    if sqlstate in PG_BUSY:
        return DatabaseBusyError(f"the database did not grant a lock in time ({reason})", BUSY_FIX)
    lost = exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError)
    # psycopg gives no SQLSTATE when it could not connect or the server went away.
    no_state = sqlstate is None and isinstance(exc, sa_exc.OperationalError)
    if lost or no_state or sqlstate in PG_UNAVAILABLE or str(sqlstate).startswith("08"):
        return DatabaseUnavailableError(f"the database is unavailable ({reason})", UNAVAILABLE_FIX)
    return None


def _schema_missing(reason: str) -> SchemaMissingError:
    return SchemaMissingError(
        f"the database has not been set up for this version of newsletter ({reason})", MIGRATE_FIX
    )


def _sqlite_error(original: sqlite3.Error, reason: str, url: str | None) -> DatabaseError | None:
    if isinstance(original, sqlite3.OperationalError) and reason.startswith(SQLITE_SCHEMA_MISSING):
        return _schema_missing(reason)
    code = getattr(original, "sqlite_errorcode", 0) & 0xFF  # extended codes share the low byte
    if code == SQLITE_FULL:
        return DiskFullError(f"the disk holding the database is full ({reason})", _room_fix(url))
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return DatabaseBusyError(
            f"the database stayed locked by another process ({reason})", BUSY_FIX
        )
    if code in (SQLITE_IOERR, SQLITE_CANTOPEN):
        return DatabaseUnavailableError(
            f"the database file cannot be read or written ({reason})",
            "check the disk it is on, its free space and its permissions",
        )
    return None


def _room_fix(url: str | None) -> str:
    """What to free on a full disk under SQLite: how much, and how much is free now."""
    path = sqlite_path(url) if url else None
    if path is None or not path.parent.exists():
        return f"free at least {_megabytes(SQLITE_ROOM)} on that disk"
    log = path.with_name(path.name + "-wal")
    log_size = log.stat().st_size if log.exists() else 0
    # A transaction that filled the disk (an import) needs at least what it had written.
    needed = max(SQLITE_ROOM, 2 * log_size)
    free = shutil.disk_usage(path.parent).free
    return (
        f"free space beside {path}: it needs at least {_megabytes(needed)} "
        f"and has {_megabytes(free)}"
    )


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


@contextmanager
def database_errors(url: str | None = None) -> Iterator[None]:
    """Raise SQLAlchemy's errors about the database as ``DatabaseError`` (``from`` them)."""
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        mapped = database_error(exc, url)
        if mapped is None:
            raise
        raise mapped from exc
