"""VERP return paths: short, signed, naming one outbox row; anything else names none."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.delivery.message import MessageFactory, Recipient
from newsletter.delivery.verp import MAX_TOKEN, return_path, row_of, verp_token
from newsletter.settings import Secret, Settings
from tests.delivery.conftest import compiled_issue

KEY = b"k" * 32
BOUNCE = "bounce@naujienos.example"


@pytest.mark.parametrize("row_id", [1, 127, 128, 40_000, 1_000_000, 2**63 - 1])
def test_a_return_path_names_its_row_and_stays_within_64_characters(row_id: int) -> None:
    address = return_path(BOUNCE, KEY, row_id)
    local = address.split("@")[0]
    assert local.startswith("bounce+") and len(local) <= 64
    assert len(verp_token(KEY, row_id)) <= MAX_TOKEN
    assert row_of(BOUNCE, KEY, address) == row_id
    assert row_of(BOUNCE, KEY, f"<{address.upper()}>") == row_id  # case and brackets


def test_the_longest_bounce_local_part_the_settings_allow_still_fits() -> None:
    local = "b" * 32
    address = return_path(f"{local}@naujienos.example", KEY, 2**63 - 1)
    assert len(address.split("@")[0]) <= 64


def test_a_changed_forged_or_foreign_token_names_no_row() -> None:
    address = return_path(BOUNCE, KEY, 4242)
    token = address.split("+")[1].split("@")[0]
    flipped = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert row_of(BOUNCE, KEY, address.replace(token, flipped)) is None
    assert row_of(BOUNCE, b"another secret", address) is None
    assert row_of(BOUNCE, KEY, address.replace("naujienos.example", "kitas.example")) is None
    assert row_of(BOUNCE, KEY, address.replace("bounce+", "other+")) is None
    for junk in ("", "bounce@naujienos.example", "bounce+@naujienos.example", "bounce+!!@x"):
        assert row_of(BOUNCE, KEY, junk) is None


def test_the_factory_uses_the_return_path_only_with_a_bounce_address(tmp_path: Path) -> None:
    plain = Settings(data_dir=tmp_path, secret_key=Secret("s" * 32))
    verp = plain.replace(bounce_address=BOUNCE)
    person = Recipient(email="ona@kaunas.lt")
    before = MessageFactory(compiled_issue(), plain, campaign_id=1, list_id_header="x")
    after = MessageFactory(compiled_issue(), verp, campaign_id=1, list_id_header="x")
    assert before.envelope(person, 7) == (plain.from_address, "ona@kaunas.lt")
    mail_from, rcpt_to = after.envelope(person, 7)
    assert rcpt_to == "ona@kaunas.lt"
    assert row_of(BOUNCE, verp.key(), mail_from) == 7
