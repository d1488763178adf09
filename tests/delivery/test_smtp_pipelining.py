"""RFC 2920 PIPELINING: MAIL, RCPT and DATA in one write when the server offers it, with
the same outcomes as one command at a time; against aiosmtpd and Postfix's smtp-sink."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from newsletter.delivery.transport import SmtpTransport
from newsletter.errors import (
    DeliveryConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from tests.support.services import unavailable
from tests.support.smtp import SMTP_SINK, PostfixSink, SmtpSink

SENDER = "naujienos@bibliotekos-pazangai.example"
MESSAGE = (
    b"From: naujienos@bibliotekos-pazangai.example\r\nTo: jonas@vilnius.lt\r\n"
    b"Subject: test\r\n\r\nLabas.\r\n.line starting with a dot\r\n"
)


@pytest.fixture(params=[True, False], ids=["pipelining", "one-at-a-time"])
def sink(request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    """aiosmtpd, advertising PIPELINING or not."""
    with SmtpSink(pipelining=request.param) as server:
        yield server


@pytest.fixture
def pipelining_sink() -> Iterator[SmtpSink]:
    with SmtpSink(pipelining=True) as server:
        yield server


def send(transport: SmtpTransport, recipient: str = "jonas@vilnius.lt") -> str:
    return transport.send(SENDER, recipient, MESSAGE)


def test_the_envelope_goes_in_one_write_only_when_the_server_offers_pipelining(
    sink: SmtpSink,
) -> None:
    transport = SmtpTransport(sink.url, timeout=5)
    assert send(transport, "a@vilnius.lt").startswith("250")
    assert send(transport, "b@vilnius.lt").startswith("250")
    transport.close()
    pipelined = [b"rcpt TO:<a@vilnius.lt>\r\nDATA\r\n", b"rcpt TO:<b@vilnius.lt>\r\nDATA\r\n"]
    assert sink.handler.behind_mail == (pipelined if sink.handler.pipelining else [b"", b""])
    assert [r.rcpt_tos for r in sink.received] == [["a@vilnius.lt"], ["b@vilnius.lt"]]
    assert [r.data for r in sink.received] == [MESSAGE] * 2
    assert sink.handler.connections == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("550 5.1.1 <a@vilnius.lt>: no such user", PermanentDeliveryError),
        ("450 4.2.1 mailbox busy, try later", TransientDeliveryError),
        ("554 5.7.1 <a@vilnius.lt>: Relay access denied", DeliveryConfigError),
    ],
)
def test_a_refused_rcpt_maps_as_before_and_the_connection_serves_the_next_recipient(
    sink: SmtpSink, reply: str, expected: type
) -> None:
    sink.refuse_rcpt("a@vilnius.lt", reply)
    transport = SmtpTransport(sink.url, timeout=5)
    with pytest.raises(expected) as caught:
        send(transport, "a@vilnius.lt")
    assert caught.value.smtp_code == int(reply[:3])
    assert send(transport, "b@vilnius.lt").startswith("250")
    transport.close()
    assert [r.rcpt_tos for r in sink.received] == [["b@vilnius.lt"]]
    assert sink.handler.connections == 1  # RSET, not a new connection


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("550", PermanentDeliveryError),
        ("451", TransientDeliveryError),
        ("552", DeliveryConfigError),
    ],
)
def test_a_refused_message_maps_as_before(
    pipelining_sink: SmtpSink, action: str, expected: type
) -> None:
    pipelining_sink.fail_next(action)
    transport = SmtpTransport(pipelining_sink.url, timeout=5)
    with pytest.raises(expected):
        send(transport)
    assert send(transport).startswith("250")
    transport.close()


def test_a_pipelined_250_after_the_timeout_is_uncertain_and_was_delivered(
    pipelining_sink: SmtpSink,
) -> None:
    pipelining_sink.handler.slow_seconds = 1.5
    pipelining_sink.fail_next("slow")
    transport = SmtpTransport(pipelining_sink.url, timeout=0.5)
    with pytest.raises(UncertainDeliveryError) as caught:
        send(transport)
    assert caught.value.timed_out
    assert len(pipelining_sink.received) == 1
    transport.close()


# Postfix's smtp-sink -------------------------------------------------------------------


def postfix_sink(*options: str) -> PostfixSink:
    if not os.access(SMTP_SINK, os.X_OK):
        unavailable(f"{SMTP_SINK} is needed (Debian package postfix)")
    return PostfixSink(*options)


def test_smtp_sink_takes_pipelined_messages_on_one_connection() -> None:
    with postfix_sink() as server:
        transport = SmtpTransport(server.url, timeout=5)
        replies = [send(transport, f"asmuo{n}@vilnius.lt") for n in range(5)]
        transport.close()
        assert all(reply.startswith("250") for reply in replies)
        assert server.counters() == {"sess": 1, "quit": 1, "mesg": 5}


def test_smtp_sink_hanging_up_instead_of_answering_the_dot_is_uncertain() -> None:
    with postfix_sink("-q", ".") as server:
        transport = SmtpTransport(server.url, timeout=5)
        with pytest.raises(UncertainDeliveryError):
            send(transport)
        transport.close()
        assert server.counters()["mesg"] == 1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("-f", "RCPT", "-B", "550 5.1.1 Error: no such user"), PermanentDeliveryError),
        (("-r", "RCPT"), TransientDeliveryError),
        (("-f", "MAIL", "-B", "553 5.7.1 Error: not your address"), DeliveryConfigError),
    ],
)
def test_smtp_sink_refusals_one_command_at_a_time_map_as_before(
    options: tuple[str, ...], expected: type
) -> None:
    with postfix_sink(*options) as server:  # -f and -r turn PIPELINING off
        transport = SmtpTransport(server.url, timeout=5)
        for _ in range(2):
            with pytest.raises(expected):
                send(transport)
        transport.close()
        assert server.counters() == {"sess": 1, "quit": 1, "mesg": 0}


def test_a_server_that_opens_data_after_refusing_the_recipient_gets_an_empty_message() -> None:
    """RFC 2920 3.1 forbids 354 after a refused envelope; a server that sends it anyway
    gets a lone final dot, so no message is delivered and the refusal still stands."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[bytes] = []

    def serve() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rb") as lines:
            connection.sendall(b"220 sena.example ESMTP\r\n")
            answers = {
                b"EHLO": b"250-sena.example\r\n250 PIPELINING\r\n",
                b"MAIL": b"250 OK\r\n",
                b"RCPT": b"550 5.1.1 no such user\r\n",
                b"DATA": b"354 go ahead\r\n",  # wrong: nobody is left to receive it
                b".": b"554 5.5.1 no valid recipients\r\n",
                b"RSET": b"250 OK\r\n",
                b"QUIT": b"221 bye\r\n",
            }
            for line in lines:
                seen.append(line.rstrip(b"\r\n"))
                word = line.split()[0].upper() if line.strip() else b""
                connection.sendall(answers.get(word, b"500 what\r\n"))
                if word == b"QUIT":
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    transport = SmtpTransport(f"smtp://127.0.0.1:{port}", timeout=5)
    transport.open()
    try:
        with pytest.raises(PermanentDeliveryError, match="550"):
            send(transport)
    finally:
        transport.close()
    thread.join(5)
    listener.close()
    assert b"." in seen, seen
    assert not any(line.startswith(b"Subject") for line in seen), "the message was not sent"
