"""What refusing a second copy costs at scale: the overlap count and ``--only-new``, on PostgreSQL.

Run: ``.venv/bin/python benchmarks/overlap.py [--people 1000000] [--runs 3]``. Needs
PostgreSQL (``NEWSLETTER_TEST_POSTGRES_URL`` or ``postgres@127.0.0.1:5432/test``).

In a throwaway database, ``--people`` subscribers on list ``visi`` are generated in the
database (as ``benchmarks/scale.py`` does). Then, through the real ``campaign.create``:

1. the first campaign of the issue, with no other to compare against (the baseline);
2. per run, the same issue again: the refused attempt (count and check, nothing made),
   then, after 1% newcomers join, ``--only-new`` (materialise only them, no count) and,
   timed apart, the overlap count alone (``overlap.audience``).

Nothing is sent: the campaigns are paused as soon as they exist.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from newsletter import db  # noqa: E402
from newsletter.compose.issue import compile_file  # noqa: E402
from newsletter.dispatch import campaign, overlap  # noqa: E402
from newsletter.errors import AlreadySentError  # noqa: E402
from newsletter.settings import Secret, Settings  # noqa: E402
from tests.support.services import PostgresDatabase  # noqa: E402

ISSUE = ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md"
LISTS = ["visi"]


def add_people(url: str, first: int, count: int) -> None:
    """Generate subscribers ``first`` … ``first + count - 1`` on ``visi`` in the database."""
    with db.engine_for(url).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO subscribers (email, name, municipality, role, attributes, status,"
                " bounce_count, created_at, updated_at)"
                " SELECT 'asmuo' || n || '@savivaldybe' || (n % 60) || '.example',"
                " 'Vardenis Pavardenis ' || n, 'Vilniaus m.', 'specialistas', '{}'::json,"
                " 'active', 0, now(), now() FROM generate_series(:first, :last) AS n"
            ),
            {"first": first, "last": first + count - 1},
        )
        connection.execute(
            text(
                "INSERT INTO memberships (subscriber_id, list_id, status, created_at, updated_at)"
                " SELECT s.id, l.id, 'active', now(), now() FROM subscribers s, lists l"
                " WHERE l.slug = 'visi' AND NOT EXISTS (SELECT 1 FROM memberships m"
                " WHERE m.subscriber_id = s.id)"
            )
        )
    with db.engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))


def timed(step: object, *args: object, **kwargs: object) -> tuple[float, object]:
    started = time.monotonic()
    result = step(*args, **kwargs)  # type: ignore[operator]
    return time.monotonic() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    database = PostgresDatabase()
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(
                data_dir=Path(folder),
                database_url=database.url,
                base_url="https://naujienos.bibliotekos-pazangai.example",
                templates_dir=ROOT / "templates" / "email",
                sponsors_file=ROOT / "sponsors.yaml",
                issues_dir=ROOT / "issues",
                secret_key=Secret("benchmark-secret-key-0123456789abcdef"),
            )
            db.migrate(settings.database)
            with db.engine_for(database.url).begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO lists (slug, name, description, created_at) VALUES"
                        " ('visi', 'Visi', '', now())"
                    )
                )
            add_people(database.url, 1, options.people)
            compiled = compile_file(ISSUE, settings)
            seconds, first = timed(campaign.create, settings, compiled, LISTS, {})
            campaign.pause(settings, first.campaign_id)
            print(f"first campaign, {first.recipients:,} rows, no other to check: {seconds:.1f} s")
            refused, only_new, counted = [], [], []
            people = options.people
            for run in range(1, options.runs + 1):
                started = time.monotonic()
                try:
                    campaign.create(settings, compiled, LISTS, {})
                    raise SystemExit("the second campaign was not refused")
                except AlreadySentError:
                    refused.append(time.monotonic() - started)
                newcomers = max(1, people // 100)
                add_people(database.url, people + 1, newcomers)
                people += newcomers
                seconds, found = timed(overlap.audience, settings, compiled, LISTS, {})
                counted.append(seconds)
                seconds, created = timed(
                    campaign.create, settings, compiled, LISTS, {}, repeat=overlap.ONLY_NEW
                )
                only_new.append(seconds)
                campaign.pause(settings, created.campaign_id)
                assert created.recipients == newcomers == found.new, (created, found)
                print(
                    f"run {run}: {people:,} recipients, {found.already:,} already have it in "
                    f"{len(found.earlier)} campaign(s); refused in {refused[-1]:.1f} s, "
                    f"count alone {counted[-1]:.1f} s, --only-new to {newcomers:,} in "
                    f"{only_new[-1]:.1f} s"
                )
            print(
                f"medians: refused {statistics.median(refused):.1f} s, count "
                f"{statistics.median(counted):.1f} s, --only-new {statistics.median(only_new):.1f} s"
            )
    finally:
        db.dispose(database.url)
        database.drop()


if __name__ == "__main__":
    main()
