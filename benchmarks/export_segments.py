"""Benchmark: exporting a large list, and the segment builder's queries, on SQLite and PostgreSQL.

A generated list (``import_subscribers.write_list``: 60 municipalities, 10 counties, four
roles) is imported once per database; then, interleaved over ``--runs`` rounds, it times
the CSV export and the XLSX export of every active member (read a page at a time, as
the web page streams them), the live count of a two-field segment, and the values the
builder offers (one DISTINCT per field). Prints medians.

Run from the repository root::

    .venv/bin/python benchmarks/export_segments.py
    .venv/bin/python benchmarks/export_segments.py --rows 100000 --runs 3 --no-postgres
"""

from __future__ import annotations

import argparse
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

from benchmarks.import_subscribers import POSTGRES_ADMIN_URL, write_list  # noqa: E402


@contextmanager
def databases(folder: Path, postgres: bool) -> Iterator[list[tuple[str, str]]]:
    """(name, URL) of a fresh SQLite file and, when asked, a throwaway PostgreSQL database."""
    from sqlalchemy import create_engine, text

    found = [("sqlite", f"sqlite:///{folder / 'bench.db'}")]
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


def measure(url: str) -> dict[str, Callable[[], object]]:
    """The operations timed, each on the imported list."""
    from newsletter import db
    from newsletter.audience import export, segments
    from newsletter.audience.lists import find_list

    with db.transaction(url) as session:
        list_id = find_list(session, "bench").id
    definition = {"county": ["Apskritis 1", "Apskritis 2"], "role": ["meras"]}

    def count() -> int:
        with db.transaction(url) as session:
            return segments.count(session, [list_id], definition)

    def offered() -> object:
        with db.transaction(url) as session:
            return segments.offered_values(session)

    return {
        "export CSV": lambda: drain(export.csv_chunks(export.member_rows(url, list_id))),
        "export XLSX": lambda: drain(export.xlsx_chunks(export.member_rows(url, list_id))),
        "segment count": count,
        "builder values": offered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    from newsletter import db
    from newsletter.audience.lists import import_file

    with (
        tempfile.TemporaryDirectory() as folder,
        databases(Path(folder), not args.no_postgres) as found,
    ):
        path = Path(folder) / "bench.csv"
        write_list(path, args.rows)
        plans = {}
        for label, url in found:
            db.migrate(url)
            import_file(url, b"k" * 32, path, "bench")
            plans[label] = measure(url)
        times: dict[tuple[str, str], list[float]] = {}
        for _run in range(args.runs):
            for label, plan in plans.items():  # interleaved: each round runs every database
                for name, work in plan.items():
                    times.setdefault((label, name), []).append(timed(work))
        print(f"{args.rows:,} members, median of {args.runs} runs")
        for (label, name), values in times.items():
            print(f"  {label:10} {name:15} {statistics.median(values) * 1000:9.0f} ms")


if __name__ == "__main__":
    main()
