"""Fixtures for the delivery tests: RSA keys and certificates made here, a compiled issue."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PrivateCa:
    """A certificate authority of our own and a server certificate it signed for 127.0.0.1."""

    ca_certificate: Path
    server_certificate: Path
    server_key: Path


@pytest.fixture(scope="session")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCa:
    """A private CA, as a relay inside an organisation's network has (no public CA knows it)."""
    folder = tmp_path_factory.mktemp("private-ca")
    ca_key, ca_cert = folder / "ca-key.pem", folder / "ca.pem"
    key, request, cert = folder / "relay-key.pem", folder / "relay.csr", folder / "relay.pem"
    extensions = folder / "relay.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n", "ascii")
    openssl("genrsa", "-out", str(ca_key), "2048")
    openssl(
        "req", "-x509", "-new", "-key", str(ca_key), "-out", str(ca_cert), "-days", "2",
        "-subj", "/CN=Bibliotekos pazangai test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl("genrsa", "-out", str(key), "2048")
    openssl("req", "-new", "-key", str(key), "-out", str(request), "-subj", "/CN=127.0.0.1")
    openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions),
    )  # fmt: skip
    return PrivateCa(ca_cert, cert, key)


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
