"""Run the web app with uvicorn in a thread on a free port, as the browser tests need it."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from newsletter.settings import Settings
from newsletter.web import create_app
from newsletter.web.server import web_server


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Records(logging.Handler):
    """Keeps every formatted log line, to check what the access log says."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def running(settings: Settings, port: int) -> Iterator[Records]:
    """Serve ``create_app(settings)`` on ``port`` until the block ends; yield the access log."""
    server = web_server(create_app(settings), "127.0.0.1", port)
    thread = threading.Thread(target=server.run, name=f"web-{port}", daemon=True)
    records = Records()
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.02)
        logging.getLogger("uvicorn.access").addHandler(records)
        yield records
    finally:
        logging.getLogger("uvicorn.access").removeHandler(records)
        server.should_exit = True
        thread.join(15)
