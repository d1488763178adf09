"""Reading subscriber list files (CSV and XLSX) as a stream of rows with line numbers.

Lists arrive as spreadsheets exported by municipalities, so the reader accepts what
real Lithuanian exports look like: UTF-8 with or without a BOM, or Windows-1257
("ANSI" on a Lithuanian Windows); comma, semicolon or tab delimiters; headers in
English or Lithuanian (``El. paštas``, ``Vardas, pavardė``, ``Savivaldybė``,
``Pareigos``). A file that is neither encoding is refused rather than imported as
mojibake. Nothing here touches the database, and memory stays flat with file size:
rows are read one at a time. Work stays in proportion to the list, not to what the file
claims: an XLSX file is refused when its parts would unpack to more than
``MAX_XLSX_UNPACKED`` bytes, only cells up to the header's width are read, and a sheet
ends at ``XLSX_EMPTY_ROWS_END`` empty rows in a row.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import hashlib
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from newsletter.audience.messages import msg
from newsletter.errors import Message, SubscriberFileError

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

#: Data rows a list file may have: the lists this is for hold thousands, and a million
#: rows is no longer a mailing list.
MAX_ROWS = 1_000_000
#: Columns up to the header's last one: a list has a handful.
MAX_COLUMNS = 200
#: An XLSX sheet ends at this many empty rows in a row. Formatting stretched past a list
#: writes its empty cells into the XML one by one, and openpyxl parses each of them.
XLSX_EMPTY_ROWS_END = 1000
#: Bytes the parts of an XLSX file may unpack to, all together. XLSX is zipped XML: a
#: 3 MB file can unpack to 3 GB, which took openpyxl a minute and 3 GB of memory to read.
#: 100,000 rows of 6 columns, as openpyxl writes them, unpack to 46 MB, so ``MAX_ROWS``
#: such rows fit.
MAX_XLSX_UNPACKED = 500_000_000


@dataclass(frozen=True)
class Row:
    """One data row: its first line in the file and its values by canonical column.

    ``overflow`` is (values in the row, columns of the header) when the row has values
    beyond the header's columns (see ``OVERFLOW``), else None.
    """

    line: int
    values: dict[str, str]
    overflow: tuple[int, int] | None = None


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
    _stopped_at: Any = field(repr=False, default=lambda: 0)

    def rows(self) -> Iterator[Row]:
        """Yield the data rows in file order (blank rows skipped)."""
        return self._rows

    def position(self) -> int:
        """How far reading has got, in the unit of ``size``."""
        return int(self._position())

    def stopped_at(self) -> int:
        """The line at which reading stopped before the end of the file, or 0 (see
        ``XLSX_EMPTY_ROWS_END``); known once the rows have been read."""
        return int(self._stopped_at())

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
        raise SubscriberFileError(msg("file.missing"), path=path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _open_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _open_xlsx(path)
    if suffix == ".xls":
        raise SubscriberFileError(msg("file.xls"), path=path)
    raise SubscriberFileError(msg("file.type", suffix=suffix), path=path)


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
        raise SubscriberFileError(msg("file.utf16"), path=path)
    encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    digest, problem = _decode_all(path, encoding)
    if problem is None:
        return encoding, digest
    if encoding == "utf-8-sig" or problem.after_letters or _mostly_utf8(path):
        raise SubscriberFileError(
            msg("file.bad_utf8", detail=problem.detail),
            path=path,
            line=problem.line,
        )
    _, cp_problem = _decode_all(path, "cp1257")
    if cp_problem is not None:
        raise SubscriberFileError(
            msg("file.unknown_encoding", detail=cp_problem.detail),
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
    detail: Message
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
                detail = msg("file.bad_byte", byte=byte)
                return digest.hexdigest(), _DecodeProblem(line, detail, letters)
            line += text.count("\n")
            letters = letters or not text.isascii()
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            detail = msg("file.cut_character")
            return digest.hexdigest(), _DecodeProblem(line, detail, letters)
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
        _rows=_data_rows(path, numbered, header),
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
        raise SubscriberFileError(
            msg("file.bad_csv", detail=str(exc)), path=path, line=previous + 1
        ) from exc


# XLSX ----------------------------------------------------------------------------------


def _xlsx_errors() -> tuple[type[BaseException], ...]:
    """What openpyxl raises for a damaged workbook: zip, deflate, XML and its own errors.

    XML errors are ``SyntaxError`` subclasses, with ElementTree and with lxml alike.
    """
    import zlib

    from openpyxl.utils.exceptions import InvalidFileException

    return (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, EOFError,
            SyntaxError, zlib.error)  # fmt: skip


def _open_xlsx(path: Path) -> ListFile:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    _refuse_oversized_workbook(path)
    workbook, close = _load_workbook(path)
    sheet = _SheetRows(path, workbook)
    numbered = iter(sheet)
    try:
        header = _find_header(path, numbered)
    except BaseException:
        close()
        raise
    sheet.width = header.width
    return ListFile(
        path=path,
        kind="xlsx",
        encoding="",
        delimiter="",
        columns=tuple(header.positions),
        ignored=header.ignored,
        sha256=digest.hexdigest(),
        size=sheet.height,
        _rows=_data_rows(path, numbered, header),
        _position=lambda: sheet.row,
        _close=close,
        _stopped_at=lambda: sheet.stopped_at,
    )


def _load_workbook(path: Path) -> tuple[Any, Callable[[], None]]:
    """Open the workbook read-only; return it and the function that closes it.

    openpyxl is handed an open file rather than the path because it leaves the file open
    when its loading fails (a ResourceWarning, seen with a sheet whose CRC was wrong).
    """
    import openpyxl

    handle = path.open("rb")
    try:
        with _quiet_openpyxl():
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except _xlsx_errors() as exc:
        handle.close()
        raise SubscriberFileError(msg("file.bad_xlsx", detail=str(exc)), path=path) from exc
    except BaseException:
        handle.close()
        raise

    def close() -> None:
        workbook.close()
        handle.close()

    return workbook, close


def _refuse_oversized_workbook(path: Path) -> None:
    """Refuse a workbook whose parts would unpack to more than ``MAX_XLSX_UNPACKED`` bytes.

    Judged from the sizes the zip directory declares, before anything is unpacked. They
    bind: Python's zipfile never returns more of a part than its declared size and then
    checks the CRC, so a directory that understates a size gets the file refused as
    damaged, not read on.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(item.file_size for item in archive.infolist())
    except _xlsx_errors() as exc:
        raise SubscriberFileError(msg("file.bad_xlsx", detail=str(exc)), path=path) from exc
    if unpacked > MAX_XLSX_UNPACKED:
        too_much = msg(
            "file.xlsx_bomb", unpacked_mb=unpacked / 1e6, limit_mb=MAX_XLSX_UNPACKED / 1e6
        )
        raise SubscriberFileError(too_much, path=path)


class _SheetRows:
    """The first sheet's rows as its XML holds them: (row number, cell texts up to ``width``).

    Not openpyxl's ``iter_rows``: it pads every row to the width the sheet's
    ``<dimension>`` claims and fills in every absent row up to the last one. Excel writes
    ``A1:XFD1048576`` once formatting has stretched the used range, and then a 5 KB list of
    three people is 16,384 cells for each of 1,048,576 rows (1.5 hours, extrapolated from
    two minutes of reading it). The
    parser that ``iter_rows`` itself runs yields only the rows that are there, with their
    numbers, and only cells up to ``width`` are converted. Until the header is found,
    ``width`` reaches one column past ``MAX_COLUMNS``, so that a wider header is seen.

    After ``XLSX_EMPTY_ROWS_END`` empty rows in a row reading stops, and ``stopped_at``
    says where: formatted empty cells are in the XML one by one (200,000 rows of 1,000
    are 2 GB), and openpyxl parses each.
    """

    def __init__(self, path: Path, workbook: Any) -> None:
        self.path = path
        self.workbook = workbook
        self.sheet = workbook.worksheets[0]
        self.height = self.sheet.max_row or 0  # as declared: for progress only
        self.width = MAX_COLUMNS + 1
        self.row = 0  # the number of the last row read
        self.stopped_at = 0

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        rows, errors, empty = self._parsed(), _xlsx_errors(), 0
        while True:
            try:
                # Not around the yield: a warnings context held open across yields would
                # restore stale filters whenever the generator happens to be closed.
                with _quiet_openpyxl():
                    parsed = next(rows, None)
            except errors as exc:
                raise SubscriberFileError(
                    msg("file.bad_xlsx_row", detail=str(exc)), path=self.path, line=self.row + 1
                ) from exc
            if parsed is None:
                return
            self.row, cells = parsed
            texts = self._texts(cells)
            empty = 0 if any(text.strip() for text in texts) else empty + 1
            if empty == XLSX_EMPTY_ROWS_END:
                self.stopped_at = self.row
                return
            yield self.row, texts

    def _texts(self, cells: list[dict[str, Any]]) -> list[str]:
        texts = [""] * self.width
        for cell in cells:
            if cell["column"] <= self.width:
                texts[cell["column"] - 1] = _cell_text(cell["value"])
        return texts

    def _parsed(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(row number, cells) from openpyxl's sheet parser, set up as its read-only sheet
        sets it up for ``iter_rows`` (openpyxl 3.1, ``_read_only._cells_by_row``)."""
        from openpyxl.worksheet._reader import WorkSheetParser

        sheet, workbook = self.sheet, self.workbook
        with sheet._get_source() as source:
            parser = WorkSheetParser(
                source,
                sheet._shared_strings,
                # Formulas as their text, not their cached result: a row with a formula is
                # refused (``refuse_formula``) rather than imported as a value nobody typed.
                data_only=False,
                epoch=workbook.epoch,
                date_formats=workbook._date_formats,
                timedelta_formats=workbook._timedelta_formats,
            )
            yield from parser.parse()


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
            if width > MAX_COLUMNS:
                raise SubscriberFileError(
                    msg("file.wide_header", limit=MAX_COLUMNS),
                    path=path,
                    line=line,
                )
            return _Header(line, positions, ignored, width)
        if seen >= _HEADER_SEARCH_ROWS:
            break
    found = ", ".join(repr(c.strip()) for c in first or [] if c.strip())
    raise SubscriberFileError(
        msg("file.no_email", found=found or msg("file.nothing")),
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
                msg(
                    "file.same_column", first=positions[column] + 1, second=index + 1, column=column
                ),
                path=path,
                line=line,
            )
        positions[column] = index
    return positions, tuple(ignored)


#: Key of ``Row.values`` set when a row has values beyond the header's columns (a name
#: with an unquoted delimiter shifts every later cell, so such a row is not trusted).
OVERFLOW = "__overflow__"
_OUTER_SPACE = " \t\u00a0"


def _data_rows(
    path: Path, numbered: Iterator[tuple[int, list[str]]], header: _Header
) -> Iterator[Row]:
    """Yield the rows after the header as canonical values; blank rows are skipped.

    Cells beyond the header's width are only read from CSV files: an XLSX file keeps its
    cells in their columns, so no value there is a shifted one (see ``_SheetRows``).
    """
    count = 0
    for line, cells in numbered:
        if not any(cell.strip() for cell in cells):
            continue
        count += 1
        if count > MAX_ROWS:
            raise SubscriberFileError(
                msg("file.too_many_rows", limit=MAX_ROWS),
                path=path,
                line=line,
            )
        values = {
            column: cells[index].strip(_OUTER_SPACE) if index < len(cells) else ""
            for column, index in header.positions.items()
        }
        overflow = None
        if any(cell.strip() for cell in cells[header.width :]):
            overflow = (len(cells), header.width)
            values[OVERFLOW] = f"{len(cells)} values but the header has {header.width} columns"
        refuse_formula(path, line, values)
        yield Row(line=line, values=values, overflow=overflow)


def is_formula(text: str) -> bool:
    """True for a spreadsheet formula ("=SUM(…)"); "=?utf-8?…?=" is a mail encoded word."""
    return text.startswith("=") and not text.startswith("=?")


def refuse_formula(path: Path, line: int, values: dict[str, str]) -> None:
    """SubscriberFileError naming the line and column of a formula: nothing is imported.

    A formula is not what the person who typed the file sees, and exported again it
    would run in the next reader's spreadsheet; the whole file is refused, so that the
    list keeper fixes it once rather than finding a half-imported list.
    """
    for column, text in values.items():
        if is_formula(text):
            raise SubscriberFileError(
                msg("file.formula", column=column, text=text[:40]),
                path=path,
                line=line,
            )
