"""``newsletter render``: files for a sample recipient, their paths printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.cli.core import main
from tests.compose.conftest import ROOT, parse

SAMPLE = ROOT / "issues" / "2026-12-remejai-ir-partneriai.md"


def test_render_writes_html_and_text_into_out_by_default(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", str(SAMPLE)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "out/2026-12-remejai-ir-partneriai.html",
        "out/2026-12-remejai-ir-partneriai.txt",
    ]
    html = (cli_env / "out" / "2026-12-remejai-ir-partneriai.html").read_text(encoding="utf-8")
    text = (cli_env / "out" / "2026-12-remejai-ir-partneriai.txt").read_text(encoding="utf-8")
    for document in (html, text):
        assert "NLPH_" not in document and "NLIF_" not in document
    assert "Gavėjas: Jonas Jonaitis, Vilniaus miesto savivaldybė" in parse(html).text_content()
    assert "Dėkojame rėmėjams ir partneriams" in text


def test_render_several_issues_into_a_chosen_folder(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "peržiūra"
    samples = sorted((ROOT / "issues").glob("*.md"))
    assert main(["render", *map(str, samples), "--out", str(target)]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = [str(target / f"{p.stem}{suffix}") for p in samples for suffix in (".html", ".txt")]
    assert printed == expected
    assert all(Path(name).stat().st_size > 0 for name in printed)


def test_an_output_folder_that_cannot_be_made_is_one_line(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "failas"
    blocker.write_text("ne aplankas", encoding="utf-8")
    target = blocker / "out"
    assert main(["render", str(SAMPLE), "--out", str(target)]) == 65
    err = capsys.readouterr().err.strip()
    assert err == f"error: {target}: cannot write the rendered files: Not a directory"
