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
from newsletter.web import media_store

__all__ = ["Finding", "compile_issue", "compile_text", "inside_folder", "lint_issue"]


def compile_issue(path: Path, settings: Settings) -> CompiledIssue:
    """Compile the issue file; raises IssueError naming the file and line."""
    return compile_file(path, settings)


def lint_issue(path: Path, compiled: CompiledIssue, settings: Settings) -> list[Finding]:
    """The preflight findings of the issue just compiled, in line order; the sizes of the
    library's images it shows come from the database."""
    return lint_file(path, settings, compiled, media_store.image_sizes(settings, compiled.html))


def compile_text(text: str, path: Path, settings: Settings) -> tuple[CompiledIssue, list[Finding]]:
    """Compile and lint an issue's unsaved text in memory (``path`` names it in messages).

    Raises IssueError naming the line, as for a file.
    """
    source = parse_issue(text, path)
    compiled = compile_source(source, settings)
    sizes = media_store.image_sizes(settings, compiled.html)
    findings = lint_source(
        source, compiled, settings.base_url, display=str(path), image_sizes=sizes
    )
    return compiled, findings
