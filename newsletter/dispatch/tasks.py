"""Celery tasks on Redis: thin wrappers (ids in) over the sender and the reconciler.

The configuration follows what was measured with Celery/kombu 5.6 on Redis (see
``RELIABILITY.md``):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a task whose worker dies is
  delivered again instead of acknowledged (acks_late alone lost a recipient when a pool
  child was killed); the row's own attempt count stops a poison task from looping.
- ``worker_prefetch_multiplier = 1``: a worker holds only the task it runs.
- A hard time limit below the visibility timeout, so Redis never hands a running task to
  a second worker.
- No ETA/countdown: on Redis an ETA past the visibility timeout ran every task twice.
  Retries and scheduled campaigns are times in the database, started by the periodic
  ``tick`` (Celery beat), which also hands out again whatever Redis lost.
- A Redis that may evict keys is refused at worker start (``check_redis_keeps_tasks``):
  under memory pressure it would drop queued tasks without an error.

``celery -A newsletter.dispatch.tasks worker`` finds ``app`` here, built on first access from the
``NEWSLETTER_*`` environment; ``make_app(settings)`` builds one for given settings.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.signals import worker_process_init

from newsletter import db
from newsletter.dispatch import bounces, campaign, outbox
from newsletter.dispatch.sender import Outcome, sender_for
from newsletter.errors import ConfigError, DeliveryConfigError, TransientDeliveryError
from newsletter.settings import Settings

log = logging.getLogger(__name__)

SEND_TASK = "newsletter.send_rows"
TICK_TASK = "newsletter.tick"
BOUNCES_TASK = "newsletter.fetch_bounces"
SEND_QUEUE = "newsletter.send"
# Ticks get their own queue so a worker interleaves them with send batches (kombu
# rotates between the queues it consumes) instead of running them after the backlog.
TICK_QUEUE = "newsletter.tick"
VISIBILITY_TIMEOUT = 3600
TASK_TIME_LIMIT = 900  # hard limit, well below VISIBILITY_TIMEOUT
# A send task stops taking new rows after this long and hands the rest to a new task,
# so even at a low rate limit it ends far inside TASK_TIME_LIMIT.
BATCH_BUDGET_SECONDS = 120.0
# The one Redis eviction policy that never drops a key: any other deletes queued tasks
# (lists without a TTL count for the allkeys-* policies) once maxmemory is reached.
SAFE_EVICTION_POLICY = "noeviction"
REDIS_CHECK_TIMEOUT = 5.0


def make_app(settings: Settings) -> Celery:
    """Build the Celery app for ``settings``; its tasks run with those settings."""
    if not settings.redis_url:
        raise ConfigError("NEWSLETTER_REDIS_URL is not set: workers need a Redis broker")
    app = Celery("newsletter", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=TASK_TIME_LIMIT,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # outlive a Redis restart, however long
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=SEND_QUEUE,
        task_routes={
            TICK_TASK: {"queue": TICK_QUEUE},
            BOUNCES_TASK: {"queue": TICK_QUEUE},
            SEND_TASK: {"queue": SEND_QUEUE},
        },
        # A running batch finishes when Redis goes away; its rows are in the database.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        beat_schedule=_beat_schedule(settings),
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        timezone="UTC",
    )
    _register_tasks(app, settings)
    worker_process_init.connect(_forget_inherited_connections, weak=False)
    return app


def _beat_schedule(settings: Settings) -> dict[str, Any]:
    """The periodic tasks: the tick, and reading the bounce mailbox when there is one."""
    schedule: dict[str, Any] = {
        "tick": {
            "task": TICK_TASK,
            "schedule": settings.tick_seconds,
            # Ticks queued while no worker ran are worthless once the next is due.
            "options": {"queue": TICK_QUEUE, "expires": max(2.0, 2 * settings.tick_seconds)},
        }
    }
    if settings.bounce_imap_url:
        schedule["bounces"] = {
            "task": BOUNCES_TASK,
            "schedule": settings.bounce_fetch_seconds,
            "options": {"queue": TICK_QUEUE, "expires": settings.bounce_fetch_seconds},
        }
    return schedule


def _forget_inherited_connections(**_: object) -> None:
    """In a new pool process, drop database engines inherited from the parent.

    A connection shared across a fork corrupts both sides' sessions; each pool process
    must open its own.
    """
    db.forget_inherited()


def _register_tasks(app: Celery, settings: Settings) -> None:
    """Define the tasks on ``app``; each only passes ids to a plain function.

    ``shared=False``: a shared task is added to every app finalised later in the process,
    so a second app (other settings, same process) would run the first app's closures.
    """

    @app.task(name=SEND_TASK, shared=False)
    def send_rows(campaign_id: int, row_ids: list[int]) -> int:
        """Send these outbox rows of one campaign; return how many this task sent."""
        sent = 0

        def count(outcome: Outcome) -> None:
            nonlocal sent
            sent += outcome.state == outbox.SENT

        sender = sender_for(settings)
        try:
            left = sender.send_rows(row_ids, budget_seconds=BATCH_BUDGET_SECONDS, on_outcome=count)
        except DeliveryConfigError as exc:
            log.error("campaign %s paused: %s", campaign_id, exc)
            return sent
        except TransientDeliveryError as exc:
            # The rate limiter cannot reach Redis: the rows stay queued in the database
            # and the reconciler hands them out again once Redis is back.
            log.warning("campaign %s: batch left for later: %s", campaign_id, exc)
            return sent
        if left:
            CeleryBroker(app).publish(campaign_id, left)
        return sent

    @app.task(name=TICK_TASK, shared=False)
    def tick() -> dict[str, int]:
        """Start due campaigns, expire leases, hand out unfinished work, finish campaigns."""
        return campaign.tick(settings, CeleryBroker(app)).__dict__

    @app.task(name=BOUNCES_TASK, shared=False)
    def fetch_bounces() -> dict[str, int]:
        """Read the bounce mailbox and apply what it holds."""
        tally = bounces.scheduled_fetch(settings)
        return tally.__dict__ if tally is not None else {}


class CeleryBroker:
    """The reconciler's broker on Celery: publishes send tasks, measures the queue."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish(self, campaign_id: int, row_ids: list[int]) -> None:
        """Queue one send task carrying these row ids."""
        self.app.send_task(SEND_TASK, args=[campaign_id, row_ids], queue=SEND_QUEUE)

    def backlog(self) -> int:
        """Send tasks waiting in Redis (not counting those a worker already holds)."""
        with self.app.connection_for_write() as connection:
            # Bounded: the app retries forever by default, which a command must not do.
            connection.ensure_connection(max_retries=2)
            declared = connection.default_channel.queue_declare(queue=SEND_QUEUE)
        return int(declared.message_count)


def check_redis_keeps_tasks(url: str) -> None:
    """Refuse a Redis whose ``maxmemory-policy`` may evict keys; ConfigError says how to fix it.

    Read from ``INFO memory``, which managed Redis services answer even where they
    disable ``CONFIG``.
    """
    import redis

    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}"
    client = redis.Redis.from_url(
        url, socket_timeout=REDIS_CHECK_TIMEOUT, socket_connect_timeout=REDIS_CHECK_TIMEOUT
    )
    try:
        policy = client.info("memory").get("maxmemory_policy")
    except redis.RedisError as exc:
        raise ConfigError(
            f"NEWSLETTER_REDIS_URL: cannot read maxmemory-policy from Redis at {where}: {exc}"
        ) from exc
    finally:
        client.close()
    if policy != SAFE_EVICTION_POLICY:
        raise ConfigError(
            f"Redis at {where} has maxmemory-policy {policy or '(unknown)'}, which may evict "
            f"queued tasks; set maxmemory-policy {SAFE_EVICTION_POLICY} in redis.conf (now: "
            f"redis-cli -h {parts.hostname} -p {parts.port or 6379} "
            f"CONFIG SET maxmemory-policy {SAFE_EVICTION_POLICY})"
        )


@lru_cache(maxsize=4)
def app_for(settings: Settings) -> Celery:
    """One app per settings in this process (for commands that publish)."""
    return make_app(settings)


def __getattr__(name: str) -> Any:
    """Build ``app`` on first access, so importing this module reads no environment."""
    if name in ("app", "celery"):
        return app_for(Settings.from_env())
    raise AttributeError(name)
