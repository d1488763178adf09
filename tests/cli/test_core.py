"""The command line shows package errors as one line with the error's exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from newsletter.cli.core import main


def test_config_lists_settings_with_secrets_hidden(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "nematomas")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "NEWSLETTER_DATABASE_URL=" in out
    assert "nematomas" not in out


def test_bad_setting_is_one_line_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSLETTER_RATE", "[greitai]")
    assert main(["config"]) == 78
    err = capsys.readouterr().err
    assert err.strip() == "error: NEWSLETTER_RATE must be a float, not '[greitai]'"


def test_console_script_exit_code_and_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "newsletter", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "Usage: newsletter" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "newsletter", "no-such-command"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr
