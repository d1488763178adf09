"""What the audit log costs: one append (its own serialised transaction), and verifying.

Run: ``.venv/bin/python benchmarks/audit.py [--entries 10000] [--runs 5] [--postgres URL]``

Prints medians over ``--runs``, on a temporary SQLite file (and on PostgreSQL when a URL
of an empty, migrated database is given):

- milliseconds per ``audit.record`` (lock, read the newest hash, insert, commit), one
  writer;
- seconds for ``audit.verify`` over ``--entries`` entries (read in pages, every hash
  recomputed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter import audit, db

APPENDS_TIMED = 200


def append_ms(url: str) -> float:
    """Milliseconds per append, over ``APPENDS_TIMED`` appends."""
    start = time.perf_counter()
    for number in range(APPENDS_TIMED):
        audit.record(
            url, "redaktore@example.lt", "issue.save", f"issue:{number}", client="127.0.0.1"
        )
    return (time.perf_counter() - start) * 1000 / APPENDS_TIMED


def fill(url: str, entries: int) -> None:
    """Append until the log holds ``entries``."""
    held = audit.verify(url).entries
    for number in range(held, entries):
        audit.record(url, "redaktore@example.lt", "campaign.start", f"campaign:{number}")


def verify_s(url: str) -> float:
    start = time.perf_counter()
    verdict = audit.verify(url)
    assert verdict.problem is None, verdict.problem
    return time.perf_counter() - start


def measure(name: str, url: str, entries: int, runs: int) -> None:
    appends = [append_ms(url) for _ in range(runs)]
    fill(url, entries)
    checks = [verify_s(url) for _ in range(runs)]
    print(
        f"{name}: append {statistics.median(appends):.2f} ms (median of {runs} x {APPENDS_TIMED})"
    )
    print(f"{name}: verify {entries} entries {statistics.median(checks):.2f} s (median of {runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'audit.db'}"
        db.migrate(url)
        measure("sqlite", url, args.entries, args.runs)
        db.dispose(url)
    if args.postgres:
        db.migrate(args.postgres)
        measure("postgresql", args.postgres, args.entries, args.runs)


if __name__ == "__main__":
    main()
