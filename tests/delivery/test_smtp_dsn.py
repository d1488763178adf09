"""RFC 3461 DSN parameters: RET=HDRS and NOTIFY=FAILURE when asked and the server offers DSN,
in the pipelined path and one command at a time alike; against aiosmtpd."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from newsletter.delivery.transport import SmtpTransport, transport_for
from newsletter.errors import PermanentDeliveryError
from newsletter.settings import Settings
from tests.support.smtp import SmtpSink

SENDER = "bounce+abcdefghijklmnopqr@naujienos.example"
MESSAGE = b"From: naujienos@bibliotekos-pazangai.example\r\nSubject: t\r\n\r\nLabas.\r\n"


@pytest.fixture(params=[True, False], ids=["pipelining", "one-at-a-time"])
def dsn_sink(request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    with SmtpSink(pipelining=request.param, dsn=True) as server:
        yield server


def test_a_server_offering_dsn_is_asked_for_headers_only_and_failures_only(
    dsn_sink: SmtpSink,
) -> None:
    transport = SmtpTransport(dsn_sink.url, timeout=5, dsn=True)
    assert transport.send(SENDER, "a@vilnius.lt", MESSAGE).startswith("250")
    assert transport.send(SENDER, "b@vilnius.lt", MESSAGE).startswith("250")
    transport.close()
    received = dsn_sink.received
    assert [r.mail_options for r in received] == [["RET=HDRS"], ["RET=HDRS"]]
    assert [r.rcpt_options for r in received] == [["NOTIFY=FAILURE"], ["NOTIFY=FAILURE"]]
    assert [r.mail_from for r in received] == [SENDER, SENDER]
    assert [r.data for r in received] == [MESSAGE, MESSAGE]


def test_a_refused_recipient_with_dsn_parameters_maps_as_before(dsn_sink: SmtpSink) -> None:
    dsn_sink.refuse_rcpt("a@vilnius.lt", "550 5.1.1 <a@vilnius.lt>: no such user")
    transport = SmtpTransport(dsn_sink.url, timeout=5, dsn=True)
    with pytest.raises(PermanentDeliveryError):
        transport.send(SENDER, "a@vilnius.lt", MESSAGE)
    assert transport.send(SENDER, "b@vilnius.lt", MESSAGE).startswith("250")
    transport.close()
    assert [r.rcpt_tos for r in dsn_sink.received] == [["b@vilnius.lt"]]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-at-a-time"])
def test_no_parameters_for_a_server_without_dsn_or_when_not_asked(pipelining: bool) -> None:
    with SmtpSink(pipelining=pipelining) as plain, SmtpSink(pipelining=pipelining, dsn=True) as dsn:
        asked = SmtpTransport(plain.url, timeout=5, dsn=True)  # a 555 otherwise
        assert asked.send(SENDER, "a@vilnius.lt", MESSAGE).startswith("250")
        asked.close()
        not_asked = SmtpTransport(dsn.url, timeout=5)
        assert not_asked.send(SENDER, "a@vilnius.lt", MESSAGE).startswith("250")
        not_asked.close()
    assert [(r.mail_options, r.rcpt_options) for r in plain.received + dsn.received] == [
        ([], []),
        ([], []),
    ]


def test_the_settings_ask_for_dsn_only_with_a_bounce_address(tmp_path) -> None:
    base = Settings(
        data_dir=tmp_path, smtp_url="smtp://127.0.0.1:2525", allow_insecure_base_url=True
    )
    assert transport_for(base).dsn is False  # type: ignore[attr-defined]
    verp = base.replace(bounce_address="bounce@naujienos.example")
    assert transport_for(verp).dsn is True  # type: ignore[attr-defined]
