"""Pathological XLSX files, written small on disk however large they unpack.

An XLSX file is a zip of XML parts. A sheet of 200,000 rows of 1,000 empty cells is 2 GB
of XML: too slow to write with openpyxl, or even to deflate, in a test. It is written here
from a few distinct pieces instead: each piece is deflated once, ending in a full flush
(which empties the compressor's history, so the compressed bytes stand alone), and the
compressed piece is repeated; the CRC-32 of the repeats is combined arithmetically. The
result is a valid zip whose directory declares the true sizes and CRCs.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import openpyxl
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

SHEET = "xl/worksheets/sheet1.xml"
PEOPLE = [
    ("ona@vilnius.example", "Ona Žemaitienė"),
    ("jonas@kaunas.example", "Jonas Petraitis"),
    ("ruta@alytus.example", "Rūta Čiurlionytė"),
]

#: (bytes, times): a sheet's XML as pieces, each repeated ``times``.
Pieces = list[tuple[bytes, int]]


def small_workbook(path: Path) -> Path:
    """A list of three people under an ``email, name`` header; style 1 is bold."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["email", "name"])
    sheet["A1"].font = Font(bold=True)
    for row in PEOPLE:
        sheet.append(row)
    workbook.save(path)
    return path


def stretched_used_range(path: Path) -> Path:
    """The three-person list with one formatted cell in the sheet's last one, XFD1048576.

    So Excel writes it once formatting has stretched the used range: the dimension
    says ``A1:XFD1048576``, and the file stays about 5 KB.
    """
    small_workbook(path)
    with _members(path) as parts:
        sheet = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', parts[SHEET])
        last = b'<row r="1048576"><c r="XFD1048576" s="1"/></row></sheetData>'
        parts[SHEET] = sheet.replace(b"</sheetData>", last)
    return path


def with_sheet(path: Path, pieces: Pieces) -> Path:
    """The three-person workbook with its sheet XML replaced by ``pieces``."""
    small_workbook(path)
    with _members(path) as parts:
        parts[SHEET] = pieces  # type: ignore[assignment]
    return path


def formatted_rows(rows: int, columns: int, *, after: Sequence[tuple[str, str]] = ()) -> Pieces:
    """Sheet XML: the header and three people, then ``rows`` rows of ``columns`` empty
    formatted cells (``<c s="1"/>``, as Excel writes a formatted range), then the people
    ``after``; with the dimension Excel would write for them."""
    last = f"{get_column_letter(max(columns, 2))}{1 + len(PEOPLE) + rows + len(after)}"
    head = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    head += b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    head += f'<dimension ref="A1:{last}"/><sheetData>'.encode() + _text_rows(
        [("email", "name"), *PEOPLE]
    )
    empty = b"<row>" + b'<c s="1"/>' * columns + b"</row>"
    # Repeat a block of rows, not one row, so that each compressed repeat is long.
    block = max(1, min(rows, 1_000_000 // len(empty)))
    pieces: Pieces = [(head, 1), (empty * block, rows // block), (empty, rows % block)]
    return [*pieces, (_text_rows(after) + b"</sheetData></worksheet>", 1)]


def _text_rows(rows: Sequence[tuple[str, ...]]) -> bytes:
    """Rows of inline strings, numbered on from the row before (no ``r`` attributes)."""
    cells = (
        "".join(f'<c t="inlineStr"><is><t>{text}</t></is></c>' for text in row) for row in rows
    )
    return "".join(f"<row>{row}</row>" for row in cells).encode()


def zip_bomb(path: Path, gigabytes: int = 3) -> Path:
    """A workbook of about ``gigabytes`` MB whose sheet XML unpacks to ``gigabytes`` GB of spaces."""
    spaces = b" " * 1_000_000
    pieces = formatted_rows(0, 0)
    return with_sheet(path, [pieces[0], (spaces, gigabytes * 1000), pieces[-1]])


def set_declared_size(path: Path, member: str, size: int) -> None:
    """Rewrite the size the zip directory declares for ``member`` (a lying directory)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, size_at, name_at in ((b"PK\x01\x02", 24, 46), (b"PK\x03\x04", 22, 30)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at : start + name_at + len(name)] == name:
                struct.pack_into("<I", data, start + size_at, size)
            start += 4
    path.write_bytes(bytes(data))


# Writing the zip ------------------------------------------------------------------------


class _members:
    """Read a zip's members into a dict; on exit write it back, pieces deflated by hand."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> dict[str, bytes]:
        import zipfile

        with zipfile.ZipFile(self.path) as archive:
            self.parts = {item.filename: archive.read(item) for item in archive.infolist()}
        return self.parts

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            _write_zip(self.path, self.parts)


def _write_zip(path: Path, parts: dict[str, bytes | Pieces]) -> None:
    """Write a zip (no zip64: every part under 4 GiB) of deflated parts."""
    directory, offset = b"", 0
    with path.open("wb") as handle:
        for name, content in parts.items():
            pieces = [(content, 1)] if isinstance(content, bytes) else content
            crc, size = 0, 0
            compressed = []
            for piece, times in pieces:
                if not times:
                    continue
                segment = _deflate(piece)
                compressed.append((segment, times))
                crc = _crc32_combine(crc, _crc32_repeated(piece, times), len(piece) * times)
                size += len(piece) * times
            final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # the last, empty block
            compressed_size = sum(len(s) * n for s, n in compressed) + len(final)
            fields = (20, 0, 8, 0, 0x21, crc, compressed_size, size, len(name.encode()), 0)
            header = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields) + name.encode()
            handle.write(header)
            for segment, times in compressed:
                for _ in range(times):
                    handle.write(segment)
            handle.write(final)
            directory += (
                struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, offset)
                + name.encode()
            )
            offset += len(header) + compressed_size
        handle.write(directory)
        end = (0, 0, len(parts), len(parts), len(directory), offset, 0)
        handle.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", *end))


def _deflate(data: bytes) -> bytes:
    """Raw deflate of ``data`` that stands alone: no final block, history emptied after."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


def _crc32_repeated(data: bytes, times: int) -> int:
    """CRC-32 of ``data * times``, by doubling."""
    crc, length = 0, 0
    power, power_length = zlib.crc32(data), len(data)
    while times:
        if times & 1:
            crc, length = _crc32_combine(crc, power, power_length), length + power_length
        power, power_length = _crc32_combine(power, power, power_length), power_length * 2
        times >>= 1
    return crc


def _crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of A + B from those of A and B and B's length (zlib's ``crc32_combine``)."""
    if length2 == 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)
        if length2 & 1:
            crc1 = _gf2_times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _gf2_square(even)
        if length2 & 1:
            crc1 = _gf2_times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]
