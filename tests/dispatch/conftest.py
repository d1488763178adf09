"""Fixtures for the dispatch tests: a compiled issue, fast dispatch settings, worker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from newsletter.compose.issue import compile_file
from newsletter.compose.render import CompiledIssue
from newsletter.settings import Secret, Settings
from tests.conftest import ROOT
from tests.dispatch.support import Worker, keeping_sink, worker_env
from tests.support.smtp import SmtpSink

ISSUE = "2026-11-partnerystes-iniciatyvos.md"
# Short enough that lease expiry and retries happen within a test, long enough (the
# settings allow 5 s at least) that a healthy send never outlives its lease.
FAST = {"lease_seconds": 5, "tick_seconds": 0.3, "retry_seconds": 0.3}


@pytest.fixture(scope="session")
def issue(tmp_path_factory: pytest.TempPathFactory) -> CompiledIssue:
    """The repository's November issue, compiled once by the real pipeline (about 1 s)."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("compile"),
        issues_dir=ROOT / "issues",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        base_url="https://naujienos.bibliotekos-pazangai.example",
        secret_key=Secret("test-secret-key-0123456789abcdef"),
    )
    return compile_file(ROOT / "issues" / ISSUE, settings)


@pytest.fixture
def fast(db_settings: Settings) -> Settings:
    """``db_settings`` (SQLite, then PostgreSQL) with short leases, ticks and retries."""
    return db_settings.replace(**FAST)


@pytest.fixture
def sqlite_fast(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Fast dispatch settings on a migrated SQLite file (WAL), for worker processes."""
    from newsletter import db

    url = f"sqlite:///{tmp_path / 'dispatch.db'}"
    db.migrate(url)
    yield settings.replace(database_url=url, **FAST)
    db.dispose(url)


@pytest.fixture
def postgres_fast(settings: Settings, postgres_url: str) -> Settings:
    """Fast dispatch settings on the session's PostgreSQL database, emptied first."""
    from tests.conftest import _empty_tables

    _empty_tables(postgres_url)
    return settings.replace(database_url=postgres_url, **FAST)


WorkerFactory = Callable[..., Worker]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start real Celery workers for a test; every one is killed when the test ends."""
    started: list[Worker] = []

    def start(
        settings: Settings,
        name: str = "w1",
        *,
        beat: bool = True,
        command: Sequence[str] | None = None,
        **env: object,
    ) -> Worker:
        worker = Worker(worker_env(settings, **env), tmp_path, name, beat=beat, command=command)
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def patient_sink() -> Iterator[SmtpSink]:
    """A real SMTP sink whose ``slow`` reply keeps the message though the client left."""
    with keeping_sink() as sink:
        yield sink
