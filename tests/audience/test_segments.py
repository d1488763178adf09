"""The segment builder's queries on SQLite and PostgreSQL: the values it offers and the count.

The values come from skipping through one index per field (``segments.offered_statement``);
these tests hold them to what a plain DISTINCT over the same people gives, and check that
each field's query and a segment's filter are answered from that field's index.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter import db
from newsletter.audience import segments
from newsletter.audience.subscribers import eligible_recipients
from newsletter.models import MailingList, Subscriber
from tests.audience.factories import add_list, add_subscriber

PEOPLE = [  # (municipality, role, attributes, status)
    ("Šiaulių m.", "meras", {"county": "Šiaulių", "language": "lt"}, "active"),
    ("Alytaus r.", "direktorius", {"county": "Alytaus", "language": "lt"}, "active"),
    ("Kauno m.", "meras", {"county": "Kauno", "institution": "Kauno biblioteka"}, "active"),
    ("Alytaus r.", "", {"county": "Alytaus", "department": ""}, "active"),
    ("Zarasų r.", "vedėjas", {"county": "Utenos", "language": "ru"}, "active"),
    # Values only people who no longer receive mail hold are not offered.
    ("Neringos sav.", "seniūnas", {"county": "Klaipėdos", "language": "de"}, "unsubscribed"),
    ("Birštono sav.", "sekretorius", {"institution": "Birštono muziejus"}, "bounced"),
    ("Kauno m.", "specialistas", {"department": "Kultūros skyrius"}, "active"),
]


def _people(session: Session) -> MailingList:
    """Everyone of ``PEOPLE`` on one list (an active membership each)."""
    kept = add_list(session, "savivaldybes")
    for n, (town, role, attributes, status) in enumerate(PEOPLE):
        add_subscriber(
            session,
            f"asmuo{n}@savivaldybe.example",
            {kept: "active"},
            municipality=town,
            role=role,
            attributes=attributes,
            status=status,
        )
    return kept


def _plain_distinct(session: Session, field: str) -> list[str]:
    """The values as one DISTINCT over every active person gives them, in the database's order."""
    column = segments.field_column(field)
    return list(
        session.scalars(
            select(column)
            .distinct()
            .where(Subscriber.status == "active", column.is_not(None), column != "")
            .order_by(column)
        )
    )


def test_the_builder_offers_the_values_active_people_hold(database_url: str) -> None:
    with db.transaction(database_url) as session:
        _people(session)
    with db.transaction(database_url) as session:
        offered = segments.offered_values(session)
        assert list(offered) == list(segments.FIELDS)
        for field in segments.FIELDS:
            assert offered[field] == _plain_distinct(session, field), field
    assert offered["county"] == sorted(offered["county"]) and "Šiaulių" in offered["county"]
    assert offered["role"] == ["direktorius", "meras", "specialistas", "vedėjas"]
    assert offered["language"] == ["lt", "ru"]  # not "de": its only holder unsubscribed
    assert offered["institution"] == ["Kauno biblioteka"]  # the museum's person bounced
    assert offered["department"] == ["Kultūros skyrius"]  # an empty value is no value


def test_the_builder_offers_the_first_values_up_to_its_limit(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.transaction(database_url) as session:
        _people(session)
    monkeypatch.setattr(segments, "MAX_OFFERED", 2)
    with db.transaction(database_url) as session:
        offered = segments.offered_values(session)
        assert offered["municipality"] == _plain_distinct(session, "municipality")[:2]
        assert offered["role"] == ["direktorius", "meras"]


def test_an_empty_audience_offers_nothing(database_url: str) -> None:
    with db.transaction(database_url) as session:
        assert segments.offered_values(session) == {field: [] for field in segments.FIELDS}


def _plan(session: Session, statement: object) -> str:
    compiled = statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # On a table of a few rows a scan is cheaper; what matters is that the index can
        # answer the very expression the query writes, as it must at 1,000,000 people.
        # Nor may it read every active person through another field's index (all start
        # with the status) and sort them: the probe must come ordered from its own.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            session.connection().exec_driver_sql(f"SET LOCAL {setting} = off")
        lines = session.connection().exec_driver_sql(f"EXPLAIN {compiled}")
        return "\n".join(row[0] for row in lines)
    lines = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
    return "\n".join(row[-1] for row in lines)


@pytest.mark.parametrize("field", segments.FIELDS)
def test_each_field_is_offered_from_its_own_index(database_url: str, field: str) -> None:
    with db.transaction(database_url) as session:
        _people(session)
        plan = _plan(session, segments.offered_statement(field))
    assert f"ix_subscribers_segment_{field}" in plan, plan


def test_a_segment_on_an_attribute_is_counted_from_its_index(database_url: str) -> None:
    with db.transaction(database_url) as session:
        kept = _people(session)
    with db.transaction(database_url) as session:  # the plan with only the county's index
        for field in segments.FIELDS:
            if field != "county":
                session.connection().exec_driver_sql(f"DROP INDEX ix_subscribers_segment_{field}")
        plan = _plan(
            session,
            select(Subscriber.id).where(
                Subscriber.status == "active",
                segments.field_column("county").in_(["Alytaus", "Kauno"]),
            ),
        )
        assert "ix_subscribers_segment_county" in plan, plan
        definition = {"county": ["Alytaus", "Kauno"], "role": ["meras", "direktorius"]}
        eligible = eligible_recipients([kept.id], definition).subquery()
        emails = set(session.scalars(select(eligible.c.email)))
        assert emails == {"asmuo1@savivaldybe.example", "asmuo2@savivaldybe.example"}
        assert segments.count(session, [kept.id], definition) == 2
        assert segments.count(session, [kept.id], {"language": ["lt", "de"]}) == 2
        assert segments.count(session, [kept.id], {}) == session.scalar(
            select(func.count()).where(Subscriber.status == "active")
        )
