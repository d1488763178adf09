"""What the dispatch benchmarks send through: counting SMTP sinks and Celery workers.

All run in processes of their own, so nothing measured shares a GIL with them:

- ``Sink``: aiosmtpd on loopback, started with the ``spawn`` method and driven over a
  pipe. It keeps no message bodies; it counts messages, distinct recipients, and extra
  copies of any Message-ID (a row sent twice carries the same Message-ID both times: it
  is derived from the campaign and the address). Being Python, it needs about as much
  CPU per message as the sender, so it bounds what it measures.
- ``PostfixSink``: Postfix's ``smtp-sink`` (C, Debian package ``postfix``), which throws
  every message away and is several times faster than any Python sender. It counts
  through its own ``-c`` counters (a ``mesg=N`` record on its standard output each time
  a final dot is received); it knows nothing of recipients or Message-IDs, so
  ``recipients`` and ``extra`` are None and duplicates must be counted elsewhere (the
  benchmark compares the count with the database's ``sent`` rows).
- ``Worker``: ``celery -A newsletter.dispatch.tasks worker --pool=prefork`` in its own process
  group, with the environment of ``tests.dispatch.support.worker_env``; its peak memory
  and CPU time are read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import NamedTuple

from newsletter.settings import Settings
from tests.dispatch.support import worker_env
from tests.support.smtp import free_port

CELERY = Path(sys.executable).with_name("celery")


# The sink -----------------------------------------------------------------------------


class Received(NamedTuple):
    """What the sink holds: messages, distinct recipients, extra copies of a Message-ID.

    ``recipients`` and ``extra`` are None for a sink that cannot tell them.
    """

    messages: int
    recipients: int | None
    extra: int | None


def _sink_process(port: int, commands: Connection) -> None:
    """Run the counting server; answer ``count``, ``reset`` and ``stop`` over the pipe."""
    from aiosmtpd.controller import Controller

    message_id = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)

    class CountingHandler:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.reset()

        def reset(self) -> None:
            self.messages = 0
            self.recipients: set[str] = set()
            self.copies: Counter[bytes] = Counter()

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            data: bytes = envelope.content  # type: ignore[attr-defined]
            found = message_id.search(data, 0, data.find(b"\r\n\r\n"))
            with self.lock:
                self.messages += 1
                self.recipients.update(envelope.rcpt_tos)  # type: ignore[attr-defined]
                self.copies[found.group(1) if found else b"(none)"] += 1
            return "250 2.0.0 OK queued"

    handler = CountingHandler()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, decode_data=False, data_size_limit=0
    )
    controller.start()
    commands.send("ready")
    while (command := commands.recv()) != "stop":
        with handler.lock:
            if command == "reset":
                handler.reset()
                commands.send("ok")
            else:
                extra = sum(n - 1 for n in handler.copies.values() if n > 1)
                commands.send(Received(handler.messages, len(handler.recipients), extra))
    controller.stop()


class Sink:
    """The counting aiosmtpd sink process on a free loopback port, and its control pipe."""

    name = "aiosmtpd"

    def __init__(self) -> None:
        self.port = free_port()
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_sink_process, args=(self.port, child), daemon=True)
        self.process.start()
        assert self.pipe.recv() == "ready"
        self.url = f"smtp://127.0.0.1:{self.port}"

    def count(self) -> Received:
        self.pipe.send("count")
        return Received(*self.pipe.recv())

    def reset(self) -> None:
        """Forget everything received so far."""
        self.pipe.send("reset")
        self.pipe.recv()

    def wait_for(self, messages: int, timeout: float) -> float:
        """Wait until the sink holds ``messages``; return the monotonic time it did."""
        deadline = time.monotonic() + timeout
        while self.count().messages < messages:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the sink has {self.count()} after {timeout} s, wanted {messages}"
                )
            time.sleep(0.01)
        return time.monotonic()

    def stop(self) -> None:
        self.pipe.send("stop")
        self.process.join(timeout=10)


SMTP_SINK = Path("/usr/sbin/smtp-sink")


class PostfixSink:
    """Postfix's ``smtp-sink`` on a free loopback port, counting final dots with ``-c``.

    It advertises PIPELINING (and 8BITMIME, DSN, ...), accepts every command and keeps
    nothing. The counters are read from its standard output by a thread; ``reset``
    remembers the count so far instead of restarting the process.
    """

    name = "smtp-sink"

    def __init__(self, *options: str) -> None:
        """Start it; ``options`` are smtp-sink's own (``-p``: do not offer PIPELINING)."""
        if not SMTP_SINK.exists():
            raise SystemExit(f"{SMTP_SINK} is missing: apt-get install postfix")
        self.port = free_port()
        argv = [str(SMTP_SINK), "-c", "-u", "nobody", *options, f"127.0.0.1:{self.port}", "256"]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._lock = threading.Lock()
        self._messages = self._offset = 0
        self._reader = threading.Thread(target=self._read_counters, daemon=True)
        self._reader.start()
        self._wait_listening()
        self.url = f"smtp://127.0.0.1:{self.port}"

    def _wait_listening(self) -> None:
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.02)
        raise SystemExit("smtp-sink did not start listening")

    def _read_counters(self) -> None:
        """Keep the latest ``mesg=N`` of the records (``sess=.. quit=.. mesg=N\r``)."""
        assert self.process.stdout is not None
        pending = b""
        while chunk := self.process.stdout.read1(4096):
            pending += chunk
            *records, pending = pending.split(b"\r")
            for record in reversed(records):
                found = re.search(rb"mesg=(\d+)", record)
                if found:
                    with self._lock:
                        self._messages = int(found.group(1))
                    break

    def count(self) -> Received:
        with self._lock:
            return Received(self._messages - self._offset, None, None)

    def reset(self) -> None:
        """Count from zero again."""
        with self._lock:
            self._offset = self._messages

    def wait_for(self, messages: int, timeout: float) -> float:
        """Wait until the sink counted ``messages``; return the monotonic time it did."""
        deadline = time.monotonic() + timeout
        while self.count().messages < messages:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"smtp-sink has {self.count()} after {timeout} s, wanted {messages}"
                )
            time.sleep(0.002)
        return time.monotonic()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# Workers ------------------------------------------------------------------------------


class Worker:
    """One ``celery worker`` (prefork) in its own process group, logging to ``folder``."""

    def __init__(
        self,
        settings: Settings,
        folder: Path,
        name: str,
        *,
        concurrency: int = 1,
        queues: str = "newsletter.send",
        beat: bool = False,
    ) -> None:
        self.log = folder / f"{name}.log"
        argv = [
            str(CELERY), "-A", "newsletter.dispatch.tasks", "worker", "--pool=prefork",
            f"--concurrency={concurrency}", f"--queues={queues}", f"--hostname={name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
        ]  # fmt: skip
        if beat:
            argv += ["--beat", f"--schedule={folder / (name + '-beat')}"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                env=worker_env(settings),
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def ready(self) -> bool:
        """True once the worker logged that it consumes; SystemExit if it died."""
        if self.process.poll() is not None:
            raise SystemExit(f"a worker exited; see {self.log}")
        return "ready." in self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker is not ready after {timeout} s; see {self.log}")
            time.sleep(0.05)

    def _group(self) -> list[Path]:
        """The /proc entries of every process in the worker's process group."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ProcessLookupError):
                    if os.getpgid(int(entry.name)) == self.pid:
                        found.append(entry)
        return found

    def peaks_mb(self) -> dict[int, float]:
        """VmHWM (peak resident set, what ``ru_maxrss`` reports at exit) per process, in MB."""
        found = {}
        for entry in self._group():
            with contextlib.suppress(OSError):
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        found[int(entry.name)] = int(line.split()[1]) / 1024
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the worker's processes (the pool is fixed)."""
        ticks = 0
        for entry in self._group():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Warm shutdown (the running batch finishes), then kill whatever is left."""
        try:
            # Only the main process: it lets the pool processes finish their tasks first.
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
