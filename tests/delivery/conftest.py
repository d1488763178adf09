"""Fixtures for the delivery tests: RSA keys and certificates made here, a stand-in issue."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

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
class StandInIssue:
    """The attributes and ``personalise`` of ``render.CompiledIssue``, ``{{name}}`` placeholders."""

    slug: str = "2026-01-sausis"
    subject: str = "Sausio naujienos"
    preheader: str = ""
    lang: str = "lt"
    html: str = '<p>Sveiki, {{name}}!</p><p><a href="{{unsubscribe_url}}">Atsisakyti</a></p>'
    text: str = "Sveiki, {{name}}!\nAtsisakyti: {{unsubscribe_url}}\n"

    def personalise(self, values: Mapping[str, str]) -> tuple[str, str]:
        """Fill ``{{key}}`` placeholders (values are not escaped: tests pass plain text)."""

        def fill(template: str) -> str:
            return re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m.group(1), ""), template)

        return fill(self.html), fill(self.text)


def compiled_issue(**fields: str) -> StandInIssue:
    """An issue ready to personalise, with some fields changed."""
    return StandInIssue(**fields)
