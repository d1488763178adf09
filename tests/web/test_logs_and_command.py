"""Tokens never reach the access log; ``newsletter web`` serves on the embedded defaults."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from newsletter.web.logs import RedactTokens, redact
from tests.web.server import free_port


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/u/AbC-123_x", "/u/[token]"),
        ("/p/AbC-123_x?saved=1", "/p/[token]"),
        ("/v/12/AbC-123_x", "/v/12/[token]"),
        ("/confirm/eyJlIjoi.ZZ.yy", "/confirm/[token]"),
        ("/archive?lang=en", "/archive?lang=en"),
        ("/editor/issues/2026-02/frame?v=3", "/editor/issues/2026-02/frame?v=3"),
    ],
)
def test_redact(path: str, shown: str) -> None:
    assert redact(path) == shown


def test_access_log_records_are_rewritten() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/u/slaptas-zetonas", "1.1", 200), None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /u/[token] HTTP/1.1" 200'


def test_web_command_serves_on_the_embedded_defaults(tmp_path: Path) -> None:
    """`newsletter web` in an empty folder: migrates its SQLite file and answers, then stops on Ctrl-C."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "web", "--port", str(port), "--no-reload-watch"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/u/bet-koks-zetonas"
                ) as answer:
                    body = answer.read().decode()
            except urllib.error.HTTPError as exc:
                body = exc.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "Nuoroda negalioja" in body
        assert (tmp_path / "var" / "newsletter.db").is_file()
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert '"GET /u/[token] HTTP/1.1" 404' in output
    assert "bet-koks-zetonas" not in output
