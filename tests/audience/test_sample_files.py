"""The list files kept in ``subscribers/`` import cleanly and can be segmented."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import db
from newsletter.audience.lists import import_file
from newsletter.audience.subscribers import eligible_recipients, resolve_lists
from newsletter.models import Subscriber

KEY = b"test-secret-key-0123456789abcdef"
LISTS = Path(__file__).resolve().parents[2] / "subscribers"


@pytest.mark.parametrize(
    ("name", "rows"), [("savivaldybes", 180), ("bibliotekos", 65), ("partneriai", 20)]
)
def test_sample_list_imports_without_rejections(database_url: str, name: str, rows: int) -> None:
    report = import_file(database_url, KEY, LISTS / f"{name}.csv", name)
    assert (report.added, report.rejected_count, report.duplicates) == (rows, 0, 0)
    assert report.ignored_columns == ()
    with db.transaction(database_url) as session:
        addresses = session.scalars(select(Subscriber.email)).all()
    assert all(address.endswith(".example") for address in addresses)


def test_the_sixty_municipalities_and_a_segment(database_url: str) -> None:
    import_file(database_url, KEY, LISTS / "savivaldybes.csv", "savivaldybes")
    with db.transaction(database_url) as session:
        towns = session.scalar(select(func.count(func.distinct(Subscriber.municipality))))
        assert towns == 60
        (savivaldybes,) = resolve_lists(session, ["savivaldybes"])
        kaunas_county = session.execute(eligible_recipients([savivaldybes.id], {"county": "Kauno"}))
        assert len(kaunas_county.all()) == 8 * 3
        mayor = eligible_recipients([savivaldybes.id], {"municipality": "Kauno r."})
        assert len(session.execute(mayor).all()) == 3
