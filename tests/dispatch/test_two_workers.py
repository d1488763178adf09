"""Two real Celery worker processes on one campaign in PostgreSQL share it and send each once.

The SQLite case is in ``tests/dispatch/test_worker.py``; this is the production setup,
where the claim takes its row with ``FOR UPDATE SKIP LOCKED``. Every batch is handed
to Redis twice, so both workers race for every row. How much faster two workers are
is measured by ``benchmarks/scale.py``.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from newsletter.compose.render import CompiledIssue
from newsletter.dispatch import campaign
from newsletter.dispatch.tasks import CeleryBroker, make_app
from newsletter.settings import Settings
from tests.dispatch.conftest import WorkerFactory
from tests.dispatch.support import EveryBatchTwice, add_people, rows, states, wait_until
from tests.support.services import RedisServer
from tests.support.smtp import SmtpSink

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
PEOPLE = 300


def test_two_workers_on_postgresql_share_a_campaign_and_send_each_row_once(
    postgres_fast: Settings,
    issue: CompiledIssue,
    smtp_sink: SmtpSink,
    redis_server: RedisServer,
    start_worker: WorkerFactory,
) -> None:
    settings = postgres_fast.replace(redis_url=redis_server.url, smtp_url=smtp_sink.url)
    add_people(settings.database, PEOPLE)
    campaign_id = campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id
    workers = [start_worker(settings, name, beat=False) for name in ("w1", "w2")]
    for worker in workers:
        wait_until(lambda w=worker: "ready." in w.tail(200), 60, lambda w=worker: w.tail())
    app = make_app(settings)
    try:
        campaign.tick(settings, EveryBatchTwice(CeleryBroker(app)))
    finally:
        app.close()
    wait_until(
        lambda: states(settings.database, campaign_id) == {"sent": PEOPLE},
        90,
        lambda: f"{states(settings.database, campaign_id)}\n{workers[0].tail()}",
    )

    copies = Counter(address for message in smtp_sink.received for address in message.rcpt_tos)
    assert set(copies) == {row.email for row in rows(settings.database, campaign_id)}
    assert max(copies.values()) == 1, "nobody got two copies"
    sent_by = [
        sum(map(int, re.findall(r"send_rows\[.*\] succeeded in .*?: (\d+)", w.tail(10_000))))
        for w in workers
    ]
    assert sum(sent_by) == PEOPLE and min(sent_by) > 0, f"both workers sent: {sent_by}"
