"""What the factory builds is already SMTP DATA text, and the transport sends it as it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.compose.slots import slot
from newsletter.delivery.message import MessageFactory, Recipient
from newsletter.delivery.transport import SmtpTransport, WireMessage
from newsletter.settings import Settings
from tests.delivery.conftest import compiled_issue
from tests.support.smtp import SmtpSink

SENDER = "naujienos@bibliotekos-pazangai.example"
#: Values a line starting with "." could come from, were they not encoded or folded.
DOTTED = Recipient(
    email="jonas.jonaitis@vilnius.lt",
    name=".Jonas. .Jonaitis.",
    municipality=".Vilniaus miesto savivaldybė",
    unsubscribe_url="https://naujienos.bibliotekos-pazangai.example/u/.AQEBx3k9dWl-a_Zq0Lw2mVt8",
)
ISSUES = {
    "ascii subject folded before dotted words": {
        "subject": "Naujienos " + ".tinklas " * 20,
        "text": f".{slot('name')}\n.\n..\n.eilutė su tašku\n",
        "html": f"<p>\n.{slot('municipality')}\n.</p>\r\n.\r\n",
    },
    "lithuanian subject in encoded words": {
        "subject": ".Sausio naujienos – ąčęėįšųūž " * 6,
        "text": ".\r\n.\r.\n" * 50,
        "html": "<p>" + ".ąčę\n" * 5000 + "</p>",
    },
}


def keeps_the_wire_promise(raw: bytes) -> bool:
    """CRLF line ends only, the last line too, and no line starting with a dot."""
    bare = raw.count(b"\n") != raw.count(b"\r\n") or raw.count(b"\r") != raw.count(b"\r\n")
    return not bare and raw.endswith(b"\r\n") and not re.search(rb"(?:^|\n)\.", raw)


@pytest.fixture(params=["unsigned", "signed"])
def sending(request: pytest.FixtureRequest, settings: Settings, rsa_key: Path) -> Settings:
    """The settings, without and with a DKIM key (dkimpy folds its own header)."""
    if request.param == "signed":
        return settings.replace(dkim_key_file=rsa_key, dkim_selector="nl2026")
    return settings


def build(settings: Settings, fields: dict[str, str]) -> tuple[MessageFactory, bytes]:
    factory = MessageFactory(
        compiled_issue(**fields), settings, campaign_id=5, list_id_header="savivaldybes"
    )
    return factory, factory.build(DOTTED)[1]


@pytest.mark.parametrize("fields", ISSUES.values(), ids=ISSUES.keys())
def test_a_built_message_is_wire_ready(sending: Settings, fields: dict[str, str]) -> None:
    _, raw = build(sending, fields)
    assert isinstance(raw, WireMessage)
    assert keeps_the_wire_promise(raw)
    assert b'To: ".Jonas. .Jonaitis." <' in raw


def test_a_folded_subject_continues_with_a_space_before_its_dotted_words(
    settings: Settings,
) -> None:
    _, raw = build(settings, ISSUES["ascii subject folded before dotted words"])
    assert b"\r\n .tinklas" in raw
    assert keeps_the_wire_promise(raw)


@pytest.mark.parametrize("fields", ISSUES.values(), ids=ISSUES.keys())
def test_a_built_message_arrives_byte_for_byte(
    sending: Settings, fields: dict[str, str], smtp_sink: SmtpSink
) -> None:
    factory, raw = build(sending, fields)
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    transport.send(*factory.envelope(DOTTED), raw)
    transport.close()
    (received,) = smtp_sink.received
    assert received.data == raw
    assert received.parsed().get_body(("plain",)).get_content().startswith(".")


def test_a_wire_message_goes_out_unscanned_and_other_bytes_are_made_safe(
    smtp_sink: SmtpSink,
) -> None:
    # A bare LF is what a scan would have rewritten: it arriving unchanged shows that
    # the transport took the promise instead of checking it.
    body = b"Subject: x\r\n\r\nline one\nline two\r\n"
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    transport.send(SENDER, "jonas@vilnius.lt", WireMessage(body))
    transport.send(SENDER, "jonas@vilnius.lt", body + b".dot\n")
    transport.close()
    trusted, scanned = smtp_sink.received
    assert trusted.data == body
    assert scanned.data == b"Subject: x\r\n\r\nline one\r\nline two\r\n.dot\r\n"
