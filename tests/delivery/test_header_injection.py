"""No header can be injected: control characters and encoded-word tricks are refused."""

from __future__ import annotations

import base64

import pytest

from newsletter.delivery.message import (
    MessageFactory,
    Recipient,
    UnsafeValueError,
    check_header_text,
)
from newsletter.errors import ConfigError, InputError, IssueError, PermanentDeliveryError
from newsletter.settings import Settings
from tests.delivery.conftest import compiled_issue


def b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


PAYLOADS = [
    "Jonas\r\nBcc: auka@example.lt",
    "Jonas\nBcc: auka@example.lt",
    "Jonas\rBcc: auka@example.lt",
    "Jonas\n",  # a trailing LF (CVE-2024-6923)
    "Jonas\x00",
    "Jonas\tJonaitis",
    "Jonas\x1b[31m",
    "Jonas\x85Bcc: auka@example.lt",  # NEL, a line break to some parsers
    "Jonas\u2028Bcc: auka@example.lt",
    "=?UTF-8?Q?=0A?=Bcc: auka@example.lt",  # the encoded-word trick
    "=?utf-8?q?Jonas=0D=0ABcc:_auka@example.lt?=",
    b_word("\r\nBcc: auka@example.lt"),
    b_word(b_word("\nBcc: auka@example.lt")),  # nested one level
    "=?iso-8859-1?q?=00?=",
    "=?unknown-charset?b?Cg==?=",
    "=?utf-8?b?***?=",  # malformed: a reader might decode it leniently
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_check_header_text_refuses(payload: str) -> None:
    with pytest.raises(UnsafeValueError):
        check_header_text(payload)


@pytest.mark.parametrize(
    "value",
    ["Jonas Jonaitis", "Ąžuolas", "=?utf-8?q?Jonas?=", "Kaina =? litais", "a=?b?c", "?="],
)
def test_check_header_text_accepts_harmless_values(value: str) -> None:
    assert check_header_text(value) == value


def build(settings: Settings, recipient: Recipient, **issue: str) -> bytes:
    factory = MessageFactory(
        compiled_issue(**issue), settings, campaign_id=1, list_id_header="savivaldybes"
    )
    return factory.build(recipient)[1]


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_a_recipient_name_with_a_payload_fails_that_recipient(
    settings: Settings, payload: str
) -> None:
    with pytest.raises(PermanentDeliveryError, match="name"):
        build(settings, Recipient(email="jonas@vilnius.lt", name=payload))


def test_the_error_names_the_whole_address_so_erasure_can_scrub_it(settings: Settings) -> None:
    email = "vardenis.pavardenis.ozeliunas@" + "savivaldybes-administracija." * 3 + "example"
    assert len(email) > 100
    with pytest.raises(PermanentDeliveryError) as caught:
        build(settings, Recipient(email=email, name="Jonas\u2028Bcc: auka@example.lt"))
    assert email in str(caught.value)


@pytest.mark.parametrize(
    "email",
    ["jonas@vilnius.lt\r\nBcc: auka@example.lt", "jonas@vilnius.lt\n", "jonas@vil\x00nius.lt",
     "Jonas <jonas@vilnius.lt>", "jonas@vilnius.lt>, <auka@example.lt", "nėra-adreso",
     "jonas@vilnius..lt", "jonas@-vilnius.lt"],
    ids=repr,
)  # fmt: skip
def test_a_bad_recipient_address_fails_that_recipient(settings: Settings, email: str) -> None:
    with pytest.raises(PermanentDeliveryError, match="email"):
        build(settings, Recipient(email=email))


@pytest.mark.parametrize(
    "url",
    ["https://x.lt/u/abc\r\nBcc: auka@example.lt", "https://x.lt/u/a b", "https://x.lt/u/a>",
     "javascript:alert(1)", "https://x.lt/u/ž", "=?utf-8?q?https://x.lt?="],
    ids=repr,
)  # fmt: skip
def test_a_bad_unsubscribe_url_fails_that_recipient(settings: Settings, url: str) -> None:
    with pytest.raises(PermanentDeliveryError, match="unsubscribe_url"):
        build(settings, Recipient(email="jonas@vilnius.lt", unsubscribe_url=url))


@pytest.mark.parametrize("payload", [*PAYLOADS, "", "   "], ids=repr)
def test_a_subject_with_a_payload_is_an_issue_error(settings: Settings, payload: str) -> None:
    with pytest.raises(IssueError, match="subject"):
        build(settings, Recipient(email="jonas@vilnius.lt"), subject=payload)


@pytest.mark.parametrize(
    ("field", "value"),
    [("from_name", "Biblioteka\r\nBcc: auka@example.lt"),
     ("from_name", "=?UTF-8?Q?=0A?=Bcc:"),
     ("from_address", "naujienos@bibliotekos-pazangai.example\n"),
     ("reply_to", "atsakymai@bibliotekos-pazangai.example\r\nBcc: x@y.lt"),
     ("unsubscribe_mailto", "ėė@bibliotekos-pazangai.example")],
)  # fmt: skip
def test_a_bad_setting_is_a_configuration_error(settings: Settings, field: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"NEWSLETTER_{field.upper()}"):
        build(settings.replace(**{field: value}), Recipient(email="jonas@vilnius.lt"))


@pytest.mark.parametrize(
    "list_id", ["savivaldybes\r\nBcc: x@y.lt", "Sąrašas <a b>", "savivaldybės", "<>"], ids=repr
)
def test_a_bad_list_id_is_an_input_error(settings: Settings, list_id: str) -> None:
    with pytest.raises(InputError, match="List-Id"):
        MessageFactory(compiled_issue(), settings, campaign_id=1, list_id_header=list_id)
