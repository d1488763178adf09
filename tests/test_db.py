"""Migrations bring SQLite and PostgreSQL to the same schema, and can run twice."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event, inspect, text

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


def test_twenty_concurrent_transactions_reuse_their_connections(database_url: str) -> None:
    """The web's 20 concurrent requests keep their connections rather than opening new ones.

    With 5 connections kept and 10 more opened for a burst, every request past the fifth
    opened a connection (on PostgreSQL a server process and a login) and closed it again.
    """
    db.dispose(database_url)  # start with no connection open
    engine = db.engine_for(database_url)
    opened: list[object] = []

    def count(connection: object, _record: object) -> None:
        opened.append(connection)

    all_in = threading.Barrier(20)

    def work(_: int) -> None:
        with db.transaction(database_url) as session:
            session.execute(text("SELECT 1"))
            all_in.wait(timeout=30)  # all twenty hold a connection at once

    event.listen(engine, "connect", count)
    try:
        for _ in range(3):
            with ThreadPoolExecutor(max_workers=20) as pool:
                list(pool.map(work, range(20)))
    finally:
        event.remove(engine, "connect", count)
    assert 0 < len(opened) <= 20
