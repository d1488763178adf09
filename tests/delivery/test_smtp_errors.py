"""Every smtplib, socket and ssl failure is translated, in one place, to a delivery error."""

from __future__ import annotations

import inspect
import smtplib
import socket
import ssl

import pytest

from newsletter.delivery.transport import delivery_error, parse_smtp_url
from newsletter.errors import (
    ConfigError,
    DeliveryConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)


def smtplib_exception_classes() -> list[type[BaseException]]:
    """Every exception class smtplib defines (new ones in a future Python show up here)."""
    return [
        obj
        for obj in vars(smtplib).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == "smtplib"
    ]


def instance_of(kind: type[BaseException], code: int) -> BaseException:
    """Build an instance of an smtplib exception class the way smtplib raises it."""
    if issubclass(kind, smtplib.SMTPSenderRefused):
        return kind(code, b"refused", "naujienos@bibliotekos-pazangai.example")
    if issubclass(kind, smtplib.SMTPResponseException):
        return kind(code, b"reply text")
    if issubclass(kind, smtplib.SMTPRecipientsRefused):
        return kind({"jonas@vilnius.lt": (code, b"refused")})
    return kind("something went wrong")


def test_smtplib_has_the_classes_the_table_covers() -> None:
    names = {kind.__name__ for kind in smtplib_exception_classes()}
    assert names >= {
        "SMTPException", "SMTPNotSupportedError", "SMTPServerDisconnected",
        "SMTPResponseException", "SMTPSenderRefused", "SMTPRecipientsRefused",
        "SMTPDataError", "SMTPConnectError", "SMTPHeloError", "SMTPAuthenticationError",
    }  # fmt: skip


@pytest.mark.parametrize("kind", smtplib_exception_classes(), ids=lambda k: k.__name__)
@pytest.mark.parametrize("code", [421, 451, 550, 554])
@pytest.mark.parametrize("after_data", [False, True])
def test_every_smtplib_exception_is_mapped(
    kind: type[BaseException], code: int, after_data: bool
) -> None:
    error = delivery_error(instance_of(kind, code), after_data=after_data)
    assert type(error) in {
        TransientDeliveryError, PermanentDeliveryError, UncertainDeliveryError, DeliveryConfigError,
    }  # fmt: skip
    assert str(error) and "\n" not in str(error)


# (exception, expected class) before the message data was sent
BEFORE_DATA = [
    (smtplib.SMTPRecipientsRefused({"a@b.lt": (450, b"mailbox busy")}), TransientDeliveryError),
    (smtplib.SMTPRecipientsRefused({"a@b.lt": (550, b"no such user")}), PermanentDeliveryError),
    (smtplib.SMTPDataError(451, b"try later"), TransientDeliveryError),
    (smtplib.SMTPDataError(554, b"rejected as spam"), PermanentDeliveryError),
    (smtplib.SMTPDataError(552, b"message too big"), PermanentDeliveryError),
    (smtplib.SMTPSenderRefused(421, b"closing", "x@y.lt"), TransientDeliveryError),
    (smtplib.SMTPSenderRefused(553, b"not yours", "x@y.lt"), DeliveryConfigError),
    (smtplib.SMTPAuthenticationError(535, b"bad credentials"), DeliveryConfigError),
    # Refusals of RCPT that blame our setup: counting them as bounces would suppress everyone.
    (smtplib.SMTPRecipientsRefused({"a@b.lt": (554, b"5.7.1 <a@b.lt>: Relay access denied")}),
     DeliveryConfigError),
    (smtplib.SMTPRecipientsRefused({"a@b.lt": (550, b"5.7.54 SMTP; Unable to relay recipients")}),
     DeliveryConfigError),
    (smtplib.SMTPRecipientsRefused({"a@b.lt": (550, b"relay not permitted")}), DeliveryConfigError),
    # Postfix checks client, HELO and sender only at RCPT (smtpd_delay_reject=yes).
    (smtplib.SMTPRecipientsRefused(
        {"a@b.lt": (554, b"5.7.1 <unknown[192.0.2.7]>: Client host rejected: Access denied")}),
     DeliveryConfigError),
    (smtplib.SMTPRecipientsRefused(
        {"a@b.lt": (553, b"5.7.1 <x@y.lt>: Sender address rejected: not owned by user")}),
     DeliveryConfigError),
    (smtplib.SMTPRecipientsRefused(
        {"a@b.lt": (504, b"5.5.2 <localhost>: Helo command rejected: need fully-qualified")}),
     DeliveryConfigError),
    (smtplib.SMTPRecipientsRefused(
        {"a@b.lt": (554, b"5.7.1 <a@b.lt>: Recipient address rejected: Access denied")}),
     PermanentDeliveryError),
    (smtplib.SMTPRecipientsRefused({"a@b.lt": (530, b"5.7.57 Client not authenticated")}),
     DeliveryConfigError),
    (smtplib.SMTPDataError(530, b"5.7.0 Authentication Required"), DeliveryConfigError),
    (smtplib.SMTPRecipientsRefused(
        {"a@b.lt": (550, b"5.1.1 <a@b.lt>: User unknown in relay recipient table")}),
     PermanentDeliveryError),
    (smtplib.SMTPRecipientsRefused({"a@b.lt": (550, b"5.7.1 Not authorized to send here")}),
     PermanentDeliveryError),
    # The message itself refused (RFC 3463: 5.3 system, 5.5 protocol, 5.6 content, 5.7
    # policy): every recipient would get the same answer, so it is nobody's bounce.
    (smtplib.SMTPDataError(552, b"5.3.4 Message size exceeds fixed limit"), DeliveryConfigError),
    (smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam"), DeliveryConfigError),
    (smtplib.SMTPDataError(550, b"5.7.26 Unauthenticated email is not accepted"),
     DeliveryConfigError),
    (smtplib.SMTPDataError(550, b"5.1.1 No such user"), PermanentDeliveryError),
    (smtplib.SMTPDataError(552, b"5.2.2 Mailbox full"), PermanentDeliveryError),
    (smtplib.SMTPAuthenticationError(454, b"temporary auth failure"), TransientDeliveryError),
    (smtplib.SMTPHeloError(501, b"bad hostname"), DeliveryConfigError),
    (smtplib.SMTPConnectError(421, b"too busy"), TransientDeliveryError),
    (smtplib.SMTPConnectError(554, b"no service for you"), DeliveryConfigError),
    (smtplib.SMTPResponseException(454, b"TLS not available"), TransientDeliveryError),
    (smtplib.SMTPResponseException(-1, b"garbage"), TransientDeliveryError),
    (smtplib.SMTPNotSupportedError("STARTTLS extension not supported"), DeliveryConfigError),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), TransientDeliveryError),
    (smtplib.SMTPException("No suitable authentication method found."), TransientDeliveryError),
    (ConnectionRefusedError(111, "Connection refused"), TransientDeliveryError),
    (ConnectionResetError(104, "Connection reset by peer"), TransientDeliveryError),
    (BrokenPipeError(32, "Broken pipe"), TransientDeliveryError),
    (TimeoutError("timed out"), TransientDeliveryError),
    (socket.gaierror(-2, "Name or service not known"), TransientDeliveryError),
    (OSError(101, "Network is unreachable"), TransientDeliveryError),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), TransientDeliveryError),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), DeliveryConfigError),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "expected"), BEFORE_DATA, ids=lambda v: repr(v)[:40])
def test_mapping_before_the_data_was_sent(exc: BaseException, expected: type) -> None:
    error = delivery_error(exc)
    assert type(error) is expected


AFTER_DATA = [
    (smtplib.SMTPDataError(451, b"try later"), TransientDeliveryError),
    (smtplib.SMTPDataError(550, b"rejected"), PermanentDeliveryError),
    (smtplib.SMTPDataError(554, b"5.6.0 Message content rejected"), DeliveryConfigError),
    (smtplib.SMTPDataError(-1, b"garbage reply"), UncertainDeliveryError),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out"),
     UncertainDeliveryError),
    (smtplib.SMTPResponseException(500, b"Line too long."), UncertainDeliveryError),
    (ConnectionResetError(104, "Connection reset by peer"), UncertainDeliveryError),
    (TimeoutError("timed out"), UncertainDeliveryError),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "expected"), AFTER_DATA, ids=lambda v: repr(v)[:40])
def test_mapping_while_waiting_for_the_final_reply(exc: BaseException, expected: type) -> None:
    assert type(delivery_error(exc, after_data=True)) is expected


def _disconnected_by_timeout() -> smtplib.SMTPServerDisconnected:
    """What smtplib raises when a read times out: a disconnect, in the TimeoutError's handler."""
    try:
        try:
            raise TimeoutError("timed out")
        except OSError as exc:  # smtplib raises without "from": the timeout is the context
            message = f"Connection unexpectedly closed: {exc}"
            raise smtplib.SMTPServerDisconnected(message)  # noqa: B904
    except smtplib.SMTPServerDisconnected as wrapped:
        return wrapped


@pytest.mark.parametrize("after_data", [False, True])
def test_a_timeout_is_marked_however_smtplib_wrapped_it(after_data: bool) -> None:
    for timed_out in (TimeoutError("timed out"), _disconnected_by_timeout()):
        assert delivery_error(timed_out, after_data=after_data).timed_out
    answered = (
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        ConnectionResetError(104, "Connection reset by peer"),
        smtplib.SMTPDataError(451, b"try later"),
        smtplib.SMTPRecipientsRefused({"a@b.lt": (550, b"no such user")}),
    )
    for exc in answered:
        assert not delivery_error(exc, after_data=after_data).timed_out


def test_reply_code_and_text_are_kept() -> None:
    error = delivery_error(smtplib.SMTPRecipientsRefused({"a@b.lt": (550, b"5.1.1 No such user")}))
    assert (error.smtp_code, error.smtp_reply) == (550, "5.1.1 No such user")
    assert str(error) == "SMTP 550 5.1.1 No such user"


def test_a_configuration_refusal_is_transient_and_a_config_error() -> None:
    error = delivery_error(smtplib.SMTPAuthenticationError(535, b"5.7.8 invalid credentials"))
    assert isinstance(error, TransientDeliveryError)
    assert isinstance(error, ConfigError)
    assert isinstance(error, DeliveryError)
    assert error.exit_code == 78
    assert "login" in str(error)


# The URL -------------------------------------------------------------------------------


def test_smtp_url_with_starttls_and_login() -> None:
    server = parse_smtp_url("smtp://user%40example.lt:p%40ss@mail.example.lt:587?starttls=1")
    assert (server.host, server.port, server.starttls, server.implicit_tls) == (
        "mail.example.lt", 587, True, False,
    )  # fmt: skip
    assert server.username == "user@example.lt"
    assert server.password.reveal() == "p@ss"
    assert "p@ss" not in repr(server)


def test_smtps_url_defaults_to_port_465() -> None:
    server = parse_smtp_url("smtps://mail.example.lt")
    assert (server.port, server.implicit_tls, server.starttls) == (465, True, False)


@pytest.mark.parametrize(
    "url",
    [
        "smtp://mail.example.lt?starttls=maybe",
        "smtp://mail.example.lt?tls=1",
        "smtps://mail.example.lt?starttls=1",
        "smtp://mail.example.lt:port",
        "smtp://:secret@mail.example.lt",
        "smtp://vartotojas:slaptažodis@mail.example.lt",
        "http://mail.example.lt",
        "smtp://",
    ],
)
def test_bad_smtp_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_smtp_url(url)
    assert "NEWSLETTER_SMTP_URL" in str(caught.value)
    assert "secret" not in str(caught.value) and "slaptažodis" not in str(caught.value)
