"""The audience's messages to people, each under a stable code with its English text.

An error raised here, or a row an import rejects, carries a ``Message`` (``msg(code,
**params)``): the command line prints its English text, which is ``MESSAGES[code]``
filled in, exactly as before; the editors' pages show the code's Lithuanian or English
text from their catalogue (``newsletter.web.i18n``, key ``error.<code>``). A parameter
may itself be a ``Message`` (a detail such as "byte 0xff"), translated in turn.

A code names what went wrong, never the words: the words may change, the code stays.
Every code here has both translations in the catalogue (tests/web/test_messages.py).
"""

from __future__ import annotations

from newsletter.errors import Message

MESSAGES: dict[str, str] = {
    # Reading a list file (listfiles.py); the error names the file and the line apart.
    "file.missing": "no such file",
    "file.xls": "old Excel .xls files are not supported; save it as .xlsx or CSV UTF-8",
    "file.type": "unknown file type {suffix!r}; use .csv or .xlsx",
    "file.utf16": "the file is UTF-16 (Excel 'Unicode text'); save it as 'CSV UTF-8'",
    "file.bad_utf8": "invalid UTF-8 ({detail}) in a file that is otherwise UTF-8",
    "file.unknown_encoding": (
        "the file is neither UTF-8 nor Windows-1257 ({detail}); save it as 'CSV UTF-8'"
    ),
    "file.bad_byte": "byte 0x{byte}",
    "file.cut_character": "the file ends mid-character",
    "file.bad_csv": "unreadable CSV ({detail})",
    "file.bad_xlsx": "not a readable XLSX workbook ({detail})",
    "file.bad_xlsx_row": "unreadable XLSX row ({detail})",
    "file.xlsx_bomb": (
        "the workbook unpacks to {unpacked_mb:,.0f} MB, more than the {limit_mb:,.0f} MB a "
        "list file may; delete formatted empty rows and columns beyond the list, or save it "
        "as CSV"
    ),
    "file.wide_header": (
        "the header row goes on past column {limit}, more than a list may have; delete the "
        "columns after the list's own"
    ),
    "file.no_email": (
        "no email column (a header such as 'email' or 'El. paštas'); the first row has {found}"
    ),
    "file.nothing": "nothing",
    "file.same_column": "columns {first} and {second} both mean {column!r}",
    "file.too_many_rows": "more than {limit:,} rows; split the list into smaller files",
    "file.formula": "a formula in column {column} ({text!r}); replace it with its value",
    # A row of a list file that is not imported (lists.py): the report gives its line.
    "row.overflow": "{values} values but the header has {columns} columns",
    "row.control": "control character (such as a line break) in {column}",
    "row.header": "{column} cannot go into a mail header: it {detail}",
    "row.too_long": "{column} is longer than {limit} characters",
    "row.attribute_too_long": "an attribute is longer than {limit} characters",
    # An address (subscribers.normalise_email), in a row or a form.
    "email.empty": "the email address is empty",
    "email.control": "the email address contains a control character",
    "email.invalid": "invalid email address {address!r}: {detail}",
    # Importing into a list (lists.import_file).
    "import.slug": "list slug {slug!r} must be lower-case letters, digits and '-'",
    "import.name_too_long": "list name is longer than {limit} characters",
    "import.name_control": "list name contains a control character (such as a line break)",
    "import.sync_nothing": (
        "refusing --sync: no row could be imported, so every member would be removed"
    ),
    # Creating and changing lists (lists.create_list, change_list); ``field: …`` first.
    "list.slug": "slug: {slug!r} must be lower-case letters, digits and '-', up to 64",
    "list.slug_taken": "slug: a list {slug!r} exists already",
    "list.name_required": "name: a list needs a name",
    "list.name_too_long": "name: one line of at most {limit} characters",
    "list.description_too_long": "description: at most {limit} characters",
    # Segments (segments.py); ``field: …`` first.
    "segment.not_fields": "segment: expected fields with lists of values",
    "segment.unknown_field": "segment: unknown field {field!r}; known: {known}",
    "segment.not_values": "{field}: expected a list of values",
    "segment.too_many_values": "{field}: at most {limit} values",
    "segment.bad_value": "{field}: {value!r} is not one line of at most {limit} characters",
    "segment.name": "segment_name: give the segment a name of one line, at most {limit}",
    "segment.name_taken": "segment_name: a segment named {name!r} exists already",
    "segment.not_found": "no segment {segment_id}",
}


def msg(code: str, **params: object) -> Message:
    """The message ``code`` with ``params``; its text is the registered English filled in."""
    return Message(code, MESSAGES[code].format(**params), params)
