"""Benchmark: "find a person" on PostgreSQL with 1,000,000 subscribers (target: ≤ 100 ms).

Run: ``.venv/bin/python benchmarks/search_people.py [--rows 1000000] [--runs 21]``

Builds a private database (dropped afterwards) on ``NEWSLETTER_TEST_POSTGRES_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), migrated as in
production, and fills ``subscribers`` with generated people by COPY (the trigram index
is dropped for the load and built again after it, as a bulk load would). Then each
typical query runs through ``newsletter.audience.people.search`` (the page's own call,
one page of 25), the queries interleaved, and the median and 95th percentile are
printed with the plan's index use (``EXPLAIN``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from newsletter import db
from newsletter.audience import people
from newsletter.models import search_text

POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TOWNS = [
    "Šiaulių m.", "Šiaulių r.", "Kauno m.", "Kauno r.", "Vilniaus m.", "Vilniaus r.",
    "Klaipėdos m.", "Panevėžio r.", "Alytaus m.", "Marijampolės sav.", "Utenos r.",
    "Tauragės r.", "Telšių r.", "Mažeikių r.", "Jonavos r.", "Kėdainių r.", "Biržų r.",
    "Druskininkų sav.", "Joniškio r.", "Raseinių r.",
]  # fmt: skip
FIRST = ["Ona", "Jonas", "Rūta", "Petras", "Eglė", "Žydrūnas", "Aušra", "Gintaras", "Ieva", "Tomas"]
LAST = [
    "Petraitis", "Žemaitienė", "Kazlauskas", "Jankauskienė", "Stankevičius", "Vasiliauskaitė",
    "Žukauskas", "Butkienė", "Paulauskas", "Urbonaitė", "Kairienė", "Šimkus",
]  # fmt: skip
KINDS = ["savivaldybė", "viešoji biblioteka", "kultūros centras", "gimnazija"]
QUERIES = {
    "one person by address": "",  # set from --rows in main()
    "a surname (1 in 12)": "zemaitiene",
    "name and surname": "ruta kairiene",
    "a municipality without diacritics (1 in 10)": "siauliu",
    "a two-word phrase (1 in 80)": "panevezio kulturos",
    "nobody": "niekas-nerastas",
}


def person(n: int) -> tuple[str, str, str, str]:
    """The generated person ``n``: (email, name, municipality, institution)."""
    town = TOWNS[n % len(TOWNS)]
    name = f"{FIRST[n % len(FIRST)]} {LAST[(n // 7) % len(LAST)]}"
    institution = f"{town.split()[0]} {KINDS[(n // 3) % len(KINDS)]}"
    return f"asmuo{n}@sav{n % 60}.example", name, town, institution


@contextmanager
def private_database() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated; dropped afterwards."""
    admin_url = make_url(POSTGRES_ADMIN_URL)
    name = f"newsletter_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        db.migrate(url)
        yield url
    finally:
        db.dispose(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


#: A generated subscriber as ``copy_people`` loads it: (email, name, municipality, role,
#: attributes, status).
Row = tuple[str, str, str, str, dict[str, str], str]


def copy_people(url: str, people: Iterable[Row]) -> float:
    """COPY ``people`` into ``subscribers`` (``search`` filled as the ORM would); seconds taken.

    The trigram index is dropped for the load and built again after it, as a bulk load
    would, and the table is analysed, so the planner knows its size at once.
    """
    started = time.perf_counter()
    now = datetime.now(UTC).isoformat()
    columns = "email, name, municipality, role, attributes, status, bounce_count, "
    columns += "created_at, updated_at, search"
    with db.engine_for(url).begin() as connection:
        raw = connection.connection.dbapi_connection
        connection.exec_driver_sql("DROP INDEX ix_subscribers_search")
        with (
            raw.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(f"COPY subscribers ({columns}) FROM STDIN") as copy,
        ):
            for email, name, town, role, attributes, status in people:
                search = search_text(email, name, town, attributes.get("institution", ""))
                encoded = json.dumps(attributes, ensure_ascii=False)
                copy.write_row([email, name, town, role, encoded, status, 0, now, now, search])
        connection.exec_driver_sql(
            "CREATE INDEX ix_subscribers_search ON subscribers USING gin (search gin_trgm_ops)"
        )
        connection.exec_driver_sql("ANALYZE subscribers")
    return time.perf_counter() - started


def fill(url: str, rows: int) -> float:
    """COPY ``rows`` people into ``subscribers``; return the seconds it took (with the index)."""

    def people() -> Iterator[Row]:
        for n in range(rows):
            email, name, town, institution = person(n)
            yield email, name, town, "", {"institution": institution}, "active"

    return copy_people(url, people())


def plan(url: str, query: str) -> str:
    """The index the search's plan uses, from EXPLAIN of the very statement it runs."""
    from sqlalchemy import select

    from newsletter.models import Subscriber, fold

    statement = (
        select(Subscriber.id)
        .where(Subscriber.search.contains(fold(query), autoescape=True))
        .order_by(Subscriber.email)
        .limit(people.PAGE_SIZE + 1)
    )
    compiled = statement.compile(db.engine_for(url), compile_kwargs={"literal_binds": True})
    with db.engine_for(url).connect() as connection:
        lines = [r[0] for r in connection.exec_driver_sql(f"EXPLAIN {compiled}")]
    used = [line.strip().removeprefix("->  ") for line in lines[1:] if "Index" in line]
    return "; ".join([lines[0].strip(), *used])


def measure(url: str, runs: int) -> dict[str, list[float]]:
    """Milliseconds of each query, the queries interleaved, ``runs`` rounds."""
    timings: dict[str, list[float]] = {label: [] for label in QUERIES}
    for _ in range(runs):
        for label, query in QUERIES.items():
            with db.transaction(url) as session:
                started = time.perf_counter()
                found = people.search(session, query)
                timings[label].append((time.perf_counter() - started) * 1000)
            assert label == "nobody" or found.people, label
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    QUERIES["one person by address"] = f"asmuo{args.rows * 2 // 3 + 1}@"
    with private_database() as url:
        seconds = fill(url, args.rows)
        print(f"{args.rows:,} subscribers loaded and indexed in {seconds:.1f} s")
        measure(url, 1)  # warm the cache once
        timings = measure(url, args.runs)
        print(f"{'query':<46} {'median ms':>9} {'p95 ms':>7}  plan")
        for label, values in timings.items():
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            print(
                f"{label:<46} {statistics.median(values):>9.1f} {p95:>7.1f}  "
                f"{plan(url, QUERIES[label])}"
            )


if __name__ == "__main__":
    main()
