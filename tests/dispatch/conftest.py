"""Fixtures for the dispatch tests: a compiled issue, fast dispatch settings, worker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:  # TEMPORARY until newsletter.render is committed
    import newsletter.render
except ModuleNotFoundError:
    import sys

    from tests.dispatch import _standin_render

    sys.modules["newsletter.render"] = _standin_render

from newsletter.render import CompiledIssue
from newsletter.settings import Settings
from tests.dispatch.support import Worker, worker_env

# Short enough that lease expiry and retries happen within a test, long enough (the
# settings allow 5 s at least) that a healthy send never outlives its lease.
FAST = {"lease_seconds": 5, "tick_seconds": 0.3, "retry_seconds": 0.3}


@pytest.fixture
def issue() -> CompiledIssue:
    """A small compiled issue with a Lithuanian subject and every placeholder."""
    html = (
        "<html><body><p>Sveiki, {{name}} ({{municipality}})!</p>"
        '<p><a href="{{unsubscribe_url}}">Atsisakyti</a> · <a href="{{view_url}}">Naršyklėje</a></p>'
        "</body></html>"
    )
    text = "Sveiki, {{name}}!\n\nAtsisakyti: {{unsubscribe_url}}\n"
    return CompiledIssue(
        slug="2026-11-bibliotekos",
        subject="Bibliotekos pažangai: lapkričio naujienos – ąčęėįšųūž",
        preheader="Kas nauja savivaldybių bibliotekose",
        lang="lt",
        html=html,
        text=text,
    )


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
    db.engine_for(url).dispose()


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

    def start(settings: Settings, name: str = "w1", *, beat: bool = True, **env: object) -> Worker:
        worker = Worker(worker_env(settings, **env), tmp_path, name, beat=beat)
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
