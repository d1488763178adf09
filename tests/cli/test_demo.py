"""``newsletter demo`` end to end on the embedded defaults, run twice as a newcomer would."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.cli.core import main
from tests.conftest import ROOT


def test_the_demo_runs_again_without_sending_anyone_a_second_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # it renders into out/ here
    for name, value in {
        "DATA_DIR": tmp_path / "var",
        "TEMPLATES_DIR": ROOT / "templates" / "email",
        "SPONSORS_FILE": ROOT / "sponsors.yaml",
        "ISSUES_DIR": ROOT / "issues",
    }.items():
        monkeypatch.setenv(f"NEWSLETTER_{name}", str(value))
    demo = [
        "demo",
        "--issue",
        str(ROOT / "issues" / "2026-12-remejai-ir-partneriai.md"),
        "--lists-dir",
        str(ROOT / "subscribers"),
    ]
    assert main(demo) == 0
    first = sorted((tmp_path / "var" / "outbox").glob("*.eml"))
    assert "campaign 1 done" in capsys.readouterr().out and len(first) > 200
    assert main(demo) == 0
    out = capsys.readouterr().out
    assert "campaign 2: 0 recipients" in out and "campaign 2 done" in out
    assert sorted((tmp_path / "var" / "outbox").glob("*.eml")) == first
