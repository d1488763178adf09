"""SmtpTransport against a real SMTP server on loopback (aiosmtpd), including its failures."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from newsletter.delivery.transport import DirectoryTransport, SmtpTransport, transport_for
from newsletter.errors import (
    ConfigError,
    DeliveryConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from newsletter.settings import Settings
from tests.delivery.conftest import PrivateCa
from tests.support.smtp import Received, SinkHandler, SmtpSink, free_port

SENDER = "naujienos@bibliotekos-pazangai.example"
MESSAGE = (
    b"From: naujienos@bibliotekos-pazangai.example\r\nTo: jonas@vilnius.lt\r\n"
    b"Subject: test\r\nMessage-ID: <m1@bibliotekos-pazangai.example>\r\n\r\n"
    b"Labas.\r\n.line starting with a dot\r\n"
)


def send(transport: SmtpTransport, recipient: str = "jonas@vilnius.lt") -> str:
    return transport.send(SENDER, recipient, MESSAGE)


def test_sends_and_reuses_one_connection(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    replies = [send(transport, f"asmuo{n}@vilnius.lt") for n in range(3)]
    transport.close()
    assert replies == ["250 2.0.0 OK queued"] * 3
    assert smtp_sink.handler.connections == 1
    assert [r.rcpt_tos for r in smtp_sink.received] == [[f"asmuo{n}@vilnius.lt"] for n in range(3)]
    assert smtp_sink.received[0].mail_from == SENDER
    assert smtp_sink.received[0].data.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("code", ["421", "451"])
def test_a_4xx_reply_is_transient_and_the_next_send_succeeds(
    smtp_sink: SmtpSink, code: str
) -> None:
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    smtp_sink.fail_next(code)
    with pytest.raises(TransientDeliveryError) as caught:
        send(transport)
    assert caught.value.smtp_code == int(code)
    assert not isinstance(caught.value, DeliveryConfigError)
    assert send(transport).startswith("250")
    transport.close()
    assert len(smtp_sink.received) == 1


def test_a_550_reply_is_permanent_and_keeps_the_connection(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    smtp_sink.fail_next("550")
    with pytest.raises(PermanentDeliveryError) as caught:
        send(transport)
    assert (caught.value.smtp_code, caught.value.smtp_reply) == (550, "5.1.1 Mailbox unavailable")
    assert caught.value.__cause__ is not None
    assert send(transport).startswith("250")
    transport.close()
    assert smtp_sink.handler.connections == 1
    assert len(smtp_sink.received) == 1


def test_a_refusal_of_the_message_itself_is_nobodys_bounce(smtp_sink: SmtpSink) -> None:
    """552 5.3.4 (too big) would be the answer for every recipient: stop, suppress nobody."""
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    smtp_sink.fail_next("552")
    with pytest.raises(DeliveryConfigError, match=r"5\.3\.4 Message too big") as caught:
        send(transport)
    assert caught.value.smtp_code == 552
    assert send(transport).startswith("250")  # the connection was kept
    transport.close()
    assert smtp_sink.handler.connections == 1


def test_a_250_after_the_client_timed_out_is_uncertain_and_was_delivered() -> None:
    with ConfiguredSink(QueueThenStall(slow_seconds=1.5)) as sink:
        transport = SmtpTransport(sink.url, timeout=0.5)
        with pytest.raises(UncertainDeliveryError) as caught:
            send(transport)
        assert "may have been delivered" in str(caught.value)
        assert caught.value.timed_out
        assert len(sink.received) == 1  # the server did keep it
        sink.handler.slow_seconds = 0
        assert send(transport).startswith("250")  # on a fresh connection: no late reply read
        transport.close()
        assert len(sink.received) == 2
        assert sink.handler.connections == 2


def test_reconnects_after_the_server_restarts_between_sends() -> None:
    with SmtpSink() as first:
        transport = SmtpTransport(first.url, timeout=5)
        assert send(transport).startswith("250")
    with SmtpSink(port=first.port) as restarted:
        assert send(transport).startswith("250")
        transport.close()
        assert len(restarted.received) == 1
        assert restarted.handler.connections == 1


def test_a_server_that_is_down_is_transient() -> None:
    transport = SmtpTransport(f"smtp://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(TransientDeliveryError) as caught:
        send(transport)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    with pytest.raises(TransientDeliveryError):
        transport.open()


def test_a_non_ascii_recipient_is_refused_before_connecting(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    for recipient in ("jonas@vilnius.lt\r\nRCPT TO:<x@y.lt>", "žemyna@vilnius.lt", "nobody"):
        with pytest.raises(PermanentDeliveryError):
            send(transport, recipient)
    assert smtp_sink.handler.connections == 0


def test_close_is_safe_twice_and_open_is_idempotent(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    transport.open()
    transport.open()
    transport.close()
    transport.close()
    assert smtp_sink.handler.connections == 1


def test_transport_for_follows_the_settings(settings: Settings, smtp_sink: SmtpSink) -> None:
    assert isinstance(transport_for(settings), DirectoryTransport)
    chosen = transport_for(settings.replace(smtp_url=smtp_sink.url, smtp_timeout=7))
    assert isinstance(chosen, SmtpTransport)
    assert chosen.timeout == 7


# Login and TLS, against servers configured for them --------------------------------------


class ConfiguredSink(SmtpSink):
    """An SmtpSink whose aiosmtpd server takes extra options (TLS, authentication)."""

    def __init__(self, handler: SinkHandler | None = None, **options: Any) -> None:
        self.handler = handler or SinkHandler()
        self.port = free_port()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, data_size_limit=0, **options
        )


class QueueThenStall(SinkHandler):
    """Keep the message first, then answer late, as a real MTA that queued it would.

    ``SinkHandler`` records a slow message only after its delay, and aiosmtpd cancels
    that delay when the client hangs up, so there the message would vanish.
    """

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        await asyncio.sleep(self.slow_seconds)
        return "250 2.0.0 OK queued"


class RefuseToRelay(SinkHandler):
    """Refuse every recipient as a relay does that does not know us (Postfix's wording)."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return f"554 5.7.1 <{address}>: Relay access denied"


def test_a_relay_that_refuses_to_relay_for_us_is_a_configuration_error() -> None:
    """Not a bounce: with one bounce enough to suppress, it would suppress every recipient."""
    with ConfiguredSink(RefuseToRelay()) as sink:
        transport = SmtpTransport(sink.url, timeout=5)
        with pytest.raises(DeliveryConfigError, match="relay") as caught:
            send(transport)
        transport.close()
        assert caught.value.smtp_code == 554
        assert sink.received == []


def server_tls(certificate: Path, rsa_key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, rsa_key)
    return context


def check_password(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = (bytes(data.login), bytes(data.password)) == (b"biblioteka", b"teisingas")
    return AuthResult(success=ok, handled=False)


def test_logs_in_and_sends() -> None:
    with ConfiguredSink(authenticator=check_password, auth_require_tls=False) as sink:
        transport = SmtpTransport(f"smtp://biblioteka:teisingas@127.0.0.1:{sink.port}", timeout=5)
        assert send(transport).startswith("250")
        transport.close()
        assert len(sink.received) == 1


def test_a_refused_login_is_a_configuration_error() -> None:
    with ConfiguredSink(authenticator=check_password, auth_require_tls=False) as sink:
        transport = SmtpTransport(f"smtp://biblioteka:neteisingas@127.0.0.1:{sink.port}", timeout=5)
        with pytest.raises(DeliveryConfigError) as caught:
            send(transport)
        assert caught.value.smtp_code == 535
        assert caught.value.exit_code == 78
        assert "neteisingas" not in str(caught.value)
        assert sink.received == []


def test_starttls_to_a_trusted_server(
    certificate: Path, rsa_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    with ConfiguredSink(
        tls_context=server_tls(certificate, rsa_key), require_starttls=True
    ) as sink:
        transport = SmtpTransport(f"smtp://127.0.0.1:{sink.port}?starttls=1", timeout=5)
        assert send(transport).startswith("250")
        transport.close()
        assert len(sink.received) == 1


def test_implicit_tls_to_a_trusted_server(
    certificate: Path, rsa_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    with ConfiguredSink(ssl_context=server_tls(certificate, rsa_key)) as sink:
        transport = SmtpTransport(f"smtps://127.0.0.1:{sink.port}", timeout=5)
        assert send(transport).startswith("250")
        transport.close()
        assert len(sink.received) == 1


def test_an_untrusted_certificate_is_a_configuration_error(
    certificate: Path, rsa_key: Path
) -> None:
    with ConfiguredSink(tls_context=server_tls(certificate, rsa_key)) as sink:
        transport = SmtpTransport(f"smtp://127.0.0.1:{sink.port}?starttls=1", timeout=5)
        with pytest.raises(DeliveryConfigError) as caught:
            send(transport)
        assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
        assert sink.received == []


def test_starttls_asked_of_a_server_without_it_is_a_configuration_error(
    smtp_sink: SmtpSink,
) -> None:
    transport = SmtpTransport(f"smtp://127.0.0.1:{smtp_sink.port}?starttls=1", timeout=5)
    with pytest.raises(DeliveryConfigError, match="STARTTLS"):
        send(transport)


def test_implicit_tls_to_a_plain_server_is_a_transient_tls_error(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(f"smtps://127.0.0.1:{smtp_sink.port}", timeout=5)
    with pytest.raises(TransientDeliveryError) as caught:
        send(transport)
    assert isinstance(caught.value.__cause__, ssl.SSLError)
    assert not isinstance(caught.value, DeliveryConfigError)


# A relay whose certificate a private CA signed (NEWSLETTER_SMTP_CA_FILE) -------------------


def relay_tls(ca: PrivateCa) -> ssl.SSLContext:
    return server_tls(ca.server_certificate, ca.server_key)


def test_starttls_to_a_relay_of_a_private_ca_is_verified_with_the_ca_file(
    private_ca: PrivateCa, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with ConfiguredSink(tls_context=relay_tls(private_ca), require_starttls=True) as sink:
        relay = settings.replace(
            smtp_url=f"smtp://127.0.0.1:{sink.port}?starttls=1",
            smtp_ca_file=private_ca.ca_certificate,
        )
        transport = transport_for(relay)
        assert send(transport).startswith("250")
        transport.close()
        assert len(sink.received) == 1


def test_without_the_ca_file_the_relay_is_refused_in_one_line_naming_the_setting(
    private_ca: PrivateCa, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with ConfiguredSink(tls_context=relay_tls(private_ca), require_starttls=True) as sink:
        transport = transport_for(
            settings.replace(smtp_url=f"smtp://127.0.0.1:{sink.port}?starttls=1")
        )
        with pytest.raises(DeliveryConfigError) as caught:
            send(transport)
        assert sink.received == []
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the mail server's certificate is not trusted (")
    assert "unable to get local issuer certificate" in message
    assert "set NEWSLETTER_SMTP_CA_FILE" in message


def test_another_cas_file_does_not_make_the_relay_trusted(
    private_ca: PrivateCa, certificate: Path, settings: Settings
) -> None:
    with ConfiguredSink(tls_context=relay_tls(private_ca), require_starttls=True) as sink:
        relay = settings.replace(
            smtp_url=f"smtp://127.0.0.1:{sink.port}?starttls=1", smtp_ca_file=certificate
        )
        with pytest.raises(DeliveryConfigError, match="not trusted"):
            send(transport_for(relay))
        assert sink.received == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file or directory"), (b"", "no PEM certificate in it"),
     (b"-----BEGIN CERTIFICATE-----\nnonsense\n", "no PEM certificate in it")],
)  # fmt: skip
def test_a_ca_file_that_cannot_be_used_is_a_one_line_configuration_error(
    settings: Settings, tmp_path: Path, content: bytes | None, reason: str
) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    relay = settings.replace(smtp_url="smtp://127.0.0.1:25?starttls=1", smtp_ca_file=path)
    with pytest.raises(ConfigError) as caught:
        transport_for(relay)
    assert str(caught.value) == f"NEWSLETTER_SMTP_CA_FILE: cannot use {path}: {reason}"


def test_the_ca_file_is_read_from_the_environment(tmp_path: Path) -> None:
    loaded = Settings.from_env({"NEWSLETTER_SMTP_CA_FILE": str(tmp_path / "ca.pem")}, env_file=None)
    assert loaded.smtp_ca_file == tmp_path / "ca.pem"
