"""Dispatch throughput: a whole campaign through the database and the sender (a Celery
worker, or the embedded in-process sender), against the raw limit of the same SMTP sink.

Run: ``.venv/bin/python benchmarks/dispatch.py [--recipients 10000] [--runs 3]
[--senders embedded,celery-1,celery-2]`` (``--postgres`` to use a throwaway database on the
local PostgreSQL instead of a SQLite file; ``embedded`` is ``embedded.run_campaign``, what
``newsletter send`` does without Redis, in this process, and ``celery-N`` a real ``celery
worker -c N``, started for its measurement and stopped after it; ``--sink smtp-sink`` for
Postfix's sink instead of aiosmtpd; ``--no-raw`` to leave the raw measurement out, which
holds every prebuilt message in memory, for a peak-memory run at a large count).

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

Each run measures raw, then every sender in turn (interleaved, so a busy moment of the
machine falls on all of them alike). Prints each run and, per sender, the medians: the
rate, its ratio to raw (the median of the runs' ratios), its ratio to ``celery-1`` (×N,
the scaling of worker processes), the sender's CPU time per recipient (the worker's
processes, or this process for the embedded sender; the database server's own CPU is not
in it) beside raw smtplib's own (the CPU of the sending loop alone, prebuilt messages),
and the peak memory (the high-water RSS, ``VmHWM``, of the worker's processes, what
``ru_maxrss`` reports once they exit; for the embedded sender this process's
``ru_maxrss``, which includes the raw path's prebuilt messages unless ``--no-raw``).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
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
) -> tuple[float, float, float]:
    """Pre-build every message, push them over one smtplib connection; (rate, build ms, CPU s)."""
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
    cpu_before = time.process_time()
    for address, data in built:
        connection.sendmail(settings.from_address, [address], data)
    cpu = time.process_time() - cpu_before
    finished = sink.wait_for(len(built), 60)
    connection.quit()
    return len(built) / (finished - started), build_ms, cpu


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


def start_worker(settings: Settings, folder: Path, concurrency: int) -> Worker:
    """A fresh ``celery worker -c N`` (with beat, for the reconciler), ready to consume."""
    worker = Worker(
        settings,
        folder,
        f"worker-c{concurrency}",
        concurrency=concurrency,
        queues="newsletter.send,newsletter.tick",
        beat=True,
    )
    worker.wait_ready()
    return worker


def measure(
    name: str, settings: Settings, compiled: object, sink: AnySink, count: int, folder: Path
) -> tuple[float, float, float, float, tuple[int, int | None, int]]:
    """One sender's run: (rate, materialise s, CPU s, peak MB, sink counts)."""
    if name == "embedded":
        rate, materialised, cpu, counts = system_run(settings, compiled, sink, count, None)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return rate, materialised, cpu, peak, counts
    worker = start_worker(settings, folder, int(name.removeprefix("celery-")))
    try:
        rate, materialised, cpu, counts = system_run(settings, compiled, sink, count, worker)
        peak = sum(worker.peaks_mb().values())
    finally:
        worker.stop()
    return rate, materialised, cpu, peak, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--senders", default="embedded,celery-1,celery-2")
    parser.add_argument("--postgres", action="store_true", help="use the local PostgreSQL")
    parser.add_argument("--sink", choices=("aiosmtpd", "smtp-sink"), default="aiosmtpd")
    parser.add_argument("--no-raw", action="store_true", help="measure the senders only")
    parser.add_argument("--issue", type=Path, default=ISSUE, help="the issue file to send")
    args = parser.parse_args()
    senders = args.senders.split(",")
    if any(n != "embedded" and not re.fullmatch(r"celery-\d+", n) for n in senders):
        raise SystemExit("--senders: embedded or celery-N, comma-separated")

    folder = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    sink: AnySink = PostfixSink() if args.sink == "smtp-sink" else Sink()
    postgres = PostgresDatabase() if args.postgres else None
    celery = any(name.startswith("celery") for name in senders)
    redis_server = RedisServer().start() if celery else None
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
    print(
        f"{args.recipients} recipients, message {size / 1024:.0f} KB, "
        f"database {settings.database.split(':')[0]}, sink {sink.name}, "
        f"{os.cpu_count()} cores (shared: quote the medians)"
    )
    figures: dict[str, dict[str, list[float]]] = {n: {} for n in ["raw", *senders]}

    def note(name: str, **values: float) -> None:
        for key, value in values.items():
            figures[name].setdefault(key, []).append(value)

    try:
        for run in range(1, args.runs + 1):
            raw = 0.0
            if not args.no_raw:
                raw, build_ms, raw_cpu = raw_run(settings, compiled, sink, recipients)
                note("raw", rate=raw, cpu=raw_cpu / args.recipients * 1000, build=build_ms)
                print(
                    f"run {run}: raw {raw:7.0f} msg/s, smtplib CPU {figures['raw']['cpu'][-1]:.2f} ms/recipient"
                )
            for name in senders:
                rate, materialised, cpu, peak, (messages, distinct, extra) = measure(
                    name, settings, compiled, sink, args.recipients, folder
                )
                cpu_ms = cpu / args.recipients * 1000
                note(name, rate=rate, cpu=cpu_ms, peak=peak, ratio=rate / raw if raw else 0.0)
                shown = "?" if distinct is None else str(distinct)
                print(
                    f"run {run}: {name:9} {rate:7.0f} msg/s  ratio {rate / raw if raw else 0:.2f}  "
                    f"CPU {cpu_ms:.2f} ms/recipient  peak {peak:.0f} MB  "
                    f"materialise {materialised:.2f} s  received {messages} ({shown} distinct, {extra} extra)",
                    flush=True,
                )
    finally:
        if redis_server is not None:
            redis_server.stop()
        if postgres:
            db.engine_for(postgres.url).dispose()
            postgres.drop()
        sink.stop()
    report(figures, senders, args.runs)


def report(figures: dict[str, dict[str, list[float]]], senders: list[str], runs: int) -> None:
    """The medians per sender."""
    median = statistics.median
    print(f"medians of {runs} runs:")
    raw = figures["raw"]
    if raw:
        print(
            f"  raw smtplib  {median(raw['rate']):7.0f} msg/s  smtplib CPU {median(raw['cpu']):.2f} "
            f"ms/recipient  build {median(raw['build']):.3f} ms/recipient"
        )
    base = figures.get("celery-1", {}).get("rate")
    for name in senders:
        got = figures[name]
        scaling = f"  x{median(got['rate']) / median(base):.2f} of celery-1" if base else ""
        above = f" ({median(got['cpu']) - median(raw['cpu']):+.2f} above smtplib)" if raw else ""
        ratio = f"  ratio {median(got['ratio']):.2f}" if raw else ""
        print(
            f"  {name:12} {median(got['rate']):7.0f} msg/s{ratio}{scaling}  CPU {median(got['cpu']):.2f} "
            f"ms/recipient{above}  peak {median(got['peak']):.0f} MB"
        )


if __name__ == "__main__":
    main()
