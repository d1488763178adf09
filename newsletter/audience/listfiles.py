"""Reading subscriber list files (CSV and XLSX) as a stream of rows with line numbers.

Lists arrive as spreadsheets exported by municipalities, so the reader accepts what
real Lithuanian exports look like: UTF-8 with or without a BOM, or Windows-1257
("ANSI" on a Lithuanian Windows); comma, semicolon or tab delimiters; headers in
English or Lithuanian (``El. paštas``, ``Vardas, pavardė``, ``Savivaldybė``,
``Pareigos``). A file that is neither encoding is refused rather than imported as
mojibake. Nothing here touches the database, and memory stays flat with file size:
rows are read one at a time.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import hashlib
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from newsletter.errors import SubscriberFileError

#: Canonical column names and the header spellings that mean them, compared after
#: folding case, diacritics, spaces and punctuation ("El. paštas" -> "elpastas").
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "emailaddress",
        "epastas",
        "elpastas",
        "elpastoadresas",
        "elektroninispastas",
    ),
    "name": ("name", "fullname", "vardas", "vardaspavarde", "vardasirpavarde", "pilnasvardas"),
    "municipality": ("municipality", "savivaldybe"),
    "role": ("role", "position", "title", "pareigos", "pareigybe"),
    "institution": ("institution", "organisation", "organization", "institucija", "istaiga"),
    "department": ("department", "skyrius", "padalinys"),
    "county": ("county", "apskritis"),
    "language": ("language", "lang", "kalba"),
}
_ALIAS_TO_COLUMN = {
    alias: column for column, aliases in COLUMN_ALIASES.items() for alias in aliases
}

ENCODINGS = ("utf-8-sig", "utf-8", "cp1257")
DELIMITERS = (",", ";", "\t")
_CHUNK = 1 << 20
_SAMPLE_LINES = 20
_HEADER_SEARCH_ROWS = 10


@dataclass(frozen=True)
class Row:
    """One data row: its first line in the file and its values by canonical column."""

    line: int
    values: dict[str, str]


@dataclass
class ListFile:
    """An opened list file: what was detected, and an iterator over its data rows."""

    path: Path
    kind: str  # "csv" | "xlsx"
    encoding: str  # the text encoding of a CSV file, "" for XLSX
    delimiter: str
    columns: tuple[str, ...]  # canonical names found, in file order
    ignored: tuple[str, ...]  # headers that name no known column (not stored)
    sha256: str
    size: int  # bytes (CSV) or rows (XLSX), for progress
    _rows: Iterator[Row] = field(repr=False)
    _position: Any = field(repr=False)
    _close: Any = field(repr=False)

    def rows(self) -> Iterator[Row]:
        """Yield the data rows in file order (blank rows skipped)."""
        return self._rows

    def position(self) -> int:
        """How far reading has got, in the unit of ``size``."""
        return int(self._position())

    def close(self) -> None:
        self._close()

    def __enter__(self) -> ListFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fold_header(text: str) -> str:
    """Fold a header for matching: lower case, no diacritics, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


def open_list_file(path: Path) -> ListFile:
    """Open a CSV or XLSX list file; ``SubscriberFileError`` says why one cannot be read."""
    if not path.is_file():
        raise SubscriberFileError("no such file", path=path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _open_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _open_xlsx(path)
    if suffix == ".xls":
        raise SubscriberFileError(
            "old Excel .xls files are not supported; save it as .xlsx or CSV UTF-8", path=path
        )
    raise SubscriberFileError(f"unknown file type {suffix!r}; use .csv or .xlsx", path=path)


# Encoding ------------------------------------------------------------------------------


def detect_encoding(path: Path) -> tuple[str, str]:
    """Return (encoding, sha256 of the bytes), reading the file in 1 MiB chunks.

    UTF-8 is tried first: Windows-1257 text with Lithuanian letters is practically
    never valid UTF-8. A file that goes wrong as UTF-8 *after* valid multi-byte UTF-8
    letters, or whose Lithuanian letters in UTF-8 elsewhere outnumber its bad bytes, is a
    damaged UTF-8 file, not Windows-1257 (read so, its letters would turn into "Å½"),
    and is refused with the line of the first bad byte.
    """
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SubscriberFileError(
            "the file is UTF-16 (Excel 'Unicode text'); save it as 'CSV UTF-8'", path=path
        )
    encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    digest, problem = _decode_all(path, encoding)
    if problem is None:
        return encoding, digest
    if encoding == "utf-8-sig" or problem.after_letters or _mostly_utf8(path):
        raise SubscriberFileError(
            f"invalid UTF-8 ({problem.detail}) in a file that is otherwise UTF-8",
            path=path,
            line=problem.line,
        )
    _, cp_problem = _decode_all(path, "cp1257")
    if cp_problem is not None:
        raise SubscriberFileError(
            f"the file is neither UTF-8 nor Windows-1257 ({cp_problem.detail}); "
            "save it as 'CSV UTF-8'",
            path=path,
            line=cp_problem.line,
        )
    return "cp1257", digest


LITHUANIAN_LETTERS = "ąčęėįšųūžĄČĘĖĮŠŲŪŽ"


def _mostly_utf8(path: Path) -> bool:
    """True when Lithuanian letters read as UTF-8 are at least as many as bytes that are not.

    A damaged UTF-8 file has many such letters and a stray bad byte or two. Windows-1257
    text has next to none (its letters are single bytes, invalid as UTF-8), and neither
    has a binary file mistaken for a list, which is mostly bad bytes.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    letters = bad = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            text = decoder.decode(chunk)
            bad += text.count("\ufffd")
            letters += sum(text.count(letter) for letter in LITHUANIAN_LETTERS)
    return letters >= bad + decoder.decode(b"", final=True).count("\ufffd")


@dataclass(frozen=True)
class _DecodeProblem:
    line: int
    detail: str
    after_letters: bool  # valid non-ASCII text was decoded before the problem


def _decode_all(path: Path, encoding: str) -> tuple[str, _DecodeProblem | None]:
    """Decode the whole file strictly; return (sha256, the first problem or None)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    digest = hashlib.sha256()
    line, letters = 1, False
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk.count(b"\n", 0, exc.start)
                letters = letters or not chunk[: exc.start].isascii()
                byte = chunk[exc.start : exc.start + 1].hex()
                return digest.hexdigest(), _DecodeProblem(line, f"byte 0x{byte}", letters)
            line += text.count("\n")
            letters = letters or not text.isascii()
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return digest.hexdigest(), _DecodeProblem(line, "the file ends mid-character", letters)
    return digest.hexdigest(), None


# CSV -----------------------------------------------------------------------------------


def detect_delimiter(sample: list[str]) -> str:
    """Pick the delimiter that occurs most often outside quotes in the first lines."""
    counts = dict.fromkeys(DELIMITERS, 0)
    for line in sample:
        quoted = False
        for char in line:
            if char == '"':
                quoted = not quoted
            elif not quoted and char in counts:
                counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _open_csv(path: Path) -> ListFile:
    encoding, digest = detect_encoding(path)
    with path.open(encoding=encoding, newline="") as handle:
        sample = [line for _, line in zip(range(_SAMPLE_LINES), handle, strict=False)]
    delimiter = detect_delimiter(sample)
    handle = path.open(encoding=encoding, newline="")
    try:
        reader = csv.reader(handle, delimiter=delimiter)
        numbered = _numbered_csv_rows(path, reader)
        header = _find_header(path, numbered)
    except BaseException:
        handle.close()
        raise
    return ListFile(
        path=path,
        kind="csv",
        encoding=encoding,
        delimiter=delimiter,
        columns=tuple(header.positions),
        ignored=header.ignored,
        sha256=digest,
        size=path.stat().st_size,
        _rows=_data_rows(numbered, header),
        _position=_byte_position(handle),
        _close=handle.close,
    )


def _byte_position(handle: IO[str]) -> Any:
    buffer = handle.buffer  # type: ignore[attr-defined]
    return lambda: buffer.tell() if not buffer.closed else 0


def _numbered_csv_rows(path: Path, reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line of the record, cells); csv errors name the line."""
    previous = 0
    try:
        for cells in reader:
            yield previous + 1, cells
            previous = reader.line_num
    except csv.Error as exc:
        raise SubscriberFileError(f"unreadable CSV ({exc})", path=path, line=previous + 1) from exc


# XLSX ----------------------------------------------------------------------------------


def _xlsx_errors() -> tuple[type[BaseException], ...]:
    """What openpyxl raises for a damaged workbook: zip, deflate, XML and its own errors.

    XML errors are ``SyntaxError`` subclasses, with ElementTree and with lxml alike.
    """
    import zlib
    from zipfile import BadZipFile

    from openpyxl.utils.exceptions import InvalidFileException

    return (BadZipFile, InvalidFileException, KeyError, OSError, ValueError, EOFError,
            SyntaxError, zlib.error)  # fmt: skip


def _open_xlsx(path: Path) -> ListFile:
    import openpyxl

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    try:
        with _quiet_openpyxl():
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except _xlsx_errors() as exc:
        raise SubscriberFileError(f"not a readable XLSX workbook ({exc})", path=path) from exc
    sheet = workbook.worksheets[0]
    state = {"row": 0}
    numbered = _numbered_xlsx_rows(path, sheet, state)
    try:
        header = _find_header(path, numbered)
    except BaseException:
        workbook.close()
        raise
    return ListFile(
        path=path,
        kind="xlsx",
        encoding="",
        delimiter="",
        columns=tuple(header.positions),
        ignored=header.ignored,
        sha256=digest.hexdigest(),
        size=sheet.max_row or 0,
        _rows=_data_rows(numbered, header),
        _position=lambda: state["row"],
        _close=workbook.close,
    )


def _numbered_xlsx_rows(
    path: Path, sheet: Any, state: dict[str, int]
) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cell texts); openpyxl parses the sheet lazily, row by row."""
    rows, errors = sheet.iter_rows(values_only=True), _xlsx_errors()
    while True:
        try:
            # Not around the yield: a warnings context held open across yields would
            # restore stale filters whenever the generator happens to be closed.
            with _quiet_openpyxl():
                values = next(rows, None)
        except errors as exc:
            raise SubscriberFileError(
                f"unreadable XLSX row ({exc})", path=path, line=state["row"] + 1
            ) from exc
        if values is None:
            return
        state["row"] += 1
        yield state["row"], [_cell_text(value) for value in values]


@contextmanager
def _quiet_openpyxl() -> Iterator[None]:
    """Ignore openpyxl's warnings about styles and extensions it drops (irrelevant here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        yield


def _cell_text(value: object) -> str:
    """Text of a cell as a person would read it (12.0 -> "12", dates in ISO form)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time(0):
        return value.date().isoformat()  # Excel keeps every date as a datetime
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


# Header and rows -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    line: int
    positions: dict[str, int]  # canonical column -> cell index
    ignored: tuple[str, ...]
    width: int  # cells up to the last non-blank header


def _find_header(path: Path, numbered: Iterator[tuple[int, list[str]]]) -> _Header:
    """Find the header row: the first with an email column, within the first rows.

    A title line above the header, as spreadsheets often have, is skipped.
    """
    first: list[str] | None = None
    for seen, (line, cells) in enumerate(numbered, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        first = first or cells
        positions, ignored = _map_headers(path, line, cells)
        if "email" in positions:
            width = max(i for i, cell in enumerate(cells) if cell.strip()) + 1
            return _Header(line, positions, ignored, width)
        if seen >= _HEADER_SEARCH_ROWS:
            break
    found = ", ".join(repr(c.strip()) for c in first or [] if c.strip()) or "nothing"
    raise SubscriberFileError(
        f"no email column (a header such as 'email' or 'El. paštas'); the first row has {found}",
        path=path,
    )


def _map_headers(path: Path, line: int, cells: list[str]) -> tuple[dict[str, int], tuple[str, ...]]:
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, header in enumerate(cells):
        column = _ALIAS_TO_COLUMN.get(fold_header(header))
        if column is None:
            if header.strip():
                ignored.append(header.strip())
            continue
        if column in positions:
            raise SubscriberFileError(
                f"columns {positions[column] + 1} and {index + 1} both mean {column!r}",
                path=path,
                line=line,
            )
        positions[column] = index
    return positions, tuple(ignored)


#: Key of ``Row.values`` set when a row has values beyond the header's columns (a name
#: with an unquoted delimiter shifts every later cell, so such a row is not trusted).
OVERFLOW = "__overflow__"
_OUTER_SPACE = " \t\u00a0"


def _data_rows(numbered: Iterator[tuple[int, list[str]]], header: _Header) -> Iterator[Row]:
    """Yield the rows after the header as canonical values; blank rows are skipped."""
    for line, cells in numbered:
        if not any(cell.strip() for cell in cells):
            continue
        values = {
            column: cells[index].strip(_OUTER_SPACE) if index < len(cells) else ""
            for column, index in header.positions.items()
        }
        if any(cell.strip() for cell in cells[header.width :]):
            values[OVERFLOW] = f"{len(cells)} values but the header has {header.width} columns"
        yield Row(line=line, values=values)
