"""What the editor pages need of an issue file: its compiled form and its lint findings.

Thin calls into Compose (``newsletter.compose.issue``, ``newsletter.compose.lint``).
"""

from __future__ import annotations

from pathlib import Path

from newsletter.compose.issue import compile_file, inside_folder
from newsletter.compose.lint import Finding, lint_file
from newsletter.compose.render import CompiledIssue
from newsletter.settings import Settings
from newsletter.web import media_store

__all__ = ["Finding", "compile_issue", "inside_folder", "lint_issue"]


def compile_issue(path: Path, settings: Settings) -> CompiledIssue:
    """Compile the issue file; raises IssueError naming the file and line."""
    return compile_file(path, settings)


def lint_issue(path: Path, compiled: CompiledIssue, settings: Settings) -> list[Finding]:
    """The preflight findings of the issue just compiled, in line order; the sizes of the
    library's images it shows come from the database."""
    return lint_file(path, settings, compiled, media_store.image_sizes(settings, compiled.html))
