"""The body in quoted-printable pieces: byte for byte what the whole-body base64 carried."""

from __future__ import annotations

import base64
import quopri
import random
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.compose.issue import compile_file
from newsletter.compose.render import CompiledIssue
from newsletter.compose.slots import end_if, if_set, slot
from newsletter.delivery import message as message_module
from newsletter.delivery.message import MessageFactory, Recipient, base64_body, qp_piece
from newsletter.settings import Settings
from tests.delivery.conftest import compiled_issue

ROOT = Path(__file__).resolve().parents[2]
ONA = Recipient(
    email="ona.onaite@kaunas.lt",
    name="Ona Onaitė = „Skaitytoja“",
    municipality=". Kauno rajono savivaldybė",
    unsubscribe_url="https://naujienos.bibliotekos-pazangai.example/u/AQEBx3k9dWl-a_Zq0Lw2mVt8",
    preferences_url="https://naujienos.bibliotekos-pazangai.example/p/AQEBx3k9dWl-a_Zq0Lw2mVt8",
    view_url="https://naujienos.bibliotekos-pazangai.example/v/3/AQEBx3k9dWl-a_Zq0Lw2mVt8",
)
VALUES = {
    "name": ONA.name,
    "municipality": ONA.municipality,
    "email": ONA.email,
    "unsubscribe_url": ONA.unsubscribe_url,
    "preferences_url": ONA.preferences_url,
    "view_url": ONA.view_url,
}
# Every character quoted-printable treats apart: '=', a leading '.', spaces and tabs before
# a line end, CR, long lines, multi-byte letters cut by a soft break.
NASTY = [".", " ", "\t", "=", "\n", "\r\n", "ą", "Š", "a", "<", '"', "€", "x" * 90]


def parse(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def base64_decoded(text: str) -> bytes:
    """What the earlier whole-body base64 encoding delivered for ``text``."""
    return base64.b64decode(base64_body(text))


def assert_carries(issue: CompiledIssue, settings: Settings) -> bytes:
    """Build for ONA; both parts decode to the old path's bytes; return the raw message."""
    _, raw = MessageFactory(issue, settings, campaign_id=3, list_id_header="savivaldybes").build(
        ONA
    )
    html, text = issue.personalise(VALUES)
    plain_part, html_part = parse(raw).iter_parts()
    assert plain_part["Content-Transfer-Encoding"] == "quoted-printable"
    assert plain_part.get_payload(decode=True) == base64_decoded(text)
    assert html_part.get_payload(decode=True) == base64_decoded(html)
    return bytes(raw)


def assert_wire_safe(raw: bytes) -> None:
    """7-bit, CRLF only, body lines of at most 76 characters, none starting with a dot."""
    assert raw.isascii()
    assert raw.count(b"\n") == raw.count(b"\r\n") == raw.count(b"\r")
    body = raw.split(b"\r\n\r\n", 1)[1]
    lines = body.split(b"\r\n")
    assert max(len(line) for line in lines) <= 76
    assert not any(line.startswith(b".") for line in lines)


@pytest.fixture(scope="module")
def december(tmp_path_factory: pytest.TempPathFactory) -> CompiledIssue:
    """The December sample issue (82 KB as sent before), compiled once for the module."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("var"))
    return compile_file(ROOT / "issues" / "2026-12-remejai-ir-partneriai.md", settings)


def test_the_sample_issue_decodes_to_the_same_bytes(
    settings: Settings, december: CompiledIssue
) -> None:
    assert_wire_safe(assert_carries(december, settings))


def test_nasty_documents_decode_to_the_same_bytes(settings: Settings) -> None:
    rng = random.Random(17)
    slots = [slot("name"), slot("municipality"), slot("unsubscribe_url"), slot("email")]
    for _ in range(20):
        pieces = [rng.choice(NASTY + slots) for _ in range(rng.randrange(1, 120))]
        document = "".join(pieces)
        html = f"<p>{document}</p>{if_set('name')}<b>{slot('name')}</b>{end_if('name')}"
        raw = assert_carries(compiled_issue(html=html, text=document), settings)
        assert_wire_safe(raw)


def test_pieces_encoded_apart_join_into_one_valid_body() -> None:
    rng = random.Random(2920)
    for _ in range(200):
        pieces = ["".join(rng.choice(NASTY) for _ in range(rng.randrange(0, 40))) for _ in range(5)]
        joined = b"".join(qp_piece(piece) for piece in pieces)
        expected = "".join(pieces).replace("\r\n", "\n").encode().replace(b"\n", b"\r\n")
        assert quopri.decodestring(joined) == expected
        lines = joined.split(b"\r\n")
        assert max(len(line) for line in lines) <= 76
        assert not any(line.startswith(b".") for line in lines)


def test_literal_pieces_are_encoded_once_per_campaign(
    settings: Settings, december: CompiledIssue, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue = december
    built = MessageFactory(issue, settings, campaign_id=3, list_id_header="savivaldybes")
    built.build(ONA)
    encoded: list[int] = []
    real = message_module.qp_piece

    def counting(text: str) -> bytes:
        encoded.append(len(text))
        return real(text)

    monkeypatch.setattr(message_module, "qp_piece", counting)
    built.build(
        Recipient(email="jonas@vilnius.lt", name="Jonas", unsubscribe_url=ONA.unsubscribe_url)
    )
    html, _ = issue.personalise(VALUES)
    assert 0 < sum(encoded) < 1000 < len(html), "only the recipient's values are encoded"


def test_the_quoted_printable_body_is_smaller_than_base64(
    settings: Settings, december: CompiledIssue
) -> None:
    issue = december
    _, raw = MessageFactory(issue, settings, campaign_id=3, list_id_header="x").build(ONA)
    html, text = issue.personalise(VALUES)
    assert len(raw) < len(base64_body(html)) + len(base64_body(text))
