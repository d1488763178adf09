"""Compiling an issue's text held in memory (the editor's unsaved text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.compose.issue import compile_file, compile_text
from newsletter.errors import IssueError
from newsletter.settings import Settings

TEXT = (
    "---\nsubject: Bibliotekos pažangai – naujienos\ndate: 2026-02-01\n---\n# Sveiki\n\nTekstas.\n"
)


def test_text_compiles_like_the_same_file(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "2026-02-naujienos.md"
    path.write_text(TEXT, encoding="utf-8")
    from_file = compile_file(path, settings)
    from_text = compile_text(TEXT, tmp_path / "2026-02-naujienos.md", settings)
    assert from_text.to_dict() == from_file.to_dict()


def test_nothing_is_read_from_the_path(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "nera" / "2026-02-naujienos.md"
    compiled = compile_text(TEXT, missing, settings)
    assert compiled.subject == "Bibliotekos pažangai – naujienos"
    assert not missing.exists()


def test_an_error_names_the_path_and_line(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(IssueError) as caught:
        compile_text("---\nsubject: [x\n---\nTekstas\n", tmp_path / "a.md", settings)
    assert caught.value.path == str(tmp_path / "a.md") and caught.value.line == 2
