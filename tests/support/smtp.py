"""A real SMTP server on loopback (aiosmtpd) that records messages and can be told to fail.

Used by the tests and by ``benchmarks/``. ``SmtpSink.script`` decides the reply to each
DATA command in order: ``"250"`` accepts, ``"451"``/``"421"``/``"550"`` refuse with that
code, ``"slow"`` accepts the message but replies only after ``slow_seconds`` (a 250
that arrives after the client has timed out: the message *was* delivered).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        """Parse the raw bytes as the receiving side would."""
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class SinkHandler:
    """aiosmtpd handler: answer DATA from ``script`` (default: accept), keep what was accepted."""

    script: deque[str] = field(default_factory=deque)
    slow_seconds: float = 2.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            action = self.script.popleft() if self.script else "250"
        if action in ("250", "slow"):
            # A slow server has already queued the message when its reply is late: keep
            # it first, so a client that times out meanwhile still left a delivered copy.
            with self.lock:
                self.received.append(
                    Received(
                        envelope.mail_from,
                        list(envelope.rcpt_tos),
                        bytes(envelope.original_content or envelope.content),
                    )
                )
            if action == "slow":
                await asyncio.sleep(self.slow_seconds)
            return "250 2.0.0 OK queued"
        replies = {
            "421": "421 4.3.2 Service not available, closing channel",
            "451": "451 4.3.0 Temporary local problem, try later",
            "550": "550 5.1.1 Mailbox unavailable",
            "552": "552 5.3.4 Message too big",
        }
        return replies[action]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpSink:
    """Start an aiosmtpd server in a thread; use as a context manager."""

    def __init__(self, port: int | None = None) -> None:
        self.handler = SinkHandler()
        self.port = port or free_port()
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            decode_data=False,
            data_size_limit=0,
            enable_SMTPUTF8=True,
        )

    @property
    def url(self) -> str:
        """The ``NEWSLETTER_SMTP_URL`` that points at this sink."""
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def fail_next(self, *actions: str) -> None:
        """Queue replies for the next DATA commands (see the module docstring)."""
        with self.handler.lock:
            self.handler.script.extend(actions)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until at least ``count`` messages were accepted; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.handler.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.handler.received)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
