"""Dispatch throughput: a whole campaign through the database and the sender (a Celery
worker, or the embedded in-process sender), against the raw limit of the same SMTP sink.

Run: ``.venv/bin/python benchmarks/dispatch.py [--recipients 10000] [--runs 3] [--concurrency N]``
(``--postgres`` to use a throwaway database on the local PostgreSQL instead of a SQLite file;
``--sender embedded`` for ``embedded.run_campaign``, what ``newsletter send`` does without
Redis, in this process; ``--sink smtp-sink`` for Postfix's sink instead of aiosmtpd).

Both measurements of a run use the same sink, in its own process (``benchmarks/processes.py``):

- ``--sink aiosmtpd`` (default): counts messages, distinct recipients and extra copies of
  a Message-ID. It is Python and needs about as much CPU per message as the sender, on
  the same two cores, so it bounds both measurements.
- ``--sink smtp-sink``: Postfix's ``/usr/sbin/smtp-sink`` (``apt-get install postfix``),
  which is not the bottleneck. It counts messages with its ``-c`` counters (one
  ``mesg=N`` record per final dot); duplicates are counted by the database instead:
  ``extra`` is the messages the sink received beyond the campaign's ``sent`` rows.

The two measurements, interleaved run by run:

- raw: the campaign's messages, built beforehand with the same ``MessageFactory``, pushed
  over one ``smtplib`` connection, one ``sendmail`` each;
- system: ``campaign.create`` (materialising the outbox with ``INSERT … SELECT``), then
  either the rows handed to Redis and a real ``celery worker`` (prefork) claiming,
  checking, building, sending and recording every row, or ``embedded.run_campaign``
  doing the same in this process, until the sink holds every message.

Prints each run and the medians: both rates, their ratio (the median of the runs'
ratios), the time per recipient spent building in the raw path, the sender's CPU time
per recipient (the worker's processes, or this process for the embedded sender: what
the system costs beyond the sink, whatever the sink's speed), and for Celery the
worker's peak memory (the high-water RSS, ``VmHWM``, of each process in the worker's
process group: what ``ru_maxrss`` reports once it exits).
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

from benchmarks.processes import PostfixSink, Sink, Worker  # noqa: E402
from newsletter import db  # noqa: E402
from newsletter.compose.issue import compile_file  # noqa: E402
from newsletter.delivery.message import MessageFactory, Recipient  # noqa: E402
from newsletter.dispatch import campaign, embedded, overlap  # noqa: E402
from newsletter.dispatch.tasks import CeleryBroker, make_app  # noqa: E402
from newsletter.settings import Secret, Settings  # noqa: E402
from tests.dispatch.support import add_people  # noqa: E402
from tests.support.services import PostgresDatabase, RedisServer  # noqa: E402

ISSUE = ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md"


# The two measurements ----------------------------------------------------------------


AnySink = Sink | PostfixSink


def raw_run(
    settings: Settings, compiled: object, sink: AnySink, recipients: list[str]
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
    settings: Settings, compiled: object, sink: AnySink, expected: int, worker: Worker | None
) -> tuple[float, float, float, tuple[int, int | None, int]]:
    """Create the campaign and send it; (rate, materialise s, CPU s, sink counts).

    With ``worker`` the campaign goes through Redis to it, else it is sent in this process.
    The counts are messages, distinct recipients (None when the sink cannot tell) and
    extra copies (the sink's, else messages beyond the campaign's ``sent`` rows).
    """
    sink.reset()
    started = time.monotonic()
    # The same issue to the same people, run after run: on purpose.
    created = campaign.create(settings, compiled, ["savivaldybes"], {}, repeat=overlap.AGAIN)  # type: ignore[arg-type]
    materialised = time.monotonic() - started
    if worker is None:
        cpu_before = time.process_time()
        embedded.run_campaign(settings, created.campaign_id)
        cpu = time.process_time() - cpu_before
    else:
        cpu_before = worker.cpu_seconds()
        app = make_app(settings)
        campaign.tick(settings, CeleryBroker(app))
        app.close()
    finished = sink.wait_for(expected, 600)
    if worker is not None:
        cpu = worker.cpu_seconds() - cpu_before
    deadline = time.monotonic() + 60
    while (done := campaign.progress(settings, created.campaign_id)).status != "done":
        if time.monotonic() > deadline:
            raise SystemExit(f"campaign {created.campaign_id} not done")
        time.sleep(0.1)
    messages, distinct, extra = sink.count()
    if extra is None:
        extra = messages - done.counts.get("sent", 0)
    return expected / (finished - started), materialised, cpu, (messages, distinct, extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--postgres", action="store_true", help="use the local PostgreSQL")
    parser.add_argument("--sink", choices=("aiosmtpd", "smtp-sink"), default="aiosmtpd")
    parser.add_argument("--sender", choices=("celery", "embedded"), default="celery")
    parser.add_argument("--issue", type=Path, default=ISSUE, help="the issue file to send")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    sink: AnySink = PostfixSink() if args.sink == "smtp-sink" else Sink()
    postgres = PostgresDatabase() if args.postgres else None
    redis_server = RedisServer().start() if args.sender == "celery" else None
    settings = Settings(
        data_dir=folder,
        database_url=postgres.url if postgres else f"sqlite:///{folder / 'bench.db'}",
        redis_url=redis_server.url if redis_server else "",
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
    compiled = compile_file(args.issue, settings)
    recipients = [f"asmuo{n:05d}@savivaldybe.example" for n in range(args.recipients)]
    size = len(
        MessageFactory(compiled, settings, campaign_id=1, list_id_header="x").build(
            Recipient(email=recipients[0])
        )[1]
    )
    sender = f"worker -c {args.concurrency}" if args.sender == "celery" else "embedded"
    print(
        f"{args.recipients} recipients, message {size / 1024:.0f} KB, {sender}, "
        f"database {settings.database.split(':')[0]}, sink {sink.name}"
    )
    worker = None
    if args.sender == "celery":
        worker = Worker(
            settings,
            folder,
            "worker",
            concurrency=args.concurrency,
            queues="newsletter.send,newsletter.tick",
            beat=True,
        )
    peak: dict[int, float] = {}
    try:
        if worker is not None:
            worker.wait_ready()
        raws, systems, ratios, builds, cpus = [], [], [], [], []
        for run in range(1, args.runs + 1):
            raw, build_ms = raw_run(settings, compiled, sink, recipients)
            rate, materialised, cpu, (messages, distinct, extra) = system_run(
                settings, compiled, sink, args.recipients, worker
            )
            cpu_ms = cpu / args.recipients * 1000
            cpus.append(cpu_ms)
            raws.append(raw)
            systems.append(rate)
            ratios.append(rate / raw)
            builds.append(build_ms)
            shown = "?" if distinct is None else str(distinct)
            print(
                f"run {run}: raw {raw:7.0f} msg/s   system {rate:7.0f} msg/s   ratio {rate / raw:.2f}   "
                f"sender CPU {cpu_ms:.2f} ms/recipient   "
                f"materialise {materialised:.2f} s   received {messages} ({shown} distinct, {extra} extra)"
            )
        if worker is not None:
            peak = worker.peaks_mb()
    finally:
        if worker is not None:
            worker.stop()
        if redis_server is not None:
            redis_server.stop()
        if postgres:
            db.engine_for(postgres.url).dispose()
            postgres.drop()
        sink.stop()
    print(
        f"median of {args.runs}: raw {statistics.median(raws):.0f} msg/s, "
        f"system {statistics.median(systems):.0f} msg/s, ratio {statistics.median(ratios):.2f}"
    )
    print(f"raw path build time: {statistics.median(builds):.3f} ms per recipient (median of runs)")
    print(f"sender CPU (user + system): {statistics.median(cpus):.2f} ms per recipient")
    if peak:
        processes = ", ".join(f"{mb:.0f}" for mb in sorted(peak.values(), reverse=True))
        print(
            f"worker peak memory (VmHWM per process, MB): {processes}; tree total {sum(peak.values()):.0f} MB"
        )


if __name__ == "__main__":
    main()
