"""Exporting a list (or the part of it a segment holds) as CSV or XLSX, a page at a time.

Members are read in pages of ``PAGE`` by subscriber id, each page in its own short
transaction, so an export of any size holds neither a lock nor more than a page in memory,
and the web page can stream it as it is read. Every value that a spreadsheet would take
for a formula is neutralised (``spreadsheet_safe``), as in the campaign report: an
address or a name from a municipality's file may start with ``=``.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import ColumnElement, select

from newsletter import db
from newsletter.audience.segments import Definition
from newsletter.audience.subscribers import ATTRIBUTES, segment_filter
from newsletter.errors import InputError
from newsletter.models import Membership, Subscriber

#: Cells starting with these are formulas to a spreadsheet; an address, a name or a
#: server reply could start with one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: The columns of an export: the import reads them back under the same names.
COLUMNS: tuple[str, ...] = ("email", "name", "municipality", "role", *ATTRIBUTES, "status")
#: Membership states an export may be asked for (as the lists page counts them), and all.
STATUSES: tuple[str, ...] = ("active", "unsubscribed", "bounced", "pending", "all")
PAGE = 2000
CHUNK_BYTES = 64 * 1024


def spreadsheet_safe(text: str) -> str:
    """``text``, with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _status_condition(status: str) -> ColumnElement[bool]:
    """Members in ``status``, with the lists page's meaning of each count."""
    if status == "active":
        return (Membership.status == "active") & (Subscriber.status == "active")
    if status == "bounced":
        return (Membership.status != "unsubscribed") & (Subscriber.status == "bounced")
    if status in ("unsubscribed", "pending"):
        return Membership.status == status
    if status == "all":
        return Membership.id.is_not(None)
    raise InputError(f"status: expected one of {', '.join(STATUSES)}, not {status!r}")


def member_rows(
    url: str, list_id: int, status: str = "active", definition: Definition | None = None
) -> Iterator[tuple[str, ...]]:
    """The list's members in ``status`` (and the segment), as ``COLUMNS`` values, by id."""
    condition = _status_condition(status) & segment_filter(definition or {})
    after = 0
    while True:
        with db.transaction(url) as session:
            page = session.execute(
                select(*_COLUMNS_READ)
                .join(Membership, Membership.subscriber_id == Subscriber.id)
                .where(Membership.list_id == list_id, Subscriber.id > after, condition)
                .order_by(Subscriber.id)
                .limit(PAGE)
            ).all()
        yield from (_values(*row[1:]) for row in page)
        if len(page) < PAGE:
            return
        after = page[-1][0]


#: Plain columns, not ORM objects: building a ``Subscriber`` per row cost more than the query.
_COLUMNS_READ = (
    Subscriber.id,
    Subscriber.email,
    Subscriber.name,
    Subscriber.municipality,
    Subscriber.role,
    Subscriber.attributes,
    Subscriber.status,
    Membership.status,
)


def _values(
    email: str,
    name: str,
    municipality: str,
    role: str,
    attributes: dict[str, object] | None,
    person_status: str,
    member_status: str,
) -> tuple[str, ...]:
    """One export row; the status is the person's when they bounced or left everything."""
    extra = attributes or {}
    status = person_status if person_status != "active" else member_status
    return (
        email,
        name,
        municipality,
        role,
        *(str(extra.get(key, "")) for key in ATTRIBUTES),
        status,
    )


def csv_chunks(rows: Iterator[tuple[str, ...]]) -> Iterator[bytes]:
    """The header and the rows as UTF-8 CSV with a BOM (Excel reads it as UTF-8), in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([spreadsheet_safe(value) for value in row])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def xlsx_chunks(rows: Iterator[tuple[str, ...]]) -> Iterator[bytes]:
    """The header and the rows as an XLSX workbook, written row by row, then read out.

    openpyxl's write-only workbook keeps no rows in memory, but a zip is complete only
    when closed, so the workbook is written to a private temporary file first.
    """
    from openpyxl import Workbook

    with tempfile.TemporaryDirectory(prefix="newsletter-export-") as folder:
        path = Path(folder) / "export.xlsx"
        book = Workbook(write_only=True)
        sheet = book.create_sheet("members")
        sheet.append(list(COLUMNS))
        for row in rows:
            # openpyxl itself writes a string starting with "=" as a formula: the quote
            # keeps it text, in this file and in every copy a spreadsheet saves of it.
            sheet.append([spreadsheet_safe(value) for value in row])
        book.save(path)
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk
