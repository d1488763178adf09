"""Task names are part of the stored state: Redis may hold tasks queued by an older release.

An upgrade moves modules, but a task waiting in Redis carries only its name, so the names
are fixed strings, written out here as a release before the move queued them.
"""

from __future__ import annotations

import pytest
from celery import Celery

from newsletter.compose.render import CompiledIssue
from newsletter.dispatch import campaign
from newsletter.dispatch.tasks import make_app
from tests.dispatch.conftest import WorkerFactory
from tests.dispatch.support import add_people, recipients_of, rows, states, wait_until
from tests.support.services import RedisServer
from tests.support.smtp import SmtpSink

pytestmark = [pytest.mark.redis, pytest.mark.slow]

# What earlier releases put on the wire; never derive these from the code under test.
RELEASED_NAMES = {"newsletter.send_rows": "newsletter.send", "newsletter.tick": "newsletter.tick"}


def test_the_app_registers_the_released_task_names(sqlite_fast, redis_server: RedisServer) -> None:
    app = make_app(sqlite_fast.replace(redis_url=redis_server.url))
    try:
        assert set(RELEASED_NAMES) <= set(app.tasks)
    finally:
        app.close()


def test_tasks_queued_by_an_earlier_release_run_after_the_upgrade(
    sqlite_fast,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = sqlite_fast.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url)
    add_people(settings.database, 30)
    campaign_id = campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id
    row_ids = [row.id for row in rows(settings.database, campaign_id)]

    # A bare app that knows none of the project's tasks, as an older release's publisher
    # looks on the wire: only the name and the arguments travel.
    old = Celery("newsletter", broker=redis_server.url, set_as_current=False)
    try:
        old.send_task(
            "newsletter.send_rows", args=[campaign_id, row_ids[:20]], queue="newsletter.send"
        )
        old.send_task(
            "newsletter.send_rows", args=[campaign_id, row_ids[20:]], queue="newsletter.send"
        )
        old.send_task("newsletter.tick", queue="newsletter.tick")
    finally:
        old.close()

    worker = start_worker(settings, "upgraded", beat=False)
    wait_until(
        lambda: states(settings.database, campaign_id).get("sent", 0) == 30,
        90,
        lambda: f"{states(settings.database, campaign_id)}\n{worker.tail()}",
        interval=0.2,
    )
    copies = recipients_of(smtp_sink.received)
    assert set(copies) == {row.email for row in rows(settings.database, campaign_id)}
    assert set(copies.values()) == {1}
    wait_until(lambda: "newsletter.tick[" in worker.tail(400), 30, worker.tail)
    assert "NotRegistered" not in worker.tail(400)


def test_a_second_app_in_one_process_runs_its_own_tasks(
    sqlite_fast, redis_server: RedisServer
) -> None:
    first = make_app(sqlite_fast.replace(redis_url=redis_server.url))
    second = make_app(sqlite_fast.replace(redis_url=redis_server.url, tick_seconds=1.0))
    try:
        for name in RELEASED_NAMES:
            # A shared task would hand the second app the first app's closure (with the
            # first app's settings) and warn DuplicateTaskNameWarning.
            assert first.tasks[name].run is not second.tasks[name].run
    finally:
        first.close()
        second.close()
