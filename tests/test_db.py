"""Migrations bring SQLite and PostgreSQL to the same schema, and can run twice."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, inspect, text

from newsletter import db
from newsletter.models import Base
from tests.dispatch.support import add_people


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


def test_statistics_are_refreshed_only_on_postgresql(settings) -> None:  # type: ignore[no-untyped-def]
    db.migrate(settings.database)
    assert db.refresh_statistics(settings.database, ["subscribers"], changed=10**6) == []


@pytest.mark.postgres
def test_a_table_changed_since_its_statistics_is_analysed_and_no_other(
    postgres_url: str,
) -> None:
    from tests.conftest import _empty_tables

    _empty_tables(postgres_url)
    add_people(postgres_url, 2000)
    engine = db.engine_for(postgres_url)
    # The server counts a backend's changes when it reports them: the insert itself
    # is passed as ``changed``, as materialise passes the rows it added.
    assert db.refresh_statistics(postgres_url, ["subscribers"], changed=2000) == ["subscribers"]
    with engine.connect() as connection:
        estimate = connection.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = CAST('subscribers' AS regclass)"
        ).scalar_one()
    assert estimate == 2000
    assert db.refresh_statistics(postgres_url, ["subscribers"]) == [], "analysed: not again"
    assert db.refresh_statistics(postgres_url, ["lists"]) == [], "a few rows changed: left alone"


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
