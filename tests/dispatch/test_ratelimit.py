"""Rate limits: one token bucket in Redis shared by every worker, or one in the process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from newsletter.dispatch.ratelimit import REDIS_KEY, LocalBucket, NoLimit, RedisBucket, limiter_for
from newsletter.errors import TransientDeliveryError
from newsletter.settings import Settings
from tests.support.services import RedisServer
from tests.support.smtp import free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def bucket_key(redis_url: str) -> Iterator[str]:
    """A bucket key of this test alone, removed afterwards."""
    key = f"{REDIS_KEY}:test:{uuid.uuid4().hex}"
    yield key
    client = redis.Redis.from_url(redis_url)
    client.delete(key)
    client.close()


def take_for(
    limiters: list[LocalBucket] | list[RedisBucket], seconds: float
) -> tuple[list[int], float]:
    """Let each limiter take tokens in its own thread for ``seconds``; return grants and time."""
    counts = [0] * len(limiters)
    start = threading.Barrier(len(limiters) + 1)

    def worker(index: int) -> None:
        start.wait()
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            limiters[index].acquire()
            counts[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(limiters))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    return counts, time.monotonic() - began


def test_two_workers_share_one_redis_bucket(redis_url: str, bucket_key: str) -> None:
    rate = 50.0
    clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
    workers = [RedisBucket(client, rate, key=bucket_key) for client in clients]
    counts, elapsed = take_for(workers, 1.0)
    for client in clients:
        client.close()
    # a property of the bucket, not a timing target: never more than burst + rate * time
    assert sum(counts) <= rate * elapsed + 2
    assert all(count > 0 for count in counts)  # both workers were served
    assert sum(counts) >= 10  # and it does let mail through


def test_an_empty_bucket_says_how_long_to_wait(redis_url: str, bucket_key: str) -> None:
    client = redis.Redis.from_url(redis_url)
    bucket = RedisBucket(client, rate=0.1, key=bucket_key)  # one message per 10 s
    assert bucket.try_acquire() == 0
    wait = bucket.try_acquire()
    assert 0 < wait <= 10
    assert 0 < client.pttl(bucket_key) <= 70_000  # the key does not outlive its use
    client.close()


def test_a_redis_restart_empties_the_bucket_and_the_limiter_carries_on(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    bucket = RedisBucket(client, rate=1000.0)
    bucket.acquire()
    redis_server.restart()  # the script cache is gone too
    bucket.acquire()
    assert client.exists(REDIS_KEY) == 1
    client.close()


def test_an_unreachable_redis_is_a_transient_failure() -> None:
    client = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    with pytest.raises(TransientDeliveryError, match="rate limiter"):
        RedisBucket(client, rate=10.0).acquire()
    client.close()


def test_a_local_bucket_is_shared_by_the_threads_of_a_process() -> None:
    bucket = LocalBucket(rate=50.0)
    counts, elapsed = take_for([bucket, bucket], 0.5)
    assert sum(counts) <= 50.0 * elapsed + 2
    assert sum(counts) >= 5


def test_limiter_for_follows_the_settings(settings: Settings, redis_url: str) -> None:
    assert isinstance(limiter_for(settings), NoLimit)
    assert isinstance(limiter_for(settings.replace(rate=5.0)), LocalBucket)
    shared = limiter_for(settings.replace(rate=5.0, redis_url=redis_url))
    assert isinstance(shared, RedisBucket) and shared.key == REDIS_KEY
    shared.client.close()


def test_a_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError):
        LocalBucket(rate=0)
