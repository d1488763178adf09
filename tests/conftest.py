"""Fixtures shared by every test: settings on temporary folders, real databases, real servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from newsletter import db
from newsletter.models import Base
from newsletter.settings import Secret, Settings
from tests.support.services import PostgresDatabase, RedisServer, shared_redis_url
from tests.support.smtp import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
# The settings leave NEWSLETTER_TEST_* alone, so this may stay in the environment.
# Under pytest-xdist each test process takes the next database number.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TEST_REDIS_DB = (int(os.environ.get("NEWSLETTER_TEST_REDIS_DB", "9")) + _WORKER) % 16


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-default settings on a temporary data folder, with the repository's content."""
    return Settings(
        data_dir=tmp_path / "var",
        issues_dir=ROOT / "issues",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        base_url="https://naujienos.bibliotekos-pazangai.example",
        secret_key=Secret("test-secret-key-0123456789abcdef"),
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database for the whole session (fails under CI when missing)."""
    database = PostgresDatabase()
    try:
        db.migrate(database.url)
        yield database.url
    finally:
        database.drop()


def _empty_tables(url: str) -> None:
    with db.transaction(url) as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, and the same test again on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'newsletter.db'}"
        db.migrate(url)
        yield url
        db.dispose(url)
    else:
        url = request.getfixturevalue("postgres_url")
        _empty_tables(url)
        yield url


@pytest.fixture
def db_settings(settings: Settings, database_url: str) -> Settings:
    """``settings`` pointing at a migrated database (SQLite, then PostgreSQL)."""
    return settings.replace(database_url=database_url)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The machine's Redis (database 9, emptied first) or a throwaway redis-server.

    ``NEWSLETTER_TEST_REDIS_DB`` picks another database number, so that two test runs on
    one machine do not empty each other's; each pytest-xdist process adds its number.
    """
    url = shared_redis_url(TEST_REDIS_DB)
    if url is not None:
        import redis

        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
        yield url
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server that the test may kill and restart."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on loopback that records what it accepts and can be told to fail."""
    with SmtpSink() as sink:
        yield sink
