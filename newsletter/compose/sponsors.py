"""The sponsor and partner registry: who is credited, in which tier, with which link and logo.

The registry is a YAML file (``sponsors.yaml`` at the repository root by default)::

    tiers:                      # in the order the credit block shows them
      - id: main
        size: large             # large: bigger logos, fewer per row
        default: true           # credited when an issue does not say which
    sponsors:                   # within a tier, in this order
      - id: teo
        name: TEO LT, AB
        tier: main
        url: https://www.teo.lt
        logo: static/sponsors/teo.png   # optional; relative to the base URL
        logo_width: 240                 # the logo's size in pixels, needed with a logo:
        logo_height: 80                 #   the email keeps its shape at every width
        alt: TEO LT, AB logotipas       # optional; defaults to the name

An issue picks tiers and/or sponsor ids in its ``sponsors`` front-matter key; the default
is the tier marked ``default: true`` (the main sponsors). ``load_registry`` reads and
checks the file; ``select`` does no I/O.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from newsletter.errors import IssueError

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SPONSOR_KEYS = {"id", "name", "tier", "url", "logo", "logo_width", "logo_height", "alt"}
_TIER_KEYS = {"id", "size", "default"}
SIZES = ("large", "normal")


@dataclass(frozen=True)
class Sponsor:
    """One sponsor or partner as the credit block shows it."""

    id: str
    name: str
    tier: str
    url: str
    logo: str = ""
    alt: str = ""
    logo_width: int = 0  # the logo's own size in pixels (given with every logo)
    logo_height: int = 0

    @property
    def alt_text(self) -> str:
        """The logo's alt text: the registry's, else the name."""
        return self.alt or self.name

    def logo_size(self, box_width: int, box_height: int) -> tuple[int, int]:
        """The logo's (width, height) to show within a box: its shape kept, never enlarged."""
        if self.logo_width <= 0 or self.logo_height <= 0:
            return box_width, box_height
        scale = min(1.0, box_width / self.logo_width, box_height / self.logo_height)
        return max(1, round(self.logo_width * scale)), max(1, round(self.logo_height * scale))


@dataclass(frozen=True)
class Tier:
    """A group of sponsors shown together, e.g. the main sponsors."""

    id: str
    size: str = "normal"
    default: bool = False


@dataclass(frozen=True)
class SponsorGroup:
    """The sponsors of one tier that an issue credits, in registry order."""

    tier: Tier
    sponsors: tuple[Sponsor, ...]


@dataclass(frozen=True)
class Registry:
    """Every tier and sponsor of the registry file, in file order."""

    tiers: tuple[Tier, ...]
    sponsors: tuple[Sponsor, ...]

    def default_selection(self) -> tuple[str, ...]:
        """The tier ids an issue credits when it does not say."""
        return tuple(tier.id for tier in self.tiers if tier.default)

    def known_ids(self) -> list[str]:
        """Every id an issue may name: tiers first, then sponsors."""
        return [tier.id for tier in self.tiers] + [sponsor.id for sponsor in self.sponsors]

    def select(
        self, wanted: Sequence[str] | None, *, path: str = "", line: int | None = None
    ) -> tuple[SponsorGroup, ...]:
        """Return the groups to credit for ``wanted`` tier/sponsor ids (None: the default).

        Raises IssueError naming the first unknown id and the closest known one.
        """
        chosen = self.default_selection() if wanted is None else tuple(wanted)
        tiers = {tier.id for tier in self.tiers}
        sponsors = {sponsor.id for sponsor in self.sponsors}
        for item in chosen:
            if item not in tiers and item not in sponsors and item != "all":
                raise IssueError(_unknown_message(item, self.known_ids()), path=path, line=line)
        every = "all" in chosen
        groups = []
        for tier in self.tiers:
            members = tuple(
                sponsor
                for sponsor in self.sponsors
                if sponsor.tier == tier.id and (every or tier.id in chosen or sponsor.id in chosen)
            )
            if members:
                groups.append(SponsorGroup(tier=tier, sponsors=members))
        return tuple(groups)


def _unknown_message(item: str, known: list[str]) -> str:
    """Say that a sponsor or tier id is unknown, suggesting the closest known one."""
    close = difflib.get_close_matches(item, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
    return f"unknown sponsor or tier {item!r} in 'sponsors'{hint}"


_cache: dict[tuple[str, int, int], Registry] = {}


def load_registry(path: Path) -> Registry:
    """Read and check the registry file (cached until the file changes)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise IssueError("sponsor registry not found", path=path) from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _cache:
        _cache.clear()
        _cache[key] = parse_registry(path.read_bytes(), path)
    return _cache[key]


def load_yaml(text: str, path: Path | str, first_line: int = 1, what: str = "") -> tuple[Any, Any]:
    """Parse YAML text into its node tree and its values; IssueError names the line of a mistake.

    ``first_line`` is the file line of the text's first line; ``what`` ends the message's
    first words (e.g. " in front matter"). PyYAML checks some values only while it builds
    them: a date such as 2026-13-01 raises ValueError, not YAMLError, with no line.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        values = yaml.SafeLoader("").construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + first_line if mark is not None else first_line
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise IssueError(f"invalid YAML{what}: {problem}", path=path, line=line) from None
    except ValueError as exc:
        line = _unbuildable(node).start_mark.line + first_line
        raise IssueError(f"invalid value{what}: {exc}", path=path, line=line) from None
    return node, values


def _unbuildable(node: Any) -> Any:
    """The first scalar under ``node`` that PyYAML cannot build (else ``node`` itself)."""
    pending, seen = [node], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.ScalarNode):
            try:
                yaml.SafeLoader("").construct_object(current)
            except ValueError:
                return current
        elif isinstance(current, yaml.MappingNode):
            pending[:0] = [child for pair in current.value for child in pair]
        elif isinstance(current, yaml.SequenceNode):
            pending[:0] = list(current.value)
    return node


def parse_registry(data: bytes, path: Path | str) -> Registry:
    """Parse and check the registry's YAML text; IssueError names the file and line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IssueError("not UTF-8 text", path=path, line=line) from None
    node, document = load_yaml(text, path)
    if not isinstance(document, dict):
        raise IssueError("expected 'tiers' and 'sponsors' keys", path=path, line=1)
    lines = _item_lines(node)
    tiers = tuple(
        _tier(entry, path, lines.get(("tiers", n)))
        for n, entry in enumerate(document.get("tiers") or [])
    )
    known_tiers = {tier.id for tier in tiers}
    sponsors = tuple(
        _sponsor(entry, known_tiers, path, lines.get(("sponsors", n)))
        for n, entry in enumerate(document.get("sponsors") or [])
    )
    _check_unique([t.id for t in tiers] + [s.id for s in sponsors], path)
    return Registry(tiers=tiers, sponsors=sponsors)


def _item_lines(node: Any) -> dict[tuple[str, int], int]:
    """Map (section, index) to the 1-based line of each list item in the YAML tree."""
    lines: dict[tuple[str, int], int] = {}
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key, value in node.value:
        if isinstance(value, yaml.SequenceNode):
            for index, item in enumerate(value.value):
                lines[(key.value, index)] = item.start_mark.line + 1
    return lines


def _fields(
    entry: Any, allowed: set[str], what: str, path: Path | str, line: int | None
) -> dict[str, Any]:
    """Check one registry entry is a mapping with known keys and an id; return it."""
    if not isinstance(entry, dict):
        raise IssueError(f"each {what} must be a mapping with an 'id'", path=path, line=line)
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise IssueError(f"unknown {what} key {unknown[0]!r}", path=path, line=line)
    ident = entry.get("id")
    if not isinstance(ident, str) or not _ID.match(ident):
        raise IssueError(
            f"{what} id must be lower-case letters, digits, '-' or '_', not {ident!r}",
            path=path,
            line=line,
        )
    return entry


def _tier(entry: Any, path: Path | str, line: int | None) -> Tier:
    """Check one tier entry of the registry."""
    entry = _fields(entry, _TIER_KEYS, "tier", path, line)
    size = entry.get("size", "normal")
    if size not in SIZES:
        raise IssueError(f"tier size must be one of {', '.join(SIZES)}", path=path, line=line)
    return Tier(id=entry["id"], size=size, default=bool(entry.get("default", False)))


def _sponsor(entry: Any, tiers: set[str], path: Path | str, line: int | None) -> Sponsor:
    """Check one sponsor entry of the registry."""
    entry = _fields(entry, _SPONSOR_KEYS, "sponsor", path, line)
    for key in ("name", "url", "tier"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise IssueError(f"sponsor {entry['id']!r} needs a {key!r}", path=path, line=line)
    if entry["tier"] not in tiers:
        raise IssueError(
            f"sponsor {entry['id']!r} has unknown tier {entry['tier']!r}", path=path, line=line
        )
    if not entry["url"].startswith(("https://", "http://")):
        raise IssueError(
            f"sponsor {entry['id']!r} url must start with https://", path=path, line=line
        )
    logo = str(entry.get("logo") or "").strip()
    width, height = _logo_dimensions(entry, logo, path, line)
    return Sponsor(
        id=entry["id"],
        name=entry["name"].strip(),
        tier=entry["tier"],
        url=entry["url"].strip(),
        logo=logo,
        alt=str(entry.get("alt") or "").strip(),
        logo_width=width,
        logo_height=height,
    )


def _logo_dimensions(
    entry: dict[str, Any], logo: str, path: Path | str, line: int | None
) -> tuple[int, int]:
    """A logo's ``logo_width`` and ``logo_height``: whole pixels, both given with a logo.

    The email writes them as the image's width and height attributes, so that mail
    clients keep its shape and reserve its place before it loads.
    """
    sizes = (entry.get("logo_width"), entry.get("logo_height"))
    if not logo:
        if any(size is not None for size in sizes):
            raise IssueError(
                f"sponsor {entry['id']!r} has a logo size but no 'logo'", path=path, line=line
            )
        return 0, 0
    if not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes):
        raise IssueError(
            f"sponsor {entry['id']!r} needs 'logo_width' and 'logo_height' with its logo "
            "(the image's size in pixels)",
            path=path,
            line=line,
        )
    return int(sizes[0]), int(sizes[1])


def _check_unique(ids: list[str], path: Path | str) -> None:
    """Refuse an id used twice, by tiers and sponsors together."""
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise IssueError(f"id {ident!r} is used twice", path=path)
        seen.add(ident)
