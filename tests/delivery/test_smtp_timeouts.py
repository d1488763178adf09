"""SmtpTransport against servers on loopback that do not answer: a timeout is told apart.

A timeout marks the error ``timed_out`` (the sender pauses a campaign after a few in a
row); a refusal or a closed port is an answer and does not.
"""

from __future__ import annotations

import pytest

from newsletter.delivery.transport import SmtpTransport
from newsletter.errors import PermanentDeliveryError, TransientDeliveryError, UncertainDeliveryError
from tests.support.smtp import SilentServer, SmtpSink, free_port

SENDER = "naujienos@bibliotekos-pazangai.example"
MESSAGE = b"From: naujienos@bibliotekos-pazangai.example\r\nTo: jonas@vilnius.lt\r\n\r\nLabas.\r\n"


def send(transport: SmtpTransport) -> str:
    return transport.send(SENDER, "jonas@vilnius.lt", MESSAGE)


def test_a_server_that_never_greets_is_a_transient_timeout() -> None:
    with SilentServer() as silent:
        transport = SmtpTransport(silent.url, timeout=0.3)
        with pytest.raises(TransientDeliveryError) as caught:
            send(transport)
    assert caught.value.timed_out and "timed out" in str(caught.value)
    assert not isinstance(caught.value, UncertainDeliveryError)


def test_only_a_missing_answer_is_a_timeout(smtp_sink: SmtpSink) -> None:
    """A refusal is an answer, and a closed port answers at once."""
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    smtp_sink.fail_next("451", "550")
    for expected in (TransientDeliveryError, PermanentDeliveryError):
        with pytest.raises(expected) as caught:
            send(transport)
        assert not caught.value.timed_out
    transport.close()
    with pytest.raises(TransientDeliveryError) as down:
        send(SmtpTransport(f"smtp://127.0.0.1:{free_port()}", timeout=2))
    assert not down.value.timed_out


def test_a_connection_that_hangs_is_not_tried_again_at_once(smtp_sink: SmtpSink) -> None:
    """A reused connection that closed is retried on a fresh one; one that hangs is not."""
    transport = SmtpTransport(smtp_sink.url, timeout=0.3)
    assert send(transport).startswith("250")
    stall = smtp_sink.stall_mail(SENDER)
    try:
        with pytest.raises(TransientDeliveryError) as caught:
            send(transport)
    finally:
        stall.release()
    assert caught.value.timed_out
    assert smtp_sink.handler.connections == 1, "one timeout for the row, not two"
