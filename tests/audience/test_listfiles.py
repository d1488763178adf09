"""List files are read in the encodings and layouts real Lithuanian exports use."""

from __future__ import annotations

import itertools
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from newsletter.audience import listfiles
from newsletter.audience.listfiles import OVERFLOW, detect_delimiter, fold_header, open_list_file
from newsletter.errors import SubscriberFileError
from tests.audience import workbooks

FIXTURES = Path(__file__).parent / "fixtures"


def _read(path: Path) -> tuple[object, list[tuple[int, dict[str, str]]]]:
    with open_list_file(path) as listfile:
        return listfile, [(row.line, row.values) for row in listfile.rows()]


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter"),
    [
        ("utf8_comma.csv", "utf-8", ","),
        ("utf8_bom_semicolon.csv", "utf-8-sig", ";"),
        ("cp1257_semicolon.csv", "cp1257", ";"),
    ],
)
def test_encodings_and_delimiters_are_detected(name: str, encoding: str, delimiter: str) -> None:
    listfile, rows = _read(FIXTURES / name)
    assert (listfile.encoding, listfile.delimiter) == (encoding, delimiter)
    by_email = {values["email"]: values for _, values in rows}
    assert by_email["ona.zemaitiene@siauliai.example"]["name"] == "Ona Žemaitienė"
    assert by_email["ona.zemaitiene@siauliai.example"]["municipality"] == "Šiaulių m."
    assert [line for line, _ in rows] == [2, 3, 4]


def test_lithuanian_headers_map_to_columns_and_unknown_ones_are_ignored() -> None:
    listfile, rows = _read(FIXTURES / "utf8_bom_semicolon.csv")
    assert listfile.columns == ("email", "name", "municipality", "role")
    assert listfile.ignored == ("Telefonas",)
    assert "+370" not in str(rows)
    assert fold_header(" El. paštas ") == "elpastas" == fold_header("EL.PAŠTAS")


def test_xlsx_skips_a_title_row_and_keeps_spreadsheet_line_numbers() -> None:
    listfile, rows = _read(FIXTURES / "savivaldybes.xlsx")
    assert listfile.kind == "xlsx"
    assert listfile.columns == ("email", "name", "municipality", "role", "county")
    lines = dict(rows)
    assert lines[4]["name"] == "Jonas Petraitis"
    assert lines[8] == {
        "email": "pranas@birstonas.example",
        "name": "Pranas Bagdonas",
        "municipality": "Birštono",
        "role": "12345",
        "county": "",
    }
    assert lines[10]["name"] == "Vardas\nBcc: x@y.example"
    assert sorted(lines) == [4, 5, 6, 8, 9, 10]


def test_multi_line_records_report_their_first_line(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('email,name\n"a@x.example","two\nlines"\nb@x.example,B\n', encoding="utf-8")
    assert [line for line, _ in _read(path)[1]] == [2, 4]


def test_values_beyond_the_header_are_flagged(tmp_path: Path) -> None:
    path = tmp_path / "shifted.csv"
    path.write_text("email,name,,\na@x.example,Petraitis, Jonas\nb@x.example,B,,\n", "utf-8")
    rows = dict(_read(path)[1])
    assert rows[2][OVERFLOW] == "3 values but the header has 2 columns"
    assert OVERFLOW not in rows[3]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (['"Vardas, pavardė";El. paštas;Savivaldybė', "Jonas;j@x.example;Kauno r."], ";"),
        (["email,name", "a@x.example,A"], ","),
        (["email\tname", "a@x.example\tA"], "\t"),
        (["email"], ","),
    ],
)
def test_delimiter_detection_ignores_quoted_text(sample: list[str], expected: str) -> None:
    assert detect_delimiter(sample) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "undecodable.csv",
            "undecodable.csv:2: the file is neither UTF-8 nor Windows-1257 (byte 0x81)",
        ),
        (
            "damaged_utf8.csv",
            "damaged_utf8.csv:3: invalid UTF-8 (byte 0xe0) in a file that is otherwise UTF-8",
        ),
        (
            "damaged_utf8_early.csv",
            "damaged_utf8_early.csv:2: invalid UTF-8 (byte 0xe9) in a file that is otherwise UTF-8",
        ),
    ],
)
def test_undecodable_files_are_refused_not_read_as_mojibake(name: str, message: str) -> None:
    with pytest.raises(SubscriberFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_list_file(FIXTURES / name)


def test_unreadable_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    cases = {
        "utf16.csv": ("email,name\n".encode("utf-16"), "UTF-16"),
        "no_email.csv": (
            b"vardas,pareigos\nJonas,meras\n",
            "no email column.*'vardas', 'pareigos'",
        ),
        "twice.csv": (b"email,El. pastas\n", r"twice.csv:1: columns 1 and 2 both mean 'email'"),
        "fake.xlsx": (b"email\na@x.example\n", "not a readable XLSX workbook"),
        "old.xls": (b"\xd0\xcf\x11\xe0", "old Excel .xls files are not supported"),
        "list.pdf": (b"%PDF", "unknown file type '.pdf'"),
        # Binary data is not a damaged UTF-8 file, whatever letters it happens to hold.
        "binary.csv": (random.Random(1).randbytes(3000), "neither UTF-8 nor Windows-1257"),
        "quote.csv": (
            b'email,name\na@x.example,"' + b"x" * 200_000 + b"\n",
            "quote.csv:2: unreadable CSV",
        ),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with (
            pytest.raises(SubscriberFileError, match=message),
            open_list_file(tmp_path / name) as f,
        ):
            list(f.rows())
    with pytest.raises(SubscriberFileError, match="no such file"):
        open_list_file(tmp_path / "missing.csv")


def _cut_sheet_xml(path: Path) -> None:
    """Rewrite the XLSX with its first sheet's XML cut in half."""
    with zipfile.ZipFile(path) as original:
        items = [(item, original.read(item.filename)) for item in original.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as copy:
        for item, data in items:
            cut = item.filename == "xl/worksheets/sheet1.xml"
            copy.writestr(item, data[: len(data) // 2] if cut else data)


def _garble_compressed_sheet(path: Path) -> None:
    """Flip bytes inside the compressed data of the first sheet, as a bad disk would."""
    with zipfile.ZipFile(path) as workbook:
        item = workbook.getinfo("xl/worksheets/sheet1.xml")
    raw = bytearray(path.read_bytes())
    start = item.header_offset + 30 + len(item.filename) + len(item.extra) + 40
    raw[start : start + 40] = bytes(byte ^ 0x55 for byte in raw[start : start + 40])
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", [_cut_sheet_xml, _garble_compressed_sheet])
def test_a_damaged_xlsx_is_refused_with_the_reason(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["email", "name"])
    for n in range(200):
        workbook.active.append([f"asmuo{n}@x.example", f"Asmuo {n}"])
    path = tmp_path / "damaged.xlsx"
    workbook.save(path)
    damage(path)
    with (
        pytest.raises(SubscriberFileError, match=r"damaged\.xlsx(:\d+)?: .*XLSX"),
        open_list_file(path) as listfile,
    ):
        list(listfile.rows())


def test_xlsx_numbers_and_dates_read_as_people_see_them(tmp_path: Path) -> None:
    import datetime

    workbook = openpyxl.Workbook()
    workbook.active.append(["email", "name", "role"])
    workbook.active.append(["a@x.example", 12.0, datetime.date(2026, 1, 31)])
    workbook.active.append(["b@x.example", 1.5, None])
    workbook.save(tmp_path / "numbers.xlsx")
    rows = [values for _, values in _read(tmp_path / "numbers.xlsx")[1]]
    assert [(r["name"], r["role"]) for r in rows] == [("12", "2026-01-31"), ("1.5", "")]


# Pathological workbooks ----------------------------------------------------------------


@pytest.fixture
def cell_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail as soon as reading converts more than 10,000 cells (the lists here have 8)."""
    convert, count = listfiles._cell_text, itertools.count(1)

    def counted(value: object) -> str:
        if next(count) > 10_000:
            raise AssertionError("more than 10,000 cells converted")
        return convert(value)

    monkeypatch.setattr(listfiles, "_cell_text", counted)


PEOPLE = [(line, {"email": email, "name": name}) for line, (email, name) in enumerate(
    workbooks.PEOPLE, start=2
)]  # fmt: skip


@pytest.mark.usefixtures("cell_budget")
def test_a_used_range_stretched_to_xfd1048576_reads_only_the_list(tmp_path: Path) -> None:
    path = workbooks.stretched_used_range(tmp_path / "stretched.xlsx")
    assert path.stat().st_size < 6_000
    listfile, rows = _read(path)
    assert rows == PEOPLE
    assert listfile.stopped_at() == 0  # the sheet ended by itself


@pytest.mark.usefixtures("cell_budget")
def test_reading_stops_after_a_run_of_empty_formatted_rows(tmp_path: Path) -> None:
    late = ("veluojantis@x.example", "Vėluojantis")
    path = workbooks.with_sheet(
        tmp_path / "formatted.xlsx",
        workbooks.formatted_rows(listfiles.XLSX_EMPTY_ROWS_END * 3, 20, after=[late]),
    )
    listfile, rows = _read(path)
    assert rows == PEOPLE
    assert listfile.stopped_at() == 4 + listfiles.XLSX_EMPTY_ROWS_END
    # One empty row fewer, and the person after them is read.
    pieces = workbooks.formatted_rows(listfiles.XLSX_EMPTY_ROWS_END - 1, 20, after=[late])
    listfile, rows = _read(workbooks.with_sheet(tmp_path / "gap.xlsx", pieces))
    assert rows[-1] == (4 + listfiles.XLSX_EMPTY_ROWS_END, {"email": late[0], "name": late[1]})
    assert listfile.stopped_at() == 0


@pytest.mark.usefixtures("cell_budget")
def test_200000_rows_of_1000_empty_cells_are_refused_unparsed(tmp_path: Path) -> None:
    path = workbooks.with_sheet(tmp_path / "empty.xlsx", workbooks.formatted_rows(200_000, 1000))
    assert path.stat().st_size < 8_000_000
    with (
        pytest.raises(SubscriberFileError) as refused,
        open_list_file(path) as listfile,
    ):
        list(listfile.rows())
    assert str(refused.value) == (
        f"{path}: the workbook unpacks to 2,002 MB, more than the 500 MB a list file may; "
        "delete formatted empty rows and columns beyond the list, or save it as CSV"
    )


@pytest.mark.usefixtures("cell_budget")
def test_a_zip_bomb_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    path = workbooks.zip_bomb(tmp_path / "bomb.xlsx", gigabytes=3)
    assert path.stat().st_size < 4_000_000
    with pytest.raises(SubscriberFileError, match=r"bomb\.xlsx: the workbook unpacks to 3,000 MB"):
        open_list_file(path)
    # A directory that understates the size gets the sheet read only that far: damaged.
    workbooks.set_declared_size(path, workbooks.SHEET, 10_000)
    with pytest.raises(SubscriberFileError, match=r"bomb\.xlsx: not a readable .*Bad CRC-32"):
        open_list_file(path)


def test_a_header_wider_than_the_limit_is_refused(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["email", "name"])
    workbook.active.cell(1, listfiles.MAX_COLUMNS + 1, "pastaba")
    workbook.save(tmp_path / "wide.xlsx")
    (tmp_path / "wide.csv").write_text("email" + "," * listfiles.MAX_COLUMNS + "x\n", "utf-8")
    for name in ("wide.xlsx", "wide.csv"):
        with pytest.raises(
            SubscriberFileError, match=rf"{name}:1: the header row goes on past column 200,"
        ):
            open_list_file(tmp_path / name)


def test_more_rows_than_the_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listfiles, "MAX_ROWS", 3)
    workbooks.small_workbook(tmp_path / "three.xlsx")
    assert len(_read(tmp_path / "three.xlsx")[1]) == 3
    path = tmp_path / "four.csv"
    path.write_text("email\n\na@x.example\nb@x.example\nc@x.example\nd@x.example\n", "utf-8")
    with (
        pytest.raises(SubscriberFileError, match=r"four\.csv:6: more than 3 rows; split"),
        open_list_file(path) as listfile,
    ):
        list(listfile.rows())
