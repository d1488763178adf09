"""Every class of database failure is translated into one ``DatabaseError``, from real errors.

Each case makes the real server or file fail the way it fails in production (a refused
connection, a backend terminated, a lock or statement timeout, a full database or
disk, a locked SQLite file, an exhausted pool) and checks what ``db.database_error`` makes of
the SQLAlchemy error; errors that are bugs stay untranslated.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from newsletter import db
from newsletter.errors import (
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnavailableError,
    DiskFullError,
    SchemaMissingError,
)
from tests.support.disk import small_disk
from tests.support.services import PrivatePostgres
from tests.support.smtp import free_port


def raised(action: Callable[[], object]) -> SQLAlchemyError:
    """The SQLAlchemy error ``action`` raises (the test fails if it raises none)."""
    with pytest.raises(SQLAlchemyError) as caught:
        action()
    return caught.value


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'faults.db'}"
    db.migrate(url)
    yield url
    db.dispose(url)


def test_a_refused_postgresql_connection_is_unavailable() -> None:
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    error = raised(lambda: engine.connect())
    mapped = db.database_error(error)
    assert isinstance(mapped, DatabaseUnavailableError)
    assert mapped.exit_code == 75
    assert "Connection refused" in str(mapped) and "\n" not in str(mapped)
    assert str(mapped).endswith(
        "check that the database server is running and reachable, then run the command again"
    )


@pytest.mark.postgres
def test_a_connection_the_server_ends_is_unavailable(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with engine.connect() as victim, db.engine_for(postgres_url).connect() as killer:
        pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        killer.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        killer.commit()
        error = raised(lambda: victim.exec_driver_sql("SELECT 1"))
    assert isinstance(db.database_error(error), DatabaseUnavailableError)
    engine.dispose()


@pytest.mark.postgres
def test_postgresql_lock_and_statement_timeouts_are_busy(postgres_url: str) -> None:
    engine = db.engine_for(postgres_url)
    with engine.connect() as holder, engine.connect() as waiter:
        holder.exec_driver_sql("CREATE TABLE IF NOT EXISTS locked_here (id int)")
        holder.commit()
        holder.exec_driver_sql("LOCK TABLE locked_here IN ACCESS EXCLUSIVE MODE")
        waiter.exec_driver_sql("SET lock_timeout = '100ms'")
        error = raised(lambda: waiter.exec_driver_sql("SELECT * FROM locked_here"))
        assert isinstance(db.database_error(error), DatabaseBusyError), error
        holder.rollback()
        waiter.rollback()
        waiter.exec_driver_sql("SET statement_timeout = '50ms'")
        error = raised(lambda: waiter.exec_driver_sql("SELECT pg_sleep(2)"))
        assert isinstance(db.database_error(error), DatabaseBusyError), error
        waiter.rollback()
        holder.exec_driver_sql("DROP TABLE locked_here")
        holder.commit()


@pytest.mark.postgres
def test_an_exhausted_connection_pool_is_busy(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    with engine.connect():
        error = raised(lambda: engine.connect())
    assert isinstance(db.database_error(error), DatabaseBusyError)
    engine.dispose()


def test_a_full_sqlite_database_is_disk_full_and_says_how_much_room_it_needs(
    sqlite_file: str,
) -> None:
    # max_page_count makes SQLite answer SQLITE_FULL exactly as a full disk does.
    engine = db.engine_for(sqlite_file)
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        connection.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
        error = raised(
            lambda: connection.exec_driver_sql(
                "CREATE TABLE filler AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
                "SELECT i + 1 FROM n WHERE i < 5000) SELECT randomblob(500) FROM n"
            )
        )
    mapped = db.database_error(error, sqlite_file)
    assert isinstance(mapped, DiskFullError) and mapped.exit_code == 74
    path = db.sqlite_path(sqlite_file)
    room = f"{db.SQLITE_ROOM / 1024 / 1024:.1f} MB"
    assert f"free space beside {path}: it needs at least {room} and has " in str(mapped)
    assert "database or disk is full" in str(mapped)
    # Without the file's name the advice still says how much.
    assert f"free at least {room} on that disk" in str(db.database_error(error))


def test_a_sqlite_file_locked_by_another_process_is_busy(sqlite_file: str) -> None:
    path = db.sqlite_path(sqlite_file)
    holder = db.engine_for(sqlite_file)
    impatient: Engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    with holder.connect() as writing:
        writing.exec_driver_sql("BEGIN IMMEDIATE")
        error = raised(lambda: impatient.connect().exec_driver_sql("BEGIN IMMEDIATE"))
        writing.exec_driver_sql("ROLLBACK")
    assert isinstance(db.database_error(error), DatabaseBusyError)
    impatient.dispose()


def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'x.db'}")
    error = raised(lambda: engine.connect())
    mapped = db.database_error(error)
    assert isinstance(mapped, DatabaseUnavailableError)
    assert "unable to open database file" in str(mapped)


def test_errors_that_are_bugs_are_not_translated(sqlite_file: str) -> None:
    engine = db.engine_for(sqlite_file)
    with engine.connect() as connection:
        bad_sql = raised(lambda: connection.execute(text("SELEC 1")))
        connection.rollback()
        connection.exec_driver_sql(
            "INSERT INTO lists (slug, name, description, public, created_at) "
            "VALUES ('a', '', '', 1, '2026-01-01')"
        )
        duplicate = raised(
            lambda: connection.exec_driver_sql(
                "INSERT INTO lists (slug, name, description, public, created_at) "
                "VALUES ('a', '', '', 1, '2026-01-01')"
            )
        )
    assert db.database_error(bad_sql) is None
    assert db.database_error(duplicate) is None
    assert db.database_error(ValueError("not a database error")) is None


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_database_never_migrated_says_to_migrate(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from newsletter.cli import main
    from tests.support.services import PostgresDatabase

    empty = None
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
        with create_engine(url).begin() as connection:  # a file that is some other database
            connection.exec_driver_sql("CREATE TABLE notes (a TEXT)")
    else:
        empty = PostgresDatabase()
        url = empty.url
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            error = raised(lambda: connection.exec_driver_sql("SELECT id FROM campaigns"))
        engine.dispose()
        mapped = db.database_error(error)
        assert isinstance(mapped, SchemaMissingError) and mapped.exit_code == 78
        assert str(mapped).endswith(
            "run `newsletter migrate` against it, then run the command again"
        )

        monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
        monkeypatch.setenv("NEWSLETTER_DATA_DIR", str(tmp_path / "var"))
        assert main(["campaigns"]) == 78
        shown = capsys.readouterr().err.strip()
        assert shown.startswith("error: the database has not been set up") and "\n" not in shown
    finally:
        db.dispose(url)
        if empty is not None:
            empty.drop()


def test_database_errors_raises_the_translation_from_the_original(sqlite_file: str) -> None:
    engine = create_engine(f"sqlite:///{Path(db.sqlite_path(sqlite_file) or '').parent}/x/y.db")
    with pytest.raises(DatabaseError) as caught, db.database_errors():
        engine.connect()
    assert isinstance(caught.value.__cause__, SQLAlchemyError)


def test_instead_keeps_the_diagnosis_and_changes_the_advice() -> None:
    error = DatabaseUnavailableError("the database is unavailable (gone)", "start it")
    other = error.instead("`newsletter campaign resume 3` continues campaign 3")
    assert type(other) is DatabaseUnavailableError
    assert str(other) == (
        "the database is unavailable (gone): start it, "
        "then `newsletter campaign resume 3` continues campaign 3"
    )


def test_a_full_disk_under_postgresql_is_disk_full() -> None:
    """A tablespace on a 2 MB tmpfs of a private server: 'could not extend file' (53100)."""
    server = PrivatePostgres().start()
    try:
        with small_disk(server.dir / "small", 2048) as folder:
            space = folder / "space"
            space.mkdir()
            if server.user is not None:
                shutil.chown(space, server.user)
            engine = create_engine(server.url(), isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                connection.exec_driver_sql(f"CREATE TABLESPACE small LOCATION '{space}'")
                connection.exec_driver_sql("CREATE TABLE filler (x text) TABLESPACE small")
                error = raised(
                    lambda: connection.exec_driver_sql(
                        "INSERT INTO filler SELECT md5(n::text) || repeat('x', 900) "
                        "FROM generate_series(1, 100000) AS n"
                    )
                )
            engine.dispose()
            server.kill()  # before the disk goes
    finally:
        server.stop()
    mapped = db.database_error(error)
    assert isinstance(mapped, DiskFullError), error
    assert str(mapped).startswith("the database server's disk is full (could not extend file")


def test_psycopgs_second_report_of_a_lost_connection_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An executemany whose server dies mid-pipeline: the error is raised and reported in
    # one line; psycopg's own "error ignored terminating" warning would be a second one.
    logger = logging.getLogger("psycopg")
    with caplog.at_level(logging.WARNING, logger="psycopg"):
        logger.warning("error ignored terminating %r: %s", "<Pipeline>", "the connection is lost")
        logger.warning("another warning")
    assert [record.getMessage() for record in caplog.records] == ["another warning"]
