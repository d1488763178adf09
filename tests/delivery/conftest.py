"""Fixtures for the delivery tests: RSA keys and certificates made here, a compiled issue."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter.compose.render import CompiledIssue
from newsletter.compose.slots import slot
from tests.support.services import unavailable


def openssl(*args: str) -> None:
    """Run the openssl command line (keys and certificates are made fresh, never stored)."""
    binary = shutil.which("openssl")
    if binary is None:
        unavailable("the openssl command is needed to make test keys")
    subprocess.run([binary, *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh 2048-bit RSA private key (PEM)."""
    path = tmp_path_factory.mktemp("keys") / "private.pem"
    openssl("genrsa", "-out", str(path), "2048")
    return path


@pytest.fixture(scope="session")
def certificate(rsa_key: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 made with ``rsa_key``."""
    path = rsa_key.with_name("certificate.pem")
    openssl(
        "req", "-x509", "-key", str(rsa_key), "-out", str(path), "-days", "2",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    )  # fmt: skip
    return path


def compiled_issue(**fields: str) -> CompiledIssue:
    """A compiled issue (as stored on a campaign) with some fields changed."""
    stored = {
        "slug": "2026-01-sausis",
        "subject": "Sausio naujienos",
        "lang": "lt",
        "html": f'<p>Sveiki, {slot("name")}!</p><p><a href="{slot("unsubscribe_url")}">'
        "Atsisakyti</a></p>",
        "text": f"Sveiki, {slot('name')}!\nAtsisakyti: {slot('unsubscribe_url')}\n",
    }
    return CompiledIssue.from_dict({**stored, **fields})
