"""Migrations bring SQLite and PostgreSQL to the same schema, and can run twice."""

from __future__ import annotations

from sqlalchemy import inspect

from newsletter import db
from newsletter.models import Base


def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    db.migrate(database_url)  # second run: nothing to do, no error
    tables = set(inspect(db.engine_for(database_url)).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_sqlite_runs_in_wal_mode(settings) -> None:  # type: ignore[no-untyped-def]
    url = settings.database
    db.migrate(url)
    with db.engine_for(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_forked_process_opens_its_own_connections(settings) -> None:  # type: ignore[no-untyped-def]
    url = settings.database
    db.migrate(url)
    parent = db.engine_for(url)
    db.forget_inherited()
    child = db.engine_for(url)
    assert child is not parent
    with child.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    db.dispose(url)
    parent.dispose()
