"""Database access: engines, sessions and migrations.

SQLite is the embedded default (one file, WAL mode so readers never block the writer);
PostgreSQL is used at scale. Both are migrated by Alembic to the same schema.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from newsletter.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


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
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``, creating the SQLite file's folder when needed."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"NEWSLETTER_DATABASE_URL is not a database URL: {url!r}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


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


def session_factory(url: str) -> sessionmaker[Session]:
    """Return a session factory bound to the shared engine for ``url``."""
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any exception."""
    with session_factory(url).begin() as session:
        yield session


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
        raise ConfigError(f"cannot reach the database: {exc.orig}") from exc
