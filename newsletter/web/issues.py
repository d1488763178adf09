"""What the editor pages need of an issue file: its compiled form and its lint findings.

Thin calls into Compose (``newsletter.compose.issue``, ``newsletter.compose.lint``).
"""

from __future__ import annotations

from pathlib import Path

from newsletter.compose.issue import compile_file, compile_source, inside_folder, parse_issue
from newsletter.compose.lint import Finding, lint_file
from newsletter.compose.lint import lint_issue as lint_source
from newsletter.compose.render import CompiledIssue
from newsletter.settings import Settings

__all__ = ["Finding", "compile_issue", "compile_text", "inside_folder", "lint_issue"]


def compile_issue(path: Path, settings: Settings) -> CompiledIssue:
    """Compile the issue file; raises IssueError naming the file and line."""
    return compile_file(path, settings)


def lint_issue(path: Path, compiled: CompiledIssue, settings: Settings) -> list[Finding]:
    """The preflight findings of the issue just compiled, in line order."""
    return lint_file(path, settings, compiled)


def compile_text(text: str, path: Path, settings: Settings) -> tuple[CompiledIssue, list[Finding]]:
    """Compile and lint an issue's unsaved text in memory (``path`` names it in messages).

    Raises IssueError naming the line, as for a file.
    """
    source = parse_issue(text, path)
    compiled = compile_source(source, settings)
    return compiled, lint_source(source, compiled, settings.base_url, display=str(path))
