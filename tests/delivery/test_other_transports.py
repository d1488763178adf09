"""DirectoryTransport writes whole files only; MemoryTransport keeps messages for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from newsletter.delivery.transport import DirectoryTransport, MemoryTransport
from newsletter.errors import (
    DeliveryConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)

SENDER = "naujienos@bibliotekos-pazangai.example"


def message(message_id: str, body: str = "Labas.") -> bytes:
    head = f"From: {SENDER}\r\nMessage-ID: {message_id}\r\nSubject: x\r\n\r\n"
    return (head + body + "\r\n").encode()


def test_writes_one_eml_file_per_message(tmp_path: Path) -> None:
    transport = DirectoryTransport(tmp_path / "outbox")
    reply = transport.send(SENDER, "jonas@vilnius.lt", message("<a@x.lt>"))
    transport.send(SENDER, "ona@kaunas.lt", message("<b@x.lt>"))
    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    written = Path(reply.removeprefix("250 written "))
    assert reply.startswith("250 written ") and written in files
    assert written.read_bytes() == message("<a@x.lt>")


def test_the_same_message_again_replaces_its_file(tmp_path: Path) -> None:
    transport = DirectoryTransport(tmp_path)
    first = transport.send(SENDER, "jonas@vilnius.lt", message("<a@x.lt>", "pirmas"))
    second = transport.send(SENDER, "jonas@vilnius.lt", message("<a@x.lt>", "antras"))
    assert first == second
    assert [p.read_bytes() for p in tmp_path.iterdir()] == [message("<a@x.lt>", "antras")]


def test_a_failed_write_leaves_no_file_behind(tmp_path: Path) -> None:
    data = message("<a@x.lt>")
    (tmp_path / DirectoryTransport.file_name("jonas@vilnius.lt", data)).mkdir()  # in the way
    with pytest.raises(TransientDeliveryError, match="cannot write"):
        DirectoryTransport(tmp_path).send(SENDER, "jonas@vilnius.lt", data)
    assert [p.is_dir() for p in tmp_path.iterdir()] == [True]  # no temporary file left


def test_a_write_interrupted_before_the_rename_leaves_no_eml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(TransientDeliveryError, match="No space left"):
        DirectoryTransport(tmp_path).send(SENDER, "jonas@vilnius.lt", message("<a@x.lt>"))
    assert list(tmp_path.iterdir()) == []


def test_an_outbox_that_cannot_be_made_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DeliveryConfigError, match="cannot create the outbox"):
        DirectoryTransport(blocker / "outbox").open()


def test_memory_transport_keeps_messages_and_raises_queued_errors() -> None:
    transport = MemoryTransport()
    transport.fail_next(
        TransientDeliveryError("SMTP 451 later", smtp_code=451),
        PermanentDeliveryError("SMTP 550 no such user", smtp_code=550),
        UncertainDeliveryError("no reply"),
    )
    for expected in (TransientDeliveryError, PermanentDeliveryError, UncertainDeliveryError):
        with pytest.raises(expected):
            transport.send(SENDER, "jonas@vilnius.lt", b"x")
    assert transport.send(SENDER, "ona@kaunas.lt", b"y").startswith("250")
    # the uncertain one was kept, as a slow server keeps it
    assert transport.sent == [
        (SENDER, "jonas@vilnius.lt", b"x"),
        (SENDER, "ona@kaunas.lt", b"y"),
    ]
