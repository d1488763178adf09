"""Benchmark: import a generated list file into SQLite and PostgreSQL.

Each import runs in a fresh child process on a fresh database, so that its peak
memory (``ru_maxrss``) is its own; the same child then imports the file a second
time (every row unchanged). A separate child run under ``tracemalloc`` gives the
peak of Python allocations, which shows whether memory grows with the file.
Prints medians over ``--runs`` runs.

Run from the repository root::

    .venv/bin/python benchmarks/import_subscribers.py
    .venv/bin/python benchmarks/import_subscribers.py --rows 10000 100000 --runs 3

PostgreSQL: a throwaway database is created on the server named by
``NEWSLETTER_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FIRST = ["Jonas", "Ona", "Petras", "Rūta", "Tomas", "Giedrė", "Darius", "Aušra", "Linas", "Eglė"]
LAST = ["Kazlauskas", "Jankauskienė", "Petrauskas", "Žukauskienė", "Šimkus", "Vaitkienė"]
ROLES = ["meras", "administracijos direktorė", "kultūros skyriaus vedėjas", "specialistė"]


def write_list(path: Path, rows: int) -> None:
    """A list file shaped like the real ones: 60 domains, Lithuanian names, attributes."""
    rng = random.Random(rows)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,name,municipality,role,institution,county\n")
        for n in range(rows):
            town = n % 60
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            handle.write(
                f"asmuo{n}@savivaldybe{town}.example,{name},Savivaldybė {town},"
                f"{rng.choice(ROLES)},Savivaldybės {town} administracija,Apskritis {town % 10}\n"
            )


def child(url: str, path: Path, trace: bool) -> None:
    """Import ``path`` twice into ``url``; print timings and peak memory as JSON."""
    import resource
    import tracemalloc

    from newsletter import db
    from newsletter.audience.lists import import_file

    db.migrate(url)
    key = b"benchmark-secret-key-0123456789"
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    first = import_file(url, key, path, "benchmark")
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = import_file(url, key, path, "benchmark")
    again_seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1] if trace else 0
    assert first.added == again.unchanged == first.rows, (first, again)
    result = {
        "first": first_seconds,
        "again": again_seconds,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "traced_peak": traced,
    }
    print(json.dumps(result))


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    """A fresh, empty database of ``backend``; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        path = folder / f"{uuid.uuid4().hex}.db"
        yield f"sqlite:///{path}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(POSTGRES_ADMIN_URL)
    name = f"newsletter_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_child(url: str, path: Path, trace: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", url, str(path)] + (["--trace"] if trace else [])
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure(backend: str, rows: int, runs: int, folder: Path) -> dict[str, float]:
    path = folder / f"list-{rows}.csv"
    if not path.exists():
        write_list(path, rows)
    timed = []
    for _ in range(runs):
        with database(backend, folder) as url:
            timed.append(run_child(url, path, trace=False))
    with database(backend, folder) as url:
        traced = run_child(url, path, trace=True)
    first = statistics.median(r["first"] for r in timed)
    return {
        "first": first,
        "rows_per_second": rows / first,
        "again": statistics.median(r["again"] for r in timed),
        "maxrss_mb": statistics.median(r["maxrss_kb"] for r in timed) / 1024,
        "traced_mb": traced["traced_peak"] / 2**20,
        "file_mb": path.stat().st_size / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.trace)
        return
    print(f"median of {args.runs} runs, each in a fresh process on a fresh database")
    header = f"{'backend':<11}{'rows':>8}{'file MB':>9}{'import s':>10}{'rows/s':>9}"
    print(header + f"{'re-import s':>13}{'peak RSS MB':>13}{'traced peak MB':>16}")
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as tmp:
        for backend in args.backends:
            for rows in args.rows:
                m = measure(backend, rows, args.runs, Path(tmp))
                print(
                    f"{backend:<11}{rows:>8}{m['file_mb']:>9.1f}{m['first']:>10.2f}"
                    f"{m['rows_per_second']:>9.0f}{m['again']:>13.2f}{m['maxrss_mb']:>13.1f}"
                    f"{m['traced_mb']:>16.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
