"""A real SMTP server on loopback (aiosmtpd) that records messages and can be told to fail.

Used by the tests and by ``benchmarks/``. ``SmtpSink.script`` decides the reply to each
DATA command in order: ``"250"`` accepts, ``"451"``/``"421"``/``"550"`` refuse with that
code, ``"slow"`` accepts the message but replies only after ``slow_seconds`` (a 250
that arrives after the client has timed out: the message *was* delivered).
``SmtpSink.stall_rcpt(address)`` (or ``stall_mail``) holds the RCPT TO (or MAIL FROM) of
one address until released, and ``accept_reply`` may quote the recipient, as many
servers do. ``SmtpSink(dsn=True)`` advertises DSN and keeps the RET/NOTIFY parameters
(``Received.mail_options``, ``rcpt_options``). ``SmtpSink(pipelining=True)`` advertises
PIPELINING (RFC 2920; aiosmtpd reads pipelined commands in order but does not say so) and records, at each MAIL FROM,
the commands already waiting behind it; ``refuse_rcpt(address, reply)`` answers the
RCPT TO of one address with that reply. ``SilentServer`` accepts
connections and never answers at all.
"""

from __future__ import annotations

import asyncio
import os
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
    # ESMTP parameters of MAIL FROM and of the RCPT TOs (e.g. RET=HDRS, NOTIFY=FAILURE).
    mail_options: list[str] = field(default_factory=list)
    rcpt_options: list[str] = field(default_factory=list)

    def parsed(self) -> EmailMessage:
        """Parse the raw bytes as the receiving side would."""
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class Stall:
    """A command naming one address waits until ``release()``; ``reached`` is set once it arrives."""

    address: str
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """Let the command (and any later one naming the address) be answered."""
        self.released.set()


@dataclass
class SinkHandler:
    """aiosmtpd handler: answer DATA from ``script`` (default: accept), keep what was accepted."""

    script: deque[str] = field(default_factory=deque)
    slow_seconds: float = 2.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0
    # The reply to an accepted message; ``{rcpt}`` stands for the recipients.
    accept_reply: str = "250 2.0.0 OK queued"
    # (command, address) whose answer waits: ("RCPT", …) or ("MAIL", …).
    stalls: dict[tuple[str, str], Stall] = field(default_factory=dict)
    pipelining: bool = False
    # What the client had already sent behind each MAIL FROM (pipelined commands).
    behind_mail: list[bytes] = field(default_factory=list)
    # address -> the reply to its RCPT TO, instead of 250.
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    dsn: bool = False  # advertise DSN (RFC 3461) and take its parameters

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
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if self.dsn:
            responses.insert(-1, "250-DSN")
        return responses

    async def _held(self, command: str, address: str) -> None:
        """Wait while a stall holds this command for this address."""
        stall = self.stalls.get((command, address.lower()))
        if stall is not None:
            stall.reached.set()
            while not stall.released.is_set():
                await asyncio.sleep(0.02)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        await self._held("MAIL", address)
        waiting = server._reader._buffer  # type: ignore[attr-defined]  # asyncio's read buffer
        self.behind_mail.append(bytes(waiting))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        await self._held("RCPT", address)
        refusal = self.rcpt_replies.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

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
                        list(envelope.mail_options),
                        list(envelope.rcpt_options),
                    )
                )
            if action == "slow":
                await asyncio.sleep(self.slow_seconds)
            return self.accept_reply.format(rcpt=", ".join(envelope.rcpt_tos))
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


#: RFC 3461 parameters, which aiosmtpd refuses (555) unless told to take them.
DSN_PARAMETERS = ("RET", "ENVID", "NOTIFY", "ORCPT")


class _DsnSMTP(SMTP):
    """aiosmtpd's server, taking the DSN parameters (the handler keeps them as options)."""

    def _getparams(self, params):  # type: ignore[no-untyped-def]
        found = super()._getparams(params)
        for name in DSN_PARAMETERS:
            if found is not None:
                found.pop(name, None)
        return found


class _Controller(Controller):
    def factory(self) -> SMTP:
        server_class = _DsnSMTP if self.handler.dsn else SMTP
        return server_class(self.handler, **self.SMTP_kwargs)


class SmtpSink:
    """Start an aiosmtpd server in a thread; use as a context manager."""

    def __init__(
        self, port: int | None = None, *, pipelining: bool = False, dsn: bool = False
    ) -> None:
        self.handler = SinkHandler(pipelining=pipelining, dsn=dsn)
        self.port = port or free_port()
        self.controller = _Controller(
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

    def refuse_rcpt(self, address: str, reply: str) -> None:
        """Answer every RCPT TO of ``address`` with ``reply`` (e.g. ``550 5.1.1 …``)."""
        self.handler.rcpt_replies[address.lower()] = reply

    def stall_rcpt(self, address: str) -> Stall:
        """Hold every RCPT TO of ``address`` until the returned stall is released."""
        return self._stall("RCPT", address)

    def stall_mail(self, address: str) -> Stall:
        """Hold every MAIL FROM of ``address`` until the returned stall is released."""
        return self._stall("MAIL", address)

    def _stall(self, command: str, address: str) -> Stall:
        stall = Stall(address.lower())
        self.handler.stalls[(command, stall.address)] = stall
        return stall

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
        for stall in self.handler.stalls.values():
            stall.release()
        self.controller.stop()


class SilentServer:
    """A TCP server on loopback that accepts every connection and never sends a byte.

    A relay that hangs (or a firewall that swallows the traffic after the handshake):
    the client's connection succeeds and the greeting never comes. Use as a context
    manager; ``connections`` counts the connections accepted.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.connections = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        """The ``NEWSLETTER_SMTP_URL`` that points at this server."""
        return f"smtp://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted.append(connection)
            self.connections += 1

    def __enter__(self) -> SilentServer:
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for connection in self._accepted:
            connection.close()


SMTP_SINK = "/usr/sbin/smtp-sink"


class PostfixSink:
    """Postfix's ``smtp-sink`` on a free loopback port; keeps nothing, counts with ``-c``.

    ``options`` are smtp-sink's own (``-f RCPT`` refuses every RCPT TO with a 5xx, ``-r``
    with a 4xx; both turn PIPELINING off; ``-q .`` hangs up instead of answering the
    final dot). ``counters()`` returns the latest ``sess`` (sessions ended), ``quit`` and
    ``mesg`` (final dots received) counts.
    """

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        self.argv = [SMTP_SINK, "-c", "-u", "nobody", *options, f"127.0.0.1:{self.port}", "16"]
        self._output = b""

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> PostfixSink:
        import subprocess

        self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE)
        os.set_blocking(self.process.stdout.fileno(), False)  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port)).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("smtp-sink did not start listening")

    def counters(self) -> dict[str, int]:
        """The counts of smtp-sink's latest record, once it printed nothing new for 0.2 s."""
        quiet_since, deadline = time.monotonic(), time.monotonic() + 5
        while time.monotonic() - quiet_since < 0.2 and time.monotonic() < deadline:
            chunk = self.process.stdout.read()  # type: ignore[union-attr]
            if chunk:
                self._output += chunk
                quiet_since = time.monotonic()
            time.sleep(0.02)
        records = [r for r in self._output.split(b"\r") if b"mesg=" in r]
        last = records[-1].decode() if records else "sess=1 quit=0 mesg=0"
        counts = {key: int(value) for key, value in (part.split("=") for part in last.split())}
        counts["sess"] -= 1  # the connection that waited for it to listen
        return counts

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()  # type: ignore[union-attr]
