"""Segments, the set of eligible recipients and the check made before each send."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from newsletter import db
from newsletter.audience.subscribers import (
    can_receive,
    eligible_recipients,
    email_hmac,
    is_suppressed,
    segment_filter,
)
from newsletter.errors import InputError
from newsletter.models import Campaign, OutboxRow, Subscriber, Suppression
from tests.audience.factories import add_list, add_subscriber

KEY = b"test-secret-key-0123456789abcdef"


def _people(database_url: str) -> dict[str, int]:
    """Two overlapping lists and people in every state; returns ids by name."""
    with db.transaction(database_url) as s:
        towns = add_list(s, "savivaldybes")
        libraries = add_list(s, "bibliotekos")
        ids = {
            "both": add_subscriber(
                s,
                "meras@kaunas.example",
                {towns: "active", libraries: "active"},
                municipality="Kauno r.",
                role="meras",
                attributes={"county": "Kauno"},
            ).id,
            "towns": add_subscriber(
                s,
                "direktorius@kaunas.example",
                {towns: "active"},
                municipality="Kauno r.",
                role="administracijos direktorius",
            ).id,
            "left_list": add_subscriber(
                s,
                "vedeja@alytus.example",
                {towns: "unsubscribed", libraries: "active"},
                municipality="Alytaus m.",
                role="meras",
            ).id,
            "left_all": add_subscriber(
                s, "buves@utena.example", {towns: "unsubscribed"}, status="unsubscribed"
            ).id,
            "bounced": add_subscriber(
                s,
                "nera@siauliai.example",
                {towns: "active"},
                status="bounced",
                municipality="Kauno r.",
                role="meras",
            ).id,
            "libraries": add_subscriber(
                s, "biblioteka@vilnius.example", {libraries: "active"}, role="direktorius"
            ).id,
        }
        ids["list_towns"], ids["list_libraries"] = towns.id, libraries.id
    return ids


def _recipients(database_url: str, list_ids: list[int], where: dict[str, str]) -> list[tuple]:
    with db.transaction(database_url) as s:
        return sorted(tuple(row) for row in s.execute(eligible_recipients(list_ids, where)))


def test_one_row_per_active_subscriber_and_lowest_list_wins(database_url: str) -> None:
    ids = _people(database_url)
    towns, libraries = ids["list_towns"], ids["list_libraries"]
    rows = _recipients(database_url, [towns, libraries], {})
    assert rows == sorted(
        [
            (ids["both"], min(towns, libraries), "meras@kaunas.example"),
            (ids["towns"], towns, "direktorius@kaunas.example"),
            (ids["left_list"], libraries, "vedeja@alytus.example"),
            (ids["libraries"], libraries, "biblioteka@vilnius.example"),
        ]
    )


def test_segment_on_columns_and_attributes(database_url: str) -> None:
    ids = _people(database_url)
    towns = ids["list_towns"]
    rows = _recipients(database_url, [towns], {"municipality": "Kauno r.", "role": "meras"})
    assert [r[0] for r in rows] == [ids["both"]]
    rows = _recipients(database_url, [towns, ids["list_libraries"]], {"county": "Kauno"})
    assert [r[0] for r in rows] == [ids["both"]]
    assert _recipients(database_url, [towns], {"municipality": "Vilniaus m."}) == []


def test_unknown_attribute_is_a_clear_error() -> None:
    with pytest.raises(
        InputError, match="unknown attribute 'savivaldybe' in --where; known: municipality, role"
    ):
        segment_filter({"savivaldybe": "Kauno r."})
    assert segment_filter({}) is not None


def test_select_fills_the_outbox_in_one_statement(database_url: str) -> None:
    ids = _people(database_url)
    with db.transaction(database_url) as s:
        campaign = Campaign(issue_slug="2026-01", subject="Sausio naujienos")
        s.add(campaign)
        s.flush()
        recipients = eligible_recipients([ids["list_towns"], ids["list_libraries"]], {}).subquery()
        s.execute(
            insert(OutboxRow).from_select(
                ["campaign_id", "subscriber_id", "list_id", "email"],
                select(
                    campaign.id,
                    recipients.c.subscriber_id,
                    recipients.c.list_id,
                    recipients.c.email,
                ),
            )
        )
        assert s.scalar(select(OutboxRow.id).where(OutboxRow.subscriber_id == ids["both"]))
        assert len(s.scalars(select(OutboxRow.id)).all()) == 4


def test_can_receive_follows_every_consent_state(database_url: str) -> None:
    ids = _people(database_url)
    towns, libraries = ids["list_towns"], ids["list_libraries"]
    with db.transaction(database_url) as s:
        assert can_receive(s, KEY, ids["both"], towns, "meras@kaunas.example")
        assert can_receive(s, KEY, ids["both"], towns, "MERAS@Kaunas.example")
        assert not can_receive(s, KEY, ids["both"], towns, "kitas@kaunas.example")
        assert not can_receive(s, KEY, ids["left_list"], towns, "vedeja@alytus.example")
        assert can_receive(s, KEY, ids["left_list"], libraries, "vedeja@alytus.example")
        assert not can_receive(s, KEY, ids["left_all"], towns, "buves@utena.example")
        assert not can_receive(s, KEY, ids["bounced"], towns, "nera@siauliai.example")
        assert not can_receive(s, KEY, ids["libraries"], towns, "biblioteka@vilnius.example")
        assert not can_receive(s, KEY, None, towns, "meras@kaunas.example")
        assert not can_receive(s, KEY, ids["both"], None, "meras@kaunas.example")
        assert not can_receive(s, KEY, 10**6, towns, "meras@kaunas.example")
        assert not can_receive(s, KEY, ids["both"], towns, "not an address")
        # An outbox row of an erased person: suppressed, as a test copy to them checks.
        assert is_suppressed(s, KEY, "erased:" + email_hmac(KEY, "meras@kaunas.example"))
        s.add(Suppression(email_hmac=email_hmac(KEY, "meras@kaunas.example"), reason="complaint"))
        s.flush()
        assert not can_receive(s, KEY, ids["both"], towns, "meras@kaunas.example")
        assert s.get(Subscriber, ids["both"]).status == "active"
