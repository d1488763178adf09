"""Issue files: read ``issues/<slug>.md`` (YAML front matter, then Markdown) and compile it.

An issue file looks like::

    ---
    subject: Dėkojame rėmėjams ir partneriams     # required
    preheader: Trumpas tekstas pašto dėžutės sąraše
    date: 2026-12-01
    lang: lt                # lt (default) or en
    sponsors: [main, public] # tiers and/or sponsor ids; default: the registry's default tier
    template: default       # a folder under templates/email/
    ---
    # Markdown body …

Every mistake is an ``IssueError`` whose message names the file and line. This module does
the reading (issue, registry, templates); ``newsletter.compose.render`` does the rendering.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from newsletter.compose import sponsors as sponsor_registry
from newsletter.compose.render import (
    Branding,
    CompiledIssue,
    IssueDocument,
    TemplateSet,
    compile_issue,
)
from newsletter.compose.sponsors import load_yaml
from newsletter.compose.strings import LANGUAGES
from newsletter.errors import IssueError
from newsletter.settings import Settings

FRONT_MATTER_KEYS = ("subject", "preheader", "date", "lang", "sponsors", "template")
FENCE = "---"
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Control characters (tab and line breaks aside): MJML refuses the C0 ones with an error
# that blames the template, and no mail header may carry any. They reach the body by
# pasting, and front-matter values through YAML escapes such as "\e".
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class IssueSource:
    """An issue file split into its checked front matter and its Markdown body."""

    path: Path
    front: dict[str, Any]
    key_lines: dict[str, int]  # front-matter key -> 1-based line in the file
    body: str
    body_line: int  # 1-based line of the body's first line in the file
    lines: list[str] = field(repr=False)  # every line of the file
    sha256: str = ""  # of the text as the file stores it (UTF-8): names the revision

    @property
    def slug(self) -> str:
        """The issue's name: its file name without ``.md``."""
        return self.path.stem

    def line_of(self, key: str) -> int:
        """The line of a front-matter key, or 1 when the key is absent."""
        return self.key_lines.get(key, 1)


def compile_file(path: Path, settings: Settings) -> CompiledIssue:
    """Read the issue, the sponsor registry and the templates; compile once. Raises IssueError."""
    return compile_source(read_issue(path), settings)


def compile_text(text: str, path: Path, settings: Settings) -> CompiledIssue:
    """Compile an issue's text held in memory (an unsaved edit); ``path`` names it in errors.

    Nothing is read from ``path``; the sponsor registry and the templates are read as for
    ``compile_file``. Raises IssueError.
    """
    return compile_source(parse_issue(text, path), settings)


def compile_source(source: IssueSource, settings: Settings) -> CompiledIssue:
    """Compile an issue already read by ``read_issue``. Raises IssueError."""
    return compile_issue(
        document(source, settings), load_templates(settings, source), branding(settings)
    )


def branding(settings: Settings) -> Branding:
    """The values of the settings that every email shows."""
    return Branding(
        organisation=settings.organisation,
        postal_address=settings.postal_address,
        base_url=settings.base_url,
    )


def document(source: IssueSource, settings: Settings) -> IssueDocument:
    """Turn a checked issue file into what the renderer needs, sponsors resolved."""
    registry = sponsor_registry.load_registry(settings.sponsors_file)
    groups = registry.select(
        source.front.get("sponsors"), path=str(source.path), line=source.line_of("sponsors")
    )
    return IssueDocument(
        slug=source.slug,
        subject=source.front["subject"],
        body=source.body,
        preheader=source.front.get("preheader") or "",
        lang=source.front.get("lang") or "lt",
        date=source.front.get("date"),
        sponsors=groups,
        source_sha256=source.sha256,
    )


# Reading the file ----------------------------------------------------------------------


def read_issue(path: Path) -> IssueSource:
    """Read and check an issue file; IssueError names the file and line of any mistake."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IssueError("no such issue file", path=path) from None
    except IsADirectoryError:
        raise IssueError("is a folder, not an issue file", path=path) from None
    except OSError as exc:
        raise IssueError(f"cannot be read: {exc.strerror}", path=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IssueError("not UTF-8 text (save the file as UTF-8)", path=path, line=line) from None
    return parse_issue(text, path)


def parse_issue(text: str, path: Path) -> IssueSource:
    """Split and check an issue's text (no I/O); ``path`` names the file in every IssueError."""
    lines = text.removeprefix("\ufeff").splitlines()
    front_text, body_start = _split_front_matter(lines, path)
    front, key_lines = _parse_front_matter(front_text, path)
    front = _check_front_matter(front, key_lines, path)
    body = "\n".join(lines[body_start:])
    if not body.strip():
        raise IssueError(
            "the issue has no body after the front matter", path=path, line=body_start + 1
        )
    _refuse_control_characters(lines, body_start, path)
    return IssueSource(
        path=path,
        front=front,
        key_lines=key_lines,
        body=body + "\n",
        body_line=body_start + 1,
        lines=lines,
        sha256=hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest(),
    )


def _refuse_control_characters(lines: list[str], start: int, path: Path) -> None:
    """Name the line and column of the first control character from ``lines[start]`` on."""
    for number, line in enumerate(lines[start:], start=start + 1):
        found = _CONTROL.search(line)
        if found:
            raise IssueError(
                f"control character U+{ord(found.group()):04X} in column {found.start() + 1}: "
                "remove it",
                path=path,
                line=number,
            )


def _split_front_matter(lines: list[str], path: Path) -> tuple[str, int]:
    """Return the front matter's text and the index of the body's first line."""
    if not lines or lines[0].strip() != FENCE:
        raise IssueError(
            "missing front matter: the file must start with a '---' line", path=path, line=1
        )
    for index in range(1, len(lines)):
        if lines[index].strip() in (FENCE, "..."):
            return "\n".join(lines[1:index]), index + 1
    raise IssueError("front matter is not closed: add a '---' line after it", path=path, line=1)


def _parse_front_matter(text: str, path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse the YAML front matter; return its values and the file line of each key."""
    # The front matter starts on the file's second line, after '---'.
    node, values = load_yaml(text, path, first_line=2, what=" in front matter")
    if values is None:
        raise IssueError("front matter is empty: 'subject' is required", path=path, line=1)
    if not isinstance(values, dict) or not isinstance(node, yaml.MappingNode):
        raise IssueError("front matter must be 'key: value' lines", path=path, line=2)
    key_lines: dict[str, int] = {}
    for key_node, _value in node.value:
        key = str(key_node.value)
        if key in key_lines:
            raise IssueError(
                f"key {key!r} appears twice in front matter",
                path=path,
                line=key_node.start_mark.line + 2,
            )
        key_lines[key] = key_node.start_mark.line + 2
    return {str(key): value for key, value in values.items()}, key_lines


def _check_front_matter(
    front: dict[str, Any], key_lines: dict[str, int], path: Path
) -> dict[str, Any]:
    """Check every front-matter key and value; return them normalised."""
    for key in front:
        if key not in FRONT_MATTER_KEYS:
            close = difflib.get_close_matches(key, FRONT_MATTER_KEYS, n=1, cutoff=0.5)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f"; known keys: {', '.join(FRONT_MATTER_KEYS)}"
            )
            raise IssueError(
                f"unknown front-matter key {key!r}{hint}", path=path, line=key_lines[key]
            )
    if "subject" not in front:
        raise IssueError("missing required front-matter key 'subject'", path=path, line=1)

    def line(key: str) -> int:
        """The file line of ``key``, or 1 when it is absent."""
        return key_lines.get(key, 1)

    checked = {
        "subject": _text(front["subject"], "subject", path, line("subject"), required=True),
        "preheader": _text(front.get("preheader"), "preheader", path, line("preheader")),
        "date": _date(front.get("date"), path, line("date")),
        "lang": _choice(front.get("lang", "lt"), "lang", LANGUAGES, path, line("lang")),
        "template": _template_name(front.get("template", "default"), path, line("template")),
    }
    if "sponsors" in front:
        checked["sponsors"] = _sponsor_ids(front["sponsors"], path, line("sponsors"))
    return checked


def _text(value: Any, key: str, path: Path, line: int, *, required: bool = False) -> str:
    """Check a text value (numbers allowed) and collapse its whitespace."""
    if value is None and not required:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise IssueError(f"{key!r} must be text", path=path, line=line)
    value = " ".join(value.split())  # line breaks of every kind included
    control = _CONTROL.search(value)
    if control:
        raise IssueError(
            f"{key!r} contains the control character U+{ord(control.group()):04X}",
            path=path,
            line=line,
        )
    if required and not value:
        raise IssueError(f"{key!r} is empty", path=path, line=line)
    return value


def _date(value: Any, path: Path, line: int) -> dt.date | None:
    """Check the issue date: a YAML date or an ISO date string."""
    if value is None or isinstance(value, dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise IssueError(
            f"'date' must look like 2026-12-01, not {value!r}", path=path, line=line
        ) from None


def _choice(value: Any, key: str, allowed: tuple[str, ...], path: Path, line: int) -> str:
    """Check that a value is one of ``allowed``."""
    if value not in allowed:
        raise IssueError(
            f"{key!r} must be one of {', '.join(allowed)}, not {value!r}", path=path, line=line
        )
    return str(value)


def _template_name(value: Any, path: Path, line: int) -> str:
    """Check that the template name is a plain folder name (no path tricks)."""
    if not isinstance(value, str) or not _TEMPLATE_NAME.match(value):
        raise IssueError(
            f"'template' must be a folder name under the templates folder, not {value!r}",
            path=path,
            line=line,
        )
    return value


def _sponsor_ids(value: Any, path: Path, line: int) -> list[str]:
    """Normalise ``sponsors``: one id, a list of ids, or false/[] for no credit block."""
    if value is None or value is False:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise IssueError(
            "'sponsors' must be a list of tier or sponsor ids, e.g. [main, public]",
            path=path,
            line=line,
        )
    return value


# Folders -------------------------------------------------------------------------------


def inside_folder(path: Path, folder: Path) -> Path:
    """Return ``path`` if it lies inside ``folder`` once symlinks and ``..`` are resolved.

    Raises IssueError naming the file otherwise. A link within a folder is fine; one that
    leads out of it is not: ``issues/x.md -> /etc/hostname`` was listed by the editor
    and compiled, the file's text shown in the preview.
    """
    if not path.resolve().is_relative_to(folder.resolve()):
        raise IssueError(f"is a link that leads outside {folder}", path=path)
    return path


# Templates -----------------------------------------------------------------------------

_template_cache: dict[tuple[Any, ...], TemplateSet] = {}


def load_templates(settings: Settings, source: IssueSource) -> TemplateSet:
    """Read the template set the issue names (cached until one of its files changes).

    Only from inside the templates folder: a set, or a file of it, that is a link leading
    out of it is an IssueError. ``{% include %}`` and ``{% extends %}`` reach only the
    set's own files, which the renderer's loader knows by name and nothing else.
    """
    name = source.front["template"]
    folder = settings.templates_dir / name
    if not folder.is_dir():
        available = sorted(p.name for p in settings.templates_dir.glob("*") if p.is_dir())
        raise IssueError(
            f"unknown template {name!r}; available: {', '.join(available) or 'none'}",
            path=source.path,
            line=source.line_of("template"),
        )
    inside_folder(folder, settings.templates_dir)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in files:
        inside_folder(path, settings.templates_dir)
    key = (
        str(folder.resolve()),
        *((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files),
    )
    if key not in _template_cache:
        if len(_template_cache) > 16:
            _template_cache.clear()
        _template_cache[key] = TemplateSet(
            name=name, sources=_read_sources(files), folder=str(folder)
        )
    return _template_cache[key]


def _read_sources(files: list[Path]) -> tuple[tuple[str, str], ...]:
    """Read every file of a template set as UTF-8 text, by file name."""
    sources = []
    for path in files:
        try:
            sources.append((path.name, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            raise IssueError("template is not UTF-8 text", path=path) from None
    return tuple(sources)
