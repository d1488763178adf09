"""Migrations bring SQLite and PostgreSQL to the same schema, and can run twice."""

from __future__ import annotations

import os

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
    pid = os.fork()
    if pid == 0:  # the child, as a Celery pool process would be
        code = 1
        try:
            db.forget_inherited()
            child = db.engine_for(url)
            with child.connect() as conn:
                ok = child is not parent and conn.exec_driver_sql("SELECT 1").scalar() == 1
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert db.engine_for(url) is parent
