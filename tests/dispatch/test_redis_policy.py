"""A worker refuses a Redis that may evict keys: queued tasks would vanish without an error.

Each test starts its own redis-server (``tests.support.services.RedisServer``, started
with ``noeviction``) and changes its policy with ``CONFIG SET``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from newsletter.cli.core import main
from newsletter.dispatch.tasks import check_redis_keeps_tasks
from newsletter.errors import ConfigError
from newsletter.settings import Settings
from tests.support.services import RedisServer
from tests.support.smtp import free_port

pytestmark = pytest.mark.redis

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def evicting_redis() -> Iterator[RedisServer]:
    """A private redis-server told to evict any key under memory pressure (allkeys-lru)."""
    server = RedisServer().start()
    try:
        set_policy(server, "allkeys-lru")
        yield server
    finally:
        server.stop()


def set_policy(server: RedisServer, policy: str) -> None:
    """``CONFIG SET maxmemory-policy`` on a running server."""
    with redis.Redis.from_url(server.url) as client:
        client.config_set("maxmemory-policy", policy)


@pytest.fixture
def run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    """Run ``newsletter ARGS…`` on the test settings; return (code, stdout, stderr)."""
    monkeypatch.setenv("NEWSLETTER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", settings.secret_key.reveal())

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_an_evicting_redis_is_refused_with_the_setting_and_the_fix(
    evicting_redis: RedisServer,
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_redis_keeps_tasks(evicting_redis.url)
    message = str(caught.value)
    assert "\n" not in message
    assert f"127.0.0.1:{evicting_redis.port} has maxmemory-policy allkeys-lru" in message
    assert "CONFIG SET maxmemory-policy noeviction" in message and "redis.conf" in message


@pytest.mark.parametrize("policy", ["volatile-lru", "allkeys-random", "volatile-ttl"])
def test_every_policy_but_noeviction_is_refused(evicting_redis: RedisServer, policy: str) -> None:
    set_policy(evicting_redis, policy)
    with pytest.raises(ConfigError, match=f"maxmemory-policy {policy},"):
        check_redis_keeps_tasks(evicting_redis.url)


def test_noeviction_passes(evicting_redis: RedisServer) -> None:
    set_policy(evicting_redis, "noeviction")
    assert check_redis_keeps_tasks(evicting_redis.url) is None


def test_the_worker_command_refuses_to_start(
    evicting_redis: RedisServer, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_REDIS_URL", evicting_redis.url)
    code, out, err = run("worker", "--concurrency", "1")
    assert code == 78, (out, err)
    assert err.count("\n") == 1 and "maxmemory-policy allkeys-lru" in err
    assert "Traceback" not in err and "celery@" not in out


def test_an_unreachable_redis_is_one_line_naming_the_setting() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(ConfigError) as caught:
        check_redis_keeps_tasks(url)
    message = str(caught.value)
    assert message.startswith("NEWSLETTER_REDIS_URL: cannot read maxmemory-policy")
    assert "\n" not in message
