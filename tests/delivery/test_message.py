"""MessageFactory: headers that decode back to their input, raw bytes that stay safe."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from newsletter.compose.slots import slot
from newsletter.delivery.message import MessageFactory, Recipient, message_id
from newsletter.delivery.transport import SmtpTransport
from newsletter.errors import PermanentDeliveryError
from newsletter.settings import Settings
from tests.delivery.conftest import compiled_issue
from tests.support.smtp import SmtpSink

SUBJECT = "Sausio naujienos: „Bibliotekos pažangai“ – ąčęėįšųūž ĄČĘĖĮŠŲŪŽ"
UNSUBSCRIBE = "https://naujienos.bibliotekos-pazangai.example/u/AQEBx3k9dWl-a_Zq0Lw2mVt8"
JONAS = Recipient(
    email="jonas.jonaitis@vilnius.lt",
    name="Jonas Jonaitis",
    municipality="Vilniaus miesto savivaldybė",
    unsubscribe_url=UNSUBSCRIBE,
)


def factory(
    settings: Settings, *, campaign_id: int = 7, test: bool = False, **issue: str
) -> MessageFactory:
    return MessageFactory(
        compiled_issue(**{"subject": SUBJECT, **issue}),
        settings,
        campaign_id=campaign_id,
        list_id_header="savivaldybes",
        test=test,
    )


def parse(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def header_lines(raw: bytes) -> list[bytes]:
    """The raw header lines, folded continuation lines joined to their field."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return re.split(rb"\r\n(?![ \t])", head)


@pytest.mark.parametrize(
    "subject",
    [
        SUBJECT,
        "Žiemos skaitymai",
        "Plain ASCII subject",
        "Ilgas " + "labai ilgas ir dar ilgesnis " * 12 + "pabaiga",
        "Long ASCII subject " + "with many words that needs folding " * 6,
        'Kainos: =?nėra?= ir "kabutės"',
        "=?utf-8?q?Jonas?= looks like an encoded word",
        "two  spaces  inside  are  kept",
    ],
)
def test_the_subject_decodes_back_to_the_input(settings: Settings, subject: str) -> None:
    _, raw = factory(settings, subject=subject).build(JONAS)
    assert parse(raw)["Subject"] == subject


def test_test_mode_marks_the_subject(settings: Settings) -> None:
    _, raw = factory(settings, test=True).build(JONAS)
    assert parse(raw)["Subject"] == "[TEST] " + SUBJECT


@pytest.mark.parametrize(
    "name",
    ["Jonas Jonaitis", "Ąžuolas Čiurlionis-Žemaitis", 'Ona "Onutė" Petraitienė',
     "Jonaitis, Jonas", "Dr. J. Jonaitis", "Vilniaus m. sav. (administracija)", "=?x?q?y?="],
)  # fmt: skip
def test_to_carries_the_name_and_the_address(settings: Settings, name: str) -> None:
    recipient = Recipient(email="jonas@vilnius.lt", name=name, unsubscribe_url=UNSUBSCRIBE)
    _, raw = factory(settings).build(recipient)
    (address,) = parse(raw)["To"].addresses
    assert (address.display_name, address.addr_spec) == (name, "jonas@vilnius.lt")


def test_to_without_a_name_is_the_bare_address(settings: Settings) -> None:
    _, raw = factory(settings).build(Recipient(email="jonas@vilnius.lt"))
    assert b"\r\nTo: jonas@vilnius.lt\r\n" in raw


def test_a_non_ascii_domain_is_punycoded(settings: Settings) -> None:
    _, raw = factory(settings).build(Recipient(email="ona@šiauliai.lt"))
    assert parse(raw)["To"].addresses[0].addr_spec == "ona@xn--iauliai-pqb.lt"


def test_a_non_ascii_local_part_is_refused(settings: Settings) -> None:
    with pytest.raises(PermanentDeliveryError, match="non-ASCII"):
        factory(settings).build(Recipient(email="žemyna@vilnius.lt"))


def test_from_reply_to_and_list_id(settings: Settings) -> None:
    custom = settings.replace(reply_to="redakcija@bibliotekos-pazangai.example")
    _, raw = factory(custom).build(JONAS)
    message = parse(raw)
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Bibliotekos pažangai", "naujienos@bibliotekos-pazangai.example",
    )  # fmt: skip
    assert message["Reply-To"].addresses[0].addr_spec == "redakcija@bibliotekos-pazangai.example"
    assert message["List-Id"] == "<savivaldybes.bibliotekos-pazangai.example>"
    assert message["MIME-Version"] == "1.0"
    assert message["Content-Language"] == "lt"
    assert parsedate_to_datetime(message["Date"]).utcoffset() is not None


def test_a_named_list_id_keeps_its_name(settings: Settings) -> None:
    built = MessageFactory(
        compiled_issue(), settings, campaign_id=1,
        list_id_header="Savivaldybių atstovai <savivaldybes.bibliotekos-pazangai.example>",
    )  # fmt: skip
    _, raw = built.build(JONAS)
    assert parse(raw)["List-Id"] == (
        "Savivaldybių atstovai <savivaldybes.bibliotekos-pazangai.example>"
    )


def test_list_unsubscribe_raw_bytes_are_plain_and_one_click(settings: Settings) -> None:
    _, raw = factory(settings).build(JONAS)
    lines = header_lines(raw)
    unsubscribe = [line for line in lines if line.lower().startswith(b"list-unsubscribe")]
    token = UNSUBSCRIBE.rsplit("/", 1)[1]
    assert unsubscribe == [
        f"List-Unsubscribe: <{UNSUBSCRIBE}>, <mailto:unsubscribe@bibliotekos-pazangai.example"
        f"?subject=unsubscribe-{token}>".encode(),
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ]
    assert all(b"=?" not in line and len(line) <= 998 for line in unsubscribe)


def test_a_very_long_unsubscribe_url_is_folded_between_the_uris_only(settings: Settings) -> None:
    url = "https://naujienos.bibliotekos-pazangai.example/" + "p" * 700 + "/u/" + "T" * 150
    _, raw = factory(settings).build(Recipient(email="jonas@vilnius.lt", unsubscribe_url=url))
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0].split(b"List-Unsubscribe:")[1]
    assert f"List-Unsubscribe: <{url}>,\r\n <mailto:".encode() in raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert parse(raw)["List-Unsubscribe"].startswith(f"<{url}>, <mailto:")


def test_a_test_copy_without_an_unsubscribe_url_has_no_unsubscribe_headers(
    settings: Settings,
) -> None:
    _, raw = factory(settings, test=True).build(Recipient(email="redaktore@vilnius.lt"))
    assert b"List-Unsubscribe" not in raw


def test_every_line_is_short_and_ends_in_crlf(settings: Settings) -> None:
    html = "<p>" + "ąčęėįšųūž " * 20_000 + "</p>"  # one 200 KB line
    _, raw = factory(settings, html=html, text="x" * 5000).build(JONAS)
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert raw.count(b"\r") == raw.count(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.isascii()


def test_the_parts_carry_the_personalised_issue(settings: Settings) -> None:
    issue = compiled_issue(
        html=f"<p>Sveiki, {slot('name')} iš {slot('municipality')}!</p>\n<p>ąčęėįšųūž</p>\r\n.\n",
        text=f"Sveiki, {slot('name')}!\n.\nAtsisakyti: {slot('unsubscribe_url')}",
    )
    built = MessageFactory(issue, settings, campaign_id=7, list_id_header="savivaldybes")
    _, raw = built.build(JONAS)
    expected_html, expected_text = issue.personalise(
        {"name": JONAS.name, "municipality": JONAS.municipality,
         "unsubscribe_url": JONAS.unsubscribe_url}
    )  # fmt: skip
    message = parse(raw)
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n") == expected_text
    assert html.get_content().replace("\r\n", "\n") == expected_html.replace("\r\n", "\n")


def test_message_id_is_deterministic_and_unguessable(settings: Settings) -> None:
    first_id, first = factory(settings).build(JONAS)
    again_id, _ = factory(settings).build(JONAS)  # a retry, even in another process
    assert first_id == again_id == parse(first)["Message-ID"]
    assert first_id == message_id(settings.key(), 7, JONAS.email, "bibliotekos-pazangai.example")
    assert re.fullmatch(r"<c7\.[0-9a-f]{32}@bibliotekos-pazangai\.example>", first_id)
    other_key = settings.replace(secret_key=type(settings.secret_key)("another-secret-key-0123"))
    others = {
        factory(settings, campaign_id=8).build(JONAS)[0],
        factory(settings).build(Recipient(email="ona@vilnius.lt"))[0],
        factory(other_key).build(JONAS)[0],
    }
    assert first_id not in others and len(others) == 3


def test_test_copies_never_share_a_message_id(settings: Settings) -> None:
    real, _ = factory(settings).build(JONAS)
    test_one = factory(settings, test=True)
    first, _ = test_one.build(JONAS)
    assert test_one.build(JONAS)[0] == first  # a retry of the same test send
    assert first != real
    assert factory(settings, test=True).build(JONAS)[0] != first  # a new test send


def test_envelope_addresses_are_ascii(settings: Settings) -> None:
    built = factory(settings)
    assert built.envelope(Recipient(email="ona@šiauliai.lt")) == (
        "naujienos@bibliotekos-pazangai.example", "ona@xn--iauliai-pqb.lt",
    )  # fmt: skip


def test_a_built_message_survives_a_real_smtp_server(
    settings: Settings, smtp_sink: SmtpSink
) -> None:
    built = factory(settings)
    ident, raw = built.build(JONAS)
    transport = SmtpTransport(smtp_sink.url, timeout=5)
    transport.send(*built.envelope(JONAS), raw)
    transport.close()
    (received,) = smtp_sink.received
    assert received.data == raw
    assert received.parsed()["Message-ID"] == ident
    assert received.parsed()["Subject"] == SUBJECT
