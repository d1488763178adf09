"""Segments: who of a campaign's lists receive it, by municipality, county, role and the rest.

A segment's definition is one small structure, kept as JSON on the campaign it was used
for and under a name in ``segments`` for reuse::

    {"municipality": ["Kauno r.", "Šiaulių m."], "role": ["direktorius"]}

Each field names a subscriber value (``FIELDS``) and lists the values it accepts: a person
matches when, for every field given, their value is one of its values (AND across fields,
OR within one). An empty definition matches everyone. ``parse_definition`` is the one
check of what a browser or a file sends; the SQL is ``subscribers.segment_filter``, so the
count on the form, the confirmation page, the overlap check and the outbox rows all read
the same recipients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, String, func, literal, select
from sqlalchemy.orm import Session

from newsletter.audience.messages import msg
from newsletter.audience.subscribers import CONTROL_CHARACTERS, eligible_recipients
from newsletter.errors import InputError, NotFoundError
from newsletter.models import Segment, Subscriber, attribute_text

#: The fields a segment may use, in the order the builder shows them.
FIELDS: tuple[str, ...] = (
    "municipality",
    "county",
    "role",
    "institution",
    "department",
    "language",
)
#: Subscriber columns among them; the others are kept in ``Subscriber.attributes``.
COLUMNS = ("municipality", "role")
MAX_VALUES = 200  # per field: Lithuania has 60 municipalities and 10 counties
MAX_VALUE_LENGTH = 200
MAX_NAME = 200
#: Values per field the builder offers, the first in order (the most common first would need
#: a count per value).
MAX_OFFERED = 500

Definition = dict[str, list[str]]


def parse_definition(raw: Mapping[str, Any]) -> Definition:
    """The definition in its one form (known fields, their distinct values in order).

    Raises InputError naming the field for an unknown field, a value that is not text,
    too long or holds a control character, or too many values. Empty fields are dropped.
    """
    if not isinstance(raw, Mapping):
        raise InputError(msg("segment.not_fields"))
    definition: Definition = {}
    for field, given in raw.items():
        if field not in FIELDS:
            raise InputError(msg("segment.unknown_field", field=field, known=", ".join(FIELDS)))
        values = [given] if isinstance(given, str) else given
        if not isinstance(values, Sequence) or not all(isinstance(v, str) for v in values):
            raise InputError(msg("segment.not_values", field=field))
        kept = list(dict.fromkeys(v.strip() for v in values if v.strip()))
        _check_values(field, kept)
        if kept:
            definition[field] = kept
    return {field: definition[field] for field in FIELDS if field in definition}


def _check_values(field: str, values: list[str]) -> None:
    if len(values) > MAX_VALUES:
        raise InputError(msg("segment.too_many_values", field=field, limit=MAX_VALUES))
    for value in values:
        if len(value) > MAX_VALUE_LENGTH or CONTROL_CHARACTERS.search(value):
            limit = MAX_VALUE_LENGTH
            raise InputError(msg("segment.bad_value", field=field, value=value[:40], limit=limit))


def from_form(form: Any) -> Definition:
    """The definition of a builder form: the fields ``seg.<field>``, each with many values."""
    return parse_definition({field: form.getlist(f"seg.{field}") for field in FIELDS})


def field_column(field: str) -> ColumnElement[str]:
    """The subscriber value a field names, as SQL (the expression its index is built on)."""
    if field in COLUMNS:
        return getattr(Subscriber, field)
    return attribute_text(field)


def offered_values(session: Session) -> dict[str, list[str]]:
    """For each field, the values active subscribers have (sorted, at most ``MAX_OFFERED``)."""
    return {field: list(session.scalars(offered_statement(field))) for field in FIELDS}


def offered_statement(field: str) -> Select[tuple[str]]:
    """The distinct values of one field, skipping through its index: one probe per value.

    A plain DISTINCT reads every active person (seconds at 1,000,000 people); this
    recursive query asks the index ``(status, field)`` (``models.SEGMENT_INDEXES``) for
    the first value after the one before, ``MAX_OFFERED`` times at most. ``> ''`` leaves
    out empty and missing values. The values come in the database's order.
    """
    column = field_column(field)

    def after(previous: ColumnElement[str]) -> ColumnElement[str]:
        return (
            select(column)
            .where(Subscriber.status == "active", column > previous)
            .order_by(column)
            .limit(1)
            .scalar_subquery()
        )

    first = select(after(literal("", String())).label("value"), literal(1).label("n"))
    found = first.cte(f"offered_{field}", recursive=True)
    found = found.union_all(
        select(after(found.c.value), found.c.n + 1).where(
            found.c.value.is_not(None), found.c.n < MAX_OFFERED
        )
    )
    return select(found.c.value).where(found.c.value.is_not(None)).order_by(found.c.n)


def count(session: Session, list_ids: Sequence[int], definition: Definition) -> int:
    """How many people of these lists the segment holds (as a campaign would reach them)."""
    eligible = eligible_recipients(list_ids, definition).subquery()
    return session.scalar(select(func.count()).select_from(eligible)) or 0


# Named segments ---------------------------------------------------------------------


def save(session: Session, name: str, definition: Definition, by: str = "") -> Segment:
    """Save the definition under ``name``; InputError (``segment_name: …``) when it is taken."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or CONTROL_CHARACTERS.search(name):
        raise InputError(msg("segment.name", limit=MAX_NAME))
    if session.scalar(select(Segment.id).where(Segment.name == name)) is not None:
        raise InputError(msg("segment.name_taken", name=name))
    saved = Segment(name=name, definition=parse_definition(definition), created_by=by[:320])
    session.add(saved)
    session.flush()
    return saved


def saved(session: Session) -> list[Segment]:
    """Every named segment, by name."""
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def find(session: Session, segment_id: int) -> Segment:
    """The named segment ``segment_id``; NotFoundError when there is none."""
    found = session.get(Segment, segment_id)
    if found is None:
        raise NotFoundError(msg("segment.not_found", segment_id=segment_id))
    return found


def delete(session: Session, segment_id: int) -> None:
    """Forget a named segment (campaigns keep the definition they were created with)."""
    session.delete(find(session, segment_id))
