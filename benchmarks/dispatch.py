"""Dispatch throughput: a whole campaign through Redis, a Celery worker and the database,
against the raw limit of the same SMTP sink.

Run: ``.venv/bin/python benchmarks/dispatch.py [--recipients 10000] [--runs 3] [--concurrency N]``
(``--postgres`` to use a throwaway database on the local PostgreSQL instead of a SQLite file).

Both measurements use the same sink (``benchmarks/processes.py``: aiosmtpd on loopback,
in its own process so it does not share the GIL with anything measured here; it counts
messages and keeps no bodies):

- raw: the campaign's messages, built beforehand with the same ``MessageFactory``, pushed
  over one ``smtplib`` connection, one ``sendmail`` each;
- system: ``campaign.create`` (materialising the outbox with ``INSERT … SELECT``), the rows
  handed to Redis, a real ``celery worker`` (prefork) claiming, checking, building,
  sending and recording every row, until the sink holds every message.

Prints each run and the medians: both rates, their ratio (target: at least 0.7), the
time per recipient spent building in the raw path, the worker's CPU time per recipient
(what the system costs beyond the sink, whatever the sink's speed), and the worker's
peak memory (the high-water RSS, ``VmHWM``, of each process in the worker's process
group: what ``ru_maxrss`` reports once it exits).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import Sink, Worker  # noqa: E402
from newsletter import db  # noqa: E402
from newsletter.compose.issue import compile_file  # noqa: E402
from newsletter.delivery.message import MessageFactory, Recipient  # noqa: E402
from newsletter.dispatch import campaign, overlap  # noqa: E402
from newsletter.dispatch.tasks import CeleryBroker, make_app  # noqa: E402
from newsletter.settings import Secret, Settings  # noqa: E402
from tests.dispatch.support import add_people  # noqa: E402
from tests.support.services import PostgresDatabase, RedisServer  # noqa: E402

ISSUE = ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md"


# The two measurements ----------------------------------------------------------------


def raw_run(
    settings: Settings, compiled: object, sink: Sink, recipients: list[str]
) -> tuple[float, float]:
    """Pre-build every message, push them over one smtplib connection; (rate, build ms)."""
    factory = MessageFactory(compiled, settings, campaign_id=999_999, list_id_header="savivaldybes")  # type: ignore[arg-type]
    started = time.perf_counter()
    built = []
    for address in recipients:
        person = Recipient(
            email=address,
            name="Vardenis Pavardenis",
            municipality="Vilniaus m.",
            unsubscribe_url=f"{settings.base_url}/u/AbCdEfGhIjKlMnOpQrStUv",
            preferences_url=f"{settings.base_url}/p/AbCdEfGhIjKlMnOpQrStUv",
            view_url=f"{settings.base_url}/v/1/AbCdEfGhIjKlMnOpQrStUv",
        )
        built.append((address, factory.build(person)[1]))
    build_ms = (time.perf_counter() - started) / len(recipients) * 1000
    sink.reset()
    connection = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
    connection.ehlo()
    started = time.monotonic()
    for address, data in built:
        connection.sendmail(settings.from_address, [address], data)
    finished = sink.wait_for(len(built), 60)
    connection.quit()
    return len(built) / (finished - started), build_ms


def system_run(
    settings: Settings, compiled: object, sink: Sink, expected: int
) -> tuple[float, float, tuple[int, int, int]]:
    """Create the campaign and hand it to the worker; (rate, materialise s, sink counts)."""
    sink.reset()
    app = make_app(settings)
    started = time.monotonic()
    # The same issue to the same people, run after run: on purpose.
    created = campaign.create(settings, compiled, ["savivaldybes"], {}, repeat=overlap.AGAIN)  # type: ignore[arg-type]
    materialised = time.monotonic() - started
    campaign.tick(settings, CeleryBroker(app))
    finished = sink.wait_for(expected, 600)
    app.close()
    deadline = time.monotonic() + 60
    while campaign.progress(settings, created.campaign_id).status != "done":
        if time.monotonic() > deadline:
            raise SystemExit(f"campaign {created.campaign_id} not done")
        time.sleep(0.1)
    return expected / (finished - started), materialised, sink.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--postgres", action="store_true", help="use the local PostgreSQL")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    sink = Sink()
    postgres = PostgresDatabase() if args.postgres else None
    redis_server = RedisServer().start()
    settings = Settings(
        data_dir=folder,
        database_url=postgres.url if postgres else f"sqlite:///{folder / 'bench.db'}",
        redis_url=redis_server.url,
        smtp_url=sink.url,
        base_url="https://naujienos.bibliotekos-pazangai.example",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        issues_dir=ROOT / "issues",
        secret_key=Secret("benchmark-secret-key-0123456789abcdef"),
        tick_seconds=1.0,
    )
    db.migrate(settings.database)
    add_people(settings.database, args.recipients)
    compiled = compile_file(ISSUE, settings)
    recipients = [f"asmuo{n:05d}@savivaldybe.example" for n in range(args.recipients)]
    size = len(
        MessageFactory(compiled, settings, campaign_id=1, list_id_header="x").build(
            Recipient(email=recipients[0])
        )[1]
    )
    print(
        f"{args.recipients} recipients, message {size / 1024:.0f} KB, worker -c {args.concurrency}, "
        f"database {settings.database.split(':')[0]}"
    )
    worker = Worker(
        settings,
        folder,
        "worker",
        concurrency=args.concurrency,
        queues="newsletter.send,newsletter.tick",
        beat=True,
    )
    try:
        worker.wait_ready()
        raws, systems, builds, cpus = [], [], [], []
        for run in range(1, args.runs + 1):
            raw, build_ms = raw_run(settings, compiled, sink, recipients)
            cpu_before = worker.cpu_seconds()
            rate, materialised, (messages, distinct, extra) = system_run(
                settings, compiled, sink, args.recipients
            )
            cpu_ms = (worker.cpu_seconds() - cpu_before) / args.recipients * 1000
            cpus.append(cpu_ms)
            raws.append(raw)
            systems.append(rate)
            builds.append(build_ms)
            print(
                f"run {run}: raw {raw:7.0f} msg/s   system {rate:7.0f} msg/s   ratio {rate / raw:.2f}   "
                f"worker CPU {cpu_ms:.2f} ms/recipient   "
                f"materialise {materialised:.2f} s   received {messages} ({distinct} distinct, {extra} extra)"
            )
        peak = worker.peaks_mb()
    finally:
        worker.stop()
        redis_server.stop()
        if postgres:
            db.engine_for(postgres.url).dispose()
            postgres.drop()
        sink.stop()
    print(
        f"median: raw {statistics.median(raws):.0f} msg/s, system {statistics.median(systems):.0f} msg/s, "
        f"ratio {statistics.median(systems) / statistics.median(raws):.2f} (target >= 0.70)"
    )
    print(f"raw path build time: {statistics.median(builds):.3f} ms per recipient (median of runs)")
    print(
        f"worker CPU (all processes, user + system): {statistics.median(cpus):.2f} ms per recipient"
    )
    processes = ", ".join(f"{mb:.0f}" for mb in sorted(peak.values(), reverse=True))
    print(
        f"worker peak memory (VmHWM per process, MB): {processes}; tree total {sum(peak.values()):.0f} MB"
    )


if __name__ == "__main__":
    main()
