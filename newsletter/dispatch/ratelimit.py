"""Rate limits: at most ``NEWSLETTER_RATE`` messages per second, for all workers together.

A token bucket: tokens accrue at ``rate`` per second up to ``burst``; each message takes
one. With Redis the bucket lives in one hash (``newsletter:ratelimit``) and a Lua script
refills and takes atomically, timed by Redis's own clock (``TIME``), so workers on
different machines with drifting clocks still share one budget. Without Redis (the
embedded mode, one process) the same bucket is kept in memory.

``burst`` defaults to 1: a relay that allows R messages per second usually counts them
in one-second windows, and a full bucket of R would let 2R through in the first second.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

from newsletter.errors import TransientDeliveryError
from newsletter.settings import Settings

REDIS_KEY = "newsletter:ratelimit"


class RateLimiter(Protocol):
    """Something that blocks until one more message may be sent."""

    def acquire(self) -> None:
        """Block until one message may be sent."""


def limiter_for(settings: Settings) -> RateLimiter:
    """Return the limiter the settings ask for: none, shared through Redis, or in-process."""
    if settings.rate == 0:
        return NoLimit()
    if settings.redis_url:
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=10, socket_connect_timeout=10
        )
        return RedisBucket(client, settings.rate)
    return LocalBucket(settings.rate)


class NoLimit:
    """No limit at all (``NEWSLETTER_RATE=0``)."""

    def acquire(self) -> None:
        """Return at once."""


class LocalBucket:
    """A token bucket in this process, shared by its threads."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst = rate, burst
        self._tokens, self._stamp = burst, time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take a token, sleeping as long as the bucket needs to refill one."""
        while (wait := self.try_acquire()) > 0:
            time.sleep(wait)

    def try_acquire(self) -> float:
        """Take a token and return 0, or return the seconds until one is due."""
        with self._lock:
            now = time.monotonic()
            elapsed, self._stamp = now - self._stamp, now
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


# KEYS[1] bucket; ARGV rate, burst. Returns "0" when a token was taken, else the seconds
# to wait, as a string (Lua numbers returned to Redis are cut to integers).
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1]), tonumber(state[2])
if tokens == nil or stamp == nil then tokens, stamp = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return tostring(wait)
"""


class RedisBucket:
    """A token bucket in Redis, shared by every worker that uses the same key."""

    def __init__(
        self, client: redis.Redis, rate: float, burst: float = 1.0, key: str = REDIS_KEY
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.client, self.rate, self.burst, self.key = client, rate, burst, key
        self._take = client.register_script(_TAKE)

    def acquire(self) -> None:
        """Take a token, sleeping between tries as long as the bucket says."""
        while (wait := self.try_acquire()) > 0:
            time.sleep(wait)

    def try_acquire(self) -> float:
        """Take a token and return 0, or return the seconds until one is due.

        Redis being unreachable is a transient delivery failure: the row is retried later
        rather than sent without a limit.
        """
        try:
            reply = self._take(keys=[self.key], args=[repr(self.rate), repr(self.burst)])
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise TransientDeliveryError(f"rate limiter: Redis is unreachable: {exc}") from exc
        return float(reply)
