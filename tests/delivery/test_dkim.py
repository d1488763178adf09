"""DKIM: messages signed with a key file verify against its public key, headers covered."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import dkim
import pytest

from newsletter.delivery.message import MessageFactory, Recipient
from newsletter.errors import ConfigError
from newsletter.settings import Settings
from tests.delivery.conftest import compiled_issue

SELECTOR = "nl2026"
RECIPIENT = Recipient(
    email="jonas@vilnius.lt",
    name="Jonas Jonaitis",
    unsubscribe_url="https://naujienos.bibliotekos-pazangai.example/u/AQEBx3k9dWl-a_Zq0Lw2mVt8",
)


@pytest.fixture(scope="module")
def public_key_record(rsa_key: Path) -> bytes:
    """The DNS TXT record publishing ``rsa_key``'s public half."""
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(rsa_key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def signed(settings: Settings, rsa_key: Path) -> bytes:
    signing = settings.replace(dkim_key_file=rsa_key, dkim_selector=SELECTOR)
    factory = MessageFactory(
        compiled_issue(subject="Sausio naujienos – ąčęėįšųūž"),
        signing,
        campaign_id=3,
        list_id_header="savivaldybes",
    )
    return factory.build(RECIPIENT)[1]


def verifies(raw: bytes, record: bytes) -> bool:
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: float = 5) -> bytes:
        looked_up.append(name)
        return record

    result = bool(dkim.verify(raw, dnsfunc=dns))
    assert looked_up == [f"{SELECTOR}._domainkey.bibliotekos-pazangai.example.".encode()]
    return result


def test_a_signed_message_verifies(
    settings: Settings, rsa_key: Path, public_key_record: bytes
) -> None:
    raw = signed(settings, rsa_key)
    assert raw.startswith(b"DKIM-Signature: ")
    assert verifies(raw, public_key_record)


def test_the_signature_covers_the_unsubscribe_headers(settings: Settings, rsa_key: Path) -> None:
    raw = signed(settings, rsa_key)
    signature = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\nFrom:", 1)[0]
    tags = re.search(rb"h=([^;]+);", re.sub(rb"\r\n[ \t]+", b" ", signature))
    assert tags is not None
    covered = {name.strip().lower() for name in tags.group(1).split(b":")}
    assert covered >= {
        b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
        b"list-unsubscribe", b"list-unsubscribe-post",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("original", "forged"),
    [(b"/u/AQEBx3k9dWl", b"/u/ZZZZx3k9dWl"),
     (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: Nope=One"),
     (b"\r\nList-Unsubscribe: ", b"\r\nList-Unsubscribe: <https://evil.example/>\r\nList-Unsubscribe: "),
     (b"\r\nTo: ", b"\r\nTo: auka@example.lt\r\nTo: "),
     (b"\r\nDate: ", b"\r\nReply-To: auka@example.lt\r\nDate: ")],
)  # fmt: skip
def test_a_changed_or_added_header_breaks_the_signature(
    settings: Settings, rsa_key: Path, public_key_record: bytes, original: bytes, forged: bytes
) -> None:
    raw = signed(settings, rsa_key)
    assert original in raw
    assert not verifies(raw.replace(original, forged, 1), public_key_record)


def test_a_key_file_that_is_not_a_key_is_a_configuration_error(
    settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "dkim.pem"
    bad.write_text("not a key")
    for key_file in (bad, tmp_path / "missing.pem"):
        with pytest.raises(ConfigError, match="NEWSLETTER_DKIM_KEY_FILE"):
            MessageFactory(
                compiled_issue(),
                settings.replace(dkim_key_file=key_file, dkim_selector=SELECTOR),
                campaign_id=1,
                list_id_header="savivaldybes",
            )
