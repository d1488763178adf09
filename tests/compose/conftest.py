"""Helpers for the compose tests: issue files, template copies, parsed HTML, the CLI's env."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import lxml.html
import pytest

from newsletter.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FRONT = "---\nsubject: Bandomasis numeris apie bibliotekas\npreheader: Trumpas aprašas\n---\n"

WriteIssue = Callable[..., Path]


@pytest.fixture
def write_issue(tmp_path: Path) -> WriteIssue:
    """Write an issue file: ``body`` after a valid front matter, or ``raw`` text as is."""

    def write(
        body: str = "Tekstas.\n",
        *,
        name: str = "bandymas",
        front: str = FRONT,
        raw: str | bytes | None = None,
    ) -> Path:
        path = tmp_path / "issues" / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(raw, bytes):
            path.write_bytes(raw)
        else:
            path.write_text(front + body if raw is None else raw, encoding="utf-8")
        return path

    return write


@pytest.fixture
def templates_copy(tmp_path: Path, settings: Settings) -> tuple[Path, Settings]:
    """A copy of the repository's templates that a test may change, and settings using it."""
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates" / "email", folder)
    return folder / "default", settings.replace(templates_dir=folder)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path) -> Path:
    """Run the command line on the test settings from an empty working folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("data_dir", "templates_dir", "sponsors_file", "base_url", "issues_dir"):
        monkeypatch.setenv(f"NEWSLETTER_{name.upper()}", str(getattr(settings, name)))
    return work


def parse(html: str) -> lxml.html.HtmlElement:
    """Parse a whole HTML document."""
    return lxml.html.document_fromstring(html)


def links(root: lxml.html.HtmlElement) -> dict[str, str]:
    """Map the text of every link to its href (the last one wins)."""
    return {" ".join(a.text_content().split()): a.get("href", "") for a in root.iter("a")}
