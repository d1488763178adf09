"""What the editor pages need of an issue file: its compiled form, lint findings and date.

Thin calls into Compose (``newsletter.issue``, ``newsletter.lint``), turned into the plain
values the pages show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsletter.render import CompiledIssue
from newsletter.settings import Settings


@dataclass(frozen=True)
class Finding:
    """One lint finding as the preview lists it."""

    severity: str  # error | warning
    line: int | None
    message: str


def compile_issue(path: Path, settings: Settings) -> CompiledIssue:
    """Compile the issue file; raises IssueError naming the file and line."""
    from newsletter.issue import compile_file

    return compile_file(path, settings)


def lint_issue(path: Path, compiled: CompiledIssue, settings: Settings) -> list[Finding]:
    """The preflight findings for the issue, errors first."""
    raise NotImplementedError


def issue_date(path: Path) -> str:
    """The ``date`` of the issue's front matter, as text ('' when it has none)."""
    raise NotImplementedError
