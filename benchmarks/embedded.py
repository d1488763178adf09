"""The in-process send on SQLite: its rate, and how large the write-ahead log grows.

Run: ``.venv/bin/python benchmarks/embedded.py [--recipients 400] [--runs 3]``

Each run creates a campaign on a fresh SQLite file and sends it with
``embedded.run_campaign`` (what ``newsletter send`` does without Redis) to the counting
sink of ``benchmarks/processes.py``, in its own process. A thread samples the size of
the ``-wal`` file every millisecond; the file only grows until SQLite truncates it, so
the largest sample is its peak. Prints, per run and as medians: messages per second
(from the campaign's start to its end), the peak of the log, and the database's size.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import Sink  # noqa: E402
from newsletter import db  # noqa: E402
from newsletter.compose.issue import compile_file  # noqa: E402
from newsletter.dispatch import campaign, embedded  # noqa: E402
from newsletter.settings import Secret, Settings  # noqa: E402
from tests.dispatch.support import add_people  # noqa: E402

ISSUE = ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md"


class PeakSize:
    """Samples a file's size in a thread; ``peak`` is the largest seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                self.peak = max(self.peak, self.path.stat().st_size)
            time.sleep(0.001)

    def __enter__(self) -> PeakSize:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_run(folder: Path, sink: Sink, recipients: int) -> tuple[float, int, int]:
    """Send one campaign on a fresh database; (messages/s, WAL peak bytes, database bytes)."""
    folder.mkdir()
    settings = Settings(
        data_dir=folder,
        smtp_url=sink.url,
        base_url="https://naujienos.bibliotekos-pazangai.example",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        issues_dir=ROOT / "issues",
        secret_key=Secret("benchmark-secret-key-0123456789abcdef"),
    )
    db.migrate(settings.database)
    add_people(settings.database, recipients)
    compiled = compile_file(ISSUE, settings)
    database = folder / "newsletter.db"
    sink.reset()
    with PeakSize(database.with_name(database.name + "-wal")) as wal:
        created = campaign.create(settings, compiled, ["savivaldybes"], {})
        started = time.monotonic()
        done = embedded.run_campaign(settings, created.campaign_id)
        elapsed = time.monotonic() - started
    if done.status != "done" or sink.count().messages != recipients:
        raise SystemExit(f"campaign ended {done.status} with {sink.count()}")
    size = database.stat().st_size
    db.dispose(settings.database)
    return recipients / elapsed, wal.peak, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="newsletter-embedded-"))
    sink = Sink()
    rates, peaks = [], []
    try:
        for run in range(1, args.runs + 1):
            rate, peak, size = one_run(folder / f"run{run}", sink, args.recipients)
            rates.append(rate)
            peaks.append(peak)
            print(
                f"run {run}: {rate:6.0f} msg/s   WAL peak {peak / 1024:7.0f} KB   "
                f"database {size / 1024:5.0f} KB"
            )
    finally:
        sink.stop()
    print(
        f"median of {args.runs}, {args.recipients} recipients: {statistics.median(rates):.0f} msg/s, "
        f"WAL peak {statistics.median(peaks) / 1024:.0f} KB"
    )


if __name__ == "__main__":
    main()
