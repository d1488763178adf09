"""Writing issue files from the browser: names, front matter, atomic and guarded saves.

The files in the issues folder stay the source of truth: the web writes them exactly as an
editor with a text editor would, so the CLI, git and the live preview keep working.

A write never leaves half a file: the text goes to a temporary file in the same folder,
is fsynced, then renamed over the issue (or linked to a new name, which fails if the name
is taken), and the folder is fsynced so the rename itself survives a crash.

A save is guarded: it names the sha256 of the text it was loaded from, and is refused with
``SaveConflict`` (carrying the current text) when the file no longer has that text.
Saves from the web processes of one machine are serialised by an ``flock`` on the folder.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from newsletter.errors import StateError

# Letters that NFKD does not split into an ASCII letter and a mark.
_TRANSLITERATION = str.maketrans({"ł": "l", "Ł": "L", "đ": "d", "ß": "ss", "ø": "o", "æ": "ae"})
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# The slug's words after the date; file names stay short enough for every file system.
SLUG_WORDS_MAX = 60
TEMPORARY_PREFIX = ".saving-"
# Far beyond the largest real issue (the preview warns at Gmail's 102 KB of HTML).
TEXT_MAX_BYTES = 1024 * 1024


class SaveConflict(StateError):
    """The file changed since the editor loaded it; ``current`` is its text now."""

    def __init__(self, path: Path, current: str) -> None:
        super().__init__(f"{path}: changed since it was opened; nothing was overwritten")
        self.current = current


def digest(text: str) -> str:
    """The sha256 of a text as the file stores it (UTF-8), in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def transliterate(text: str) -> str:
    """``text`` in ASCII letters: Lithuanian ą→a, č→c, ę→e, ė→e, į→i, š→s, ų→u, ū→u, ž→z."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def slug_words(subject: str) -> str:
    """The subject as lower-case ASCII words joined by hyphens (possibly empty)."""
    words = _NOT_SLUG.sub("-", transliterate(subject).lower()).strip("-")
    return words[:SLUG_WORDS_MAX].rstrip("-")


def base_slug(subject: str, date: dt.date) -> str:
    """``2026-12-01-words-of-the-subject``: the date first, so names sort newest first."""
    words = slug_words(subject)
    return f"{date.isoformat()}-{words}" if words else date.isoformat()


def front_matter(
    subject: str, preheader: str, date: dt.date, lang: str, sponsors: list[str] | None
) -> str:
    """The front-matter block (fences included) for these values, as YAML.

    ``sponsors`` None leaves the key out (the registry's default tier is credited); a list,
    even empty, is written as given.
    """
    values: dict[str, object] = {"subject": subject}
    if preheader:
        values["preheader"] = preheader
    values["date"] = date
    values["lang"] = lang
    if sponsors is not None:
        values["sponsors"] = sponsors
    dumped = yaml.safe_dump(values, allow_unicode=True, sort_keys=False, width=1000)
    return f"---\n{dumped}---\n"


def normalise(text: str) -> str:
    """The text as the file stores it: ``\\n`` line breaks (a form sends ``\\r\\n``), one
    final line break."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip("\n") + "\n"


def create(folder: Path, slug: str, text: str) -> Path:
    """Write a new issue ``folder/<slug>.md``, or ``<slug>-2.md`` … when the name is taken.

    Never replaces a file: the name is claimed by ``link``, which fails if it exists.
    """
    with _temporary(folder, text) as temporary:
        for number in range(1, 1000):
            name = slug if number == 1 else f"{slug}-{number}"
            path = folder / f"{name}.md"
            try:
                os.link(temporary, path)
            except FileExistsError:
                continue
            _fsync_folder(folder)
            return path
    raise StateError(f"{folder}: no free name for {slug!r}")


def save(path: Path, text: str, loaded_digest: str) -> str:
    """Replace the issue at ``path`` with ``text`` if it still has ``loaded_digest``.

    Returns the text it replaced. Raises ``SaveConflict`` with the current text otherwise, and
    writes nothing. A link inside the issues folder is followed: its target is replaced.
    A file removed meanwhile counts as an empty version.
    """
    target = path.resolve()
    with _locked(target.parent):
        try:
            current = read_text(target)
        except FileNotFoundError:
            current = (
                ""  # removed or renamed meanwhile: the save shows the conflict, then recreates it
            )
        if digest(current) != loaded_digest:
            raise SaveConflict(path, current)
        with _temporary(target.parent, text) as temporary:
            os.replace(temporary, target)
        _fsync_folder(target.parent)
    return current


def read_text(path: Path) -> str:
    """The issue's text; bytes that are not UTF-8 show as U+FFFD (the compile names them)."""
    return path.read_bytes().decode("utf-8", errors="replace")


@contextmanager
def _temporary(folder: Path, text: str) -> Iterator[Path]:
    """A fsynced file holding ``text`` in ``folder``; removed afterwards unless renamed."""
    handle, name = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=".tmp", dir=folder)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the folder (other saves on this machine wait)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _fsync_folder(folder: Path) -> None:
    """Make a rename or link in ``folder`` durable."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
