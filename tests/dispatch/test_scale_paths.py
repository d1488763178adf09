"""The shapes that make a 1,000,000-subscriber list work, on real SQLite and PostgreSQL.

Materialising a campaign is a fixed number of set-based statements per id range, never
one per recipient; on PostgreSQL the claim skips a row another transaction holds instead
of waiting for it, and the planner's statistics are fresh once a large campaign is in.
The speed itself is measured by ``benchmarks/scale.py``, not asserted here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select, text

from newsletter import db
from newsletter.audience.subscribers import resolve_lists
from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.dispatch import campaign, outbox
from newsletter.models import Subscriber
from newsletter.settings import Settings
from tests.dispatch.support import add_people, rows

BATCH = 40


@pytest.fixture
def statements(db_settings: Settings) -> Iterator[list[str]]:
    """Every SQL statement sent to the test database while the test runs."""
    seen: list[str] = []
    engine = db.engine_for(db_settings.database)

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_materialising_is_one_insert_select_per_id_range_not_per_recipient(
    db_settings: Settings,
    issue: CompiledIssue,
    statements: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(campaign, "MATERIALISE_BATCH", BATCH)
    add_people(db_settings.database, 150)
    with transaction(db_settings.database) as session:
        highest = session.execute(select(func.max(Subscriber.id))).scalar_one()
    statements.clear()
    created = campaign.create(db_settings, issue, ["savivaldybes"], {})
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO OUTBOX")]
    assert created.recipients == 150
    assert len(inserts) == math.ceil(highest / BATCH)
    assert all("SELECT" in s and "ON CONFLICT" in s for s in inserts)

    add_people(db_settings.database, 3, prefix="naujas")
    with transaction(db_settings.database) as session:
        list_ids = [row.id for row in resolve_lists(session, ["savivaldybes"])]
    added = campaign.materialise(db_settings.database, created.campaign_id, list_ids, {})
    assert added == 3, "a second pass adds only the newcomers"
    assert len(rows(db_settings.database, created.campaign_id)) == 153


def _counted(url: str, table: str, rows: int) -> bool:
    """The server's counters show ``rows`` changed since the last ANALYZE, or it ran since."""
    with db.engine_for(url).connect() as connection:
        modified, analysed = connection.execute(
            text(
                "SELECT n_mod_since_analyze, coalesce(last_analyze, last_autoanalyze)"
                " FROM pg_stat_user_tables WHERE relid = CAST(:t AS regclass)"
            ),
            {"t": table},
        ).one()
    return modified >= rows or analysed is not None


@pytest.mark.postgres
def test_a_large_materialisation_refreshes_the_planner_statistics(
    postgres_url: str, settings: Settings, issue: CompiledIssue, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import _empty_tables

    _empty_tables(postgres_url)
    monkeypatch.setattr(db, "STALE_MINIMUM", 50)
    add_people(postgres_url, 60)
    # As after an import by another process: the server has counted the new rows (a
    # backend reports its counts at most once a second; imports also pass them on).
    deadline = time.monotonic() + 15
    while not all(_counted(postgres_url, table, 60) for table in ("subscribers", "memberships")):
        assert time.monotonic() < deadline, "the server never counted the new rows"
        time.sleep(0.2)
    campaign.create(settings.replace(database_url=postgres_url), issue, ["savivaldybes"], {})
    with transaction(postgres_url) as session:
        # By regclass: the name as this connection's search path finds it, in its schema.
        estimates = {
            name: session.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = CAST(:name AS regclass)"),
                {"name": name},
            ).scalar_one()
            for name in ("outbox", "subscribers", "memberships")
        }
    assert estimates["outbox"] == 60, "ANALYZE ran after: the planner knows the campaign's rows"
    # The people were loaded a moment before: analysed before their materialising
    # INSERT … SELECT was planned, not left to autovacuum.
    assert estimates["subscribers"] == 60
    assert estimates["memberships"] == 60


@pytest.mark.postgres
def test_on_postgresql_a_claim_skips_a_locked_row_instead_of_waiting(
    postgres_fast: Settings, issue: CompiledIssue
) -> None:
    url = postgres_fast.database
    add_people(url, 2)
    campaign_id = campaign.create(postgres_fast, issue, ["savivaldybes"], {}).campaign_id
    held, free = (row.id for row in rows(url, campaign_id))
    engine = db.engine_for(url)
    with engine.connect() as other:
        other.execute(text("SELECT id FROM outbox WHERE id = :id FOR UPDATE"), {"id": held})
        with transaction(url) as session:
            # Were SKIP LOCKED missing, this claim would wait for the lock: fail fast instead.
            session.execute(text("SET LOCAL lock_timeout = '2s'"))
            assert outbox.claim(session, held, 30) is None
            claimed = outbox.claim(session, free, 30)
            assert claimed is not None and claimed.row_id == free
        other.rollback()
    with transaction(url) as session:
        assert outbox.claim(session, held, 30) is not None, "claimable once the lock is gone"


def test_skip_locked_is_in_the_postgresql_claim_and_dropped_on_sqlite() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    claim = outbox._claim_statement()
    assert "FOR UPDATE SKIP LOCKED" in str(claim.compile(dialect=postgresql.dialect()))
    assert "FOR UPDATE" not in str(claim.compile(dialect=sqlite.dialect()))
