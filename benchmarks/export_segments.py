"""Benchmark: exporting a large list, and the segment builder's queries, on SQLite and PostgreSQL.

A generated list (``people``: 60 municipalities, 10 counties, four roles, 1,200
institutions, 12 departments, four languages; 3 % unsubscribed and 2 % bounced) is
loaded once per database, through the import path or (``--copy``, PostgreSQL only) by
``search_people.copy_people``'s COPY; then, interleaved over ``--runs`` rounds, it times
the CSV export and the XLSX export of every active member (read a page at a time, as
the web page streams them; ``--no-export`` leaves them out), the live count of segments
from one municipality's mayors (1 in 240) to the whole list, and the values the builder
offers for every field, beside the same values read by one plain DISTINCT per field (the
query the builder ran before it skipped through each field's index). Prints medians and
the load average.

Run from the repository root::

    .venv/bin/python benchmarks/export_segments.py
    .venv/bin/python benchmarks/export_segments.py --rows 100000 --runs 3 --no-postgres
    .venv/bin/python benchmarks/export_segments.py --rows 1000000 --runs 7 --copy --no-export
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.import_subscribers import FIRST, LAST, POSTGRES_ADMIN_URL, ROLES  # noqa: E402
from benchmarks.search_people import Row, copy_people  # noqa: E402

KINDS = [
    "administracija", "viešoji biblioteka", "kultūros centras", "gimnazija", "muziejus",
    "progimnazija", "lopšelis-darželis", "sporto centras", "meno mokykla", "seniūnija",
    "turizmo centras", "jaunimo centras", "socialinių paslaugų centras", "poliklinika",
    "archyvas", "teatras", "bendruomenės namai", "švietimo centras", "muzikos mokykla",
    "vaikų globos namai",
]  # fmt: skip
DEPARTMENTS = [
    "Kultūros skyrius", "Švietimo skyrius", "Finansų skyrius", "Teisės skyrius",
    "Statybos skyrius", "Sporto skyrius", "Turto skyrius", "Socialinės paramos skyrius",
    "Komunikacijos skyrius", "Vaikų teisių skyrius", "Architektūros skyrius", "Bendrasis skyrius",
]  # fmt: skip
LANGUAGES = ["lt"] * 18 + ["en", "ru"]  # and "pl" for one in 60 (one municipality)


def people(rows: int) -> Iterator[Row]:
    """The generated members: (email, name, municipality, role, attributes, status)."""
    rng = random.Random(rows)
    for n in range(rows):
        town = n % 60
        attributes = {
            "institution": f"Savivaldybės {town} {KINDS[(n // 60) % len(KINDS)]}",
            "county": f"Apskritis {town % 10}",
            "department": DEPARTMENTS[(n // 7) % len(DEPARTMENTS)],
            "language": "pl" if town == 59 else LANGUAGES[n % len(LANGUAGES)],
        }
        status = "unsubscribed" if n % 100 < 3 else "bounced" if n % 100 < 5 else "active"
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        yield (
            f"asmuo{n}@savivaldybe{town}.example",
            name,
            f"Savivaldybė {town}",
            rng.choice(ROLES),
            attributes,
            status,
        )


def write_people(path: Path, rows: int) -> None:
    """The same members as a list file for the import path (everyone in it is active)."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,name,municipality,role,institution,county,department,language\n")
        for email, name, town, role, attributes, _status in people(rows):
            fields = [attributes[key] for key in ("institution", "county", "department")]
            handle.write(f"{email},{name},{town},{role},{','.join(fields)},")
            handle.write(f"{attributes['language']}\n")


def load_by_copy(url: str, rows: int) -> float:
    """COPY the members into PostgreSQL and make them list ``bench``; seconds taken."""
    from sqlalchemy import text

    from newsletter import db

    seconds = copy_people(url, people(rows))
    started = time.perf_counter()
    with db.engine_for(url).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO lists (slug, name, description, created_at, public)"
                " VALUES ('bench', 'Bench', '', now(), false)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO memberships (subscriber_id, list_id, status, created_at, updated_at)"
                " SELECT s.id, l.id, 'active', now(), now() FROM subscribers s"
                " JOIN lists l ON l.slug = 'bench'"
            )
        )
    with db.engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))
    return seconds + time.perf_counter() - started


def load() -> str:
    """The load average over 1, 5 and 15 minutes (others share the machine)."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


@contextmanager
def databases(folder: Path, sqlite: bool, postgres: bool) -> Iterator[list[tuple[str, str]]]:
    """(name, URL) of a fresh SQLite file and a throwaway PostgreSQL database, as asked."""
    from sqlalchemy import create_engine, text

    found = [("sqlite", f"sqlite:///{folder / 'bench.db'}")] if sqlite else []
    name = f"bench_export_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT") if postgres else None
    if admin is not None:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        found.append(("postgresql", POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"))
    try:
        yield found
    finally:
        from newsletter import db

        for _label, url in found:
            db.dispose(url)
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def drain(chunks: Iterator[bytes]) -> int:
    return sum(len(chunk) for chunk in chunks)


SEGMENTS = {
    "count, town and role": {"municipality": ["Savivaldybė 7"], "role": ["meras"]},
    "count, one town": {"municipality": ["Savivaldybė 7"]},
    "count, two fields": {"county": ["Apskritis 1", "Apskritis 2"], "role": ["meras"]},
    "count, language lt": {"language": ["lt"]},
    "count, whole list": {},
}


def measure(url: str, export_too: bool) -> dict[str, Callable[[], object]]:
    """The operations timed, each on the loaded list."""
    from newsletter import db
    from newsletter.audience import export, segments
    from newsletter.audience.lists import find_list

    with db.transaction(url) as session:
        list_id = find_list(session, "bench").id

    def count(definition: dict[str, list[str]]) -> Callable[[], int]:
        def work() -> int:
            with db.transaction(url) as session:
                return segments.count(session, [list_id], definition)

        return work

    def offered() -> object:
        with db.transaction(url) as session:
            return segments.offered_values(session)

    plan: dict[str, Callable[[], object]] = {}
    if export_too:
        plan["export CSV"] = lambda: drain(export.csv_chunks(export.member_rows(url, list_id)))
        plan["export XLSX"] = lambda: drain(export.xlsx_chunks(export.member_rows(url, list_id)))
    plan |= {label: count(definition) for label, definition in SEGMENTS.items()}
    plan["builder values"] = offered
    plan["values by DISTINCT"] = lambda: plain_distinct(url)
    return plan


def plain_distinct(url: str) -> dict[str, list[str]]:
    """The builder's values as they were read before the index skip: one DISTINCT per field."""
    from sqlalchemy import select

    from newsletter import db
    from newsletter.audience import segments
    from newsletter.models import Subscriber

    offered = {}
    with db.transaction(url) as session:
        for field in segments.FIELDS:
            column = segments.field_column(field)
            offered[field] = list(
                session.scalars(
                    select(column)
                    .distinct()
                    .where(Subscriber.status == "active", column.is_not(None), column != "")
                    .order_by(column)
                    .limit(segments.MAX_OFFERED)
                )
            )
    return offered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--copy", action="store_true", help="load PostgreSQL by COPY (no SQLite), not the import"
    )
    parser.add_argument("--no-export", action="store_true", help="time the segment queries only")
    args = parser.parse_args()
    from newsletter import db
    from newsletter.audience import segments
    from newsletter.audience.lists import import_file

    sqlite = not (args.no_sqlite or args.copy)
    with (
        tempfile.TemporaryDirectory() as folder,
        databases(Path(folder), sqlite, not args.no_postgres) as found,
    ):
        path = Path(folder) / "bench.csv"
        if not args.copy:
            write_people(path, args.rows)
        plans = {}
        for label, url in found:
            db.migrate(url)
            started = time.perf_counter()
            if args.copy:
                load_by_copy(url, args.rows)
            else:
                import_file(url, b"k" * 32, path, "bench")
            print(f"{label}: {args.rows:,} loaded in {time.perf_counter() - started:.1f} s")
            plans[label] = measure(url, not args.no_export)
            with db.transaction(url) as session:
                assert segments.offered_values(session) == plain_distinct(url), label
        for plan in plans.values():  # once, unmeasured: the first run reads from disk
            for work in plan.values():
                work()
        times: dict[tuple[str, str], list[float]] = {}
        loads = [load()]
        for _run in range(args.runs):
            for label, plan in plans.items():  # interleaved: each round runs every database
                for name, work in plan.items():
                    times.setdefault((label, name), []).append(timed(work))
            loads.append(load())
        print(f"{args.rows:,} members, median (min-max) of {args.runs} interleaved runs")
        for (label, name), values in times.items():
            print(
                f"  {label:10} {name:20} {statistics.median(values) * 1000:9.1f} ms"
                f"  ({min(values) * 1000:.1f}-{max(values) * 1000:.1f})"
            )
        print(f"load average (1, 5, 15 min) before and after each round: {' | '.join(loads)}")


if __name__ == "__main__":
    main()
