"""Reading bounce messages: RFC 3464 DSNs, RFC 5965 complaints, the formats of Exchange,
Exim and qmail (through flufl.bounce), and auto-replies, which are never failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.delivery.bounces import (
    AUTOREPLY,
    BOUNCE,
    COMPLAINT,
    FEEDBACK,
    HARD,
    SOFT,
    UNKNOWN,
    read_report,
)

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
RETURN_PATH = "bounce+aaaaaaaaaaaaaaaaaa@naujienos.example"
ORIGINAL = "<c1.0123456789abcdef0123456789abcdef@bibliotekos-pazangai.example>"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "recipient", "kind", "status", "words", "quotes_original"),
    [
        ("gmail.eml", "laima.laimaite.neegzistuoja@gmail.com", HARD, "5.1.1", "does not exist", True),
        ("postfix_soft.eml", "vida.vidaite@utena.lt", SOFT, "4.2.2", "Mailbox full", True),
        ("exchange.eml", "jonas.jonaitis@vilnius.lt", HARD, "5.0.0", "not recognized", False),
        ("exim.eml", "ona.onaite@kaunas.lt", HARD, "5.1.1", "User unknown", True),
        ("qmail.eml", "petras.petraitis@siauliai.lt", HARD, "5.1.1", "User unknown", True),
    ],
)  # fmt: skip
def test_each_bounce_shape_names_its_recipient_status_and_diagnostic(
    name: str, recipient: str, kind: str, status: str, words: str, quotes_original: bool
) -> None:
    report = read_report(fixture(name))
    assert report.kind == BOUNCE
    assert [(f.recipient, f.kind, f.status) for f in report.findings] == [(recipient, kind, status)]
    assert words in report.findings[0].diagnostic
    assert RETURN_PATH in report.addressed_to
    assert (ORIGINAL in report.message_ids) is quotes_original


def test_the_standard_formats_are_read_as_such_and_the_others_by_flufl_bounce() -> None:
    detectors = {
        n: read_report(fixture(n)).detector for n in ("gmail.eml", "exim.eml", "qmail.eml")
    }
    assert detectors == {
        "gmail.eml": "dsn",
        "exim.eml": "flufl.bounce",
        "qmail.eml": "flufl.bounce",
    }


def test_an_arf_complaint_names_the_complaining_recipient_and_the_verp_return_path() -> None:
    report = read_report(fixture("arf_complaint.eml"))
    assert report.kind == FEEDBACK
    assert [(f.recipient, f.kind) for f in report.findings] == [
        ("rasa.rasaite@panevezys.lt", COMPLAINT)
    ]
    assert "abuse" in report.findings[0].diagnostic
    assert RETURN_PATH in report.addressed_to  # Original-Mail-From and the quoted Return-Path
    assert report.message_ids == (ORIGINAL,)


def test_an_out_of_office_reply_is_an_auto_reply_with_no_finding() -> None:
    report = read_report(fixture("out_of_office.eml"))
    assert (report.kind, report.findings) == (AUTOREPLY, ())


@pytest.mark.parametrize(
    "headers",
    [
        b"Auto-Submitted: auto-replied\r\nSubject: Re: naujienos\r\n",
        b"X-Autoreply: yes\r\nSubject: Re: naujienos\r\n",
        b"Precedence: auto_reply\r\nSubject: Re: naujienos\r\n",
        b"Subject: Out of Office: naujienos\r\n",
        b"Subject: =?utf-8?q?Automatinis_atsakymas=3A_naujienos?=\r\n",
    ],
)
def test_auto_replies_are_told_by_rfc_3834_headers_or_their_subject(headers: bytes) -> None:
    raw = (
        b"From: Ona <ona@kaunas.lt>\r\nTo: bounce@naujienos.example\r\n"
        + headers
        + b"\r\nNesu darbe.\r\n"
    )
    assert read_report(raw).kind == AUTOREPLY


def test_a_delay_notice_is_a_report_without_failures() -> None:
    raw = fixture("postfix_soft.eml").replace(b"Action: failed", b"Action: delayed")
    report = read_report(raw)
    assert (report.kind, report.findings) == (BOUNCE, ())


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage\r\n\r\n\x00",
        b"From: ona@kaunas.lt\r\nSubject: klausimas\r\n\r\nLaba diena, kada bus kitas numeris?\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n",
    ],
)
def test_anything_else_is_unknown_or_empty_and_never_raises(raw: bytes) -> None:
    report = read_report(raw)
    assert report.kind in (UNKNOWN, BOUNCE)
    assert report.findings == ()


def test_the_same_report_read_twice_has_the_same_fingerprint() -> None:
    first, again = read_report(fixture("gmail.eml")), read_report(fixture("gmail.eml"))
    other = read_report(fixture("exim.eml"))
    assert first.fingerprint == again.fingerprint != other.fingerprint
