"""Benchmark: apply an mbox of DSNs (``newsletter bounces read``) on SQLite.

A campaign of N recipients is written straight into a fresh SQLite file (rows ``sent``,
with their Message-IDs), then an mbox of N Postfix-shaped DSNs, each returned to its row's
VERP address with the original's headers (as ``RET=HDRS`` asks). Each run reads the mbox
in a fresh child process on a fresh copy of the database: DSNs per second, the child's peak
RSS (``ru_maxrss``), and, in a second child under ``tracemalloc``, the peak of Python
allocations, which shows whether memory grows with the number of DSNs. Medians over
``--runs``.

    .venv/bin/python benchmarks/bounces.py
    .venv/bin/python benchmarks/bounces.py --dsns 1000 10000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BOUNCE = "bounce@naujienos.example"
KEY = "benchmark-secret-key-0123456789abcdef"
DOMAIN = "bibliotekos-pazangai.example"

DSN = """Return-Path: <>
Delivered-To: {verp}
Date: Tue,  1 Dec 2026 09:10:02 +0200 (EET)
From: MAILER-DAEMON@relay.{domain} (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {verp}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="B{n}.1765005002/relay.{domain}"
Message-Id: <20261201071002.{n:08d}@relay.{domain}>

This is a MIME-encapsulated message.

--B{n}.1765005002/relay.{domain}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host relay.{domain}.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<{email}>: host mx.savivaldybe.example[192.0.2.40] said: 550 5.1.1
    <{email}>: Recipient address rejected: User unknown (in reply to RCPT TO command)

--B{n}.1765005002/relay.{domain}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.{domain}
X-Postfix-Queue-ID: {n:08X}
X-Postfix-Sender: rfc822; {verp}
Arrival-Date: Tue,  1 Dec 2026 09:00:03 +0200 (EET)

Final-Recipient: rfc822; {email}
Original-Recipient: rfc822;{email}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.savivaldybe.example
Diagnostic-Code: smtp; 550 5.1.1 <{email}>: Recipient address rejected: User unknown

--B{n}.1765005002/relay.{domain}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <{verp}>
From: =?utf-8?q?Bibliotekos_pa=C5=BEangai?= <naujienos@{domain}>
To: {email}
Subject: =?utf-8?q?D=C4=97kojame_r=C4=97m=C4=97jams_ir_partneriams?=
Message-ID: {message_id}
MIME-Version: 1.0

--B{n}.1765005002/relay.{domain}--
"""


def settings_for(url: str):  # type: ignore[no-untyped-def]
    from newsletter.settings import Secret, Settings

    return Settings(database_url=url, bounce_address=BOUNCE, secret_key=Secret(KEY))


def prepare(folder: Path, count: int) -> tuple[Path, Path]:
    """A database with one sent campaign of ``count`` rows, and the mbox of their DSNs."""
    from sqlalchemy import insert

    from newsletter import db
    from newsletter.delivery.message import message_id
    from newsletter.delivery.verp import return_path
    from newsletter.models import Campaign, MailingList, Membership, OutboxRow, Subscriber

    database = folder / "template.db"
    url = f"sqlite:///{database}"
    db.migrate(url)
    key = KEY.encode()
    emails = [f"asmuo{n:06d}@savivaldybe{n % 60}.example" for n in range(count)]
    with db.transaction(url) as session:
        session.add(MailingList(id=1, slug="savivaldybes", name="Savivaldybės"))
        session.add(Campaign(id=1, issue_slug="x", subject="x", status="done"))
        session.flush()
        people = [{"id": n + 1, "email": e, "status": "active"} for n, e in enumerate(emails)]
        session.execute(insert(Subscriber), people)
        session.execute(
            insert(Membership),
            [{"subscriber_id": n + 1, "list_id": 1, "status": "active"} for n in range(count)],
        )
        rows = [
            {
                "id": n + 1, "campaign_id": 1, "subscriber_id": n + 1, "list_id": 1, "email": e,
                "state": "sent", "attempts": 1, "message_id": message_id(key, 1, e, DOMAIN),
            }
            for n, e in enumerate(emails)
        ]  # fmt: skip
        session.execute(insert(OutboxRow), rows)
    db.dispose(url)
    mbox = folder / "dsns.mbox"
    with open(mbox, "w", encoding="ascii") as out:
        for n, email in enumerate(emails):
            verp = return_path(BOUNCE, key, n + 1)
            ident = message_id(key, 1, email, DOMAIN)
            out.write("From MAILER-DAEMON Tue Dec  1 09:10:02 2026\n")
            out.write(DSN.format(verp=verp, email=email, n=n, domain=DOMAIN, message_id=ident))
            out.write("\n")
    return database, mbox


def child(database: str, mbox: str, trace: bool) -> None:
    """Read the mbox into the database once; print the timing and memory as JSON."""
    import resource
    import tracemalloc

    from newsletter.dispatch import bounces

    settings = settings_for(f"sqlite:///{database}")
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    tally = bounces.read_file(settings, mbox)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "hard": tally.hard, "read": tally.read,
                      "rss_kb": rss, "traced_peak": peak}))  # fmt: skip


def run_child(template: Path, mbox: Path, folder: Path, trace: bool) -> dict[str, float]:
    copy = folder / "run.db"
    shutil.copyfile(template, copy)
    argv = [sys.executable, __file__, "--child", str(copy), str(mbox)] + (
        ["--trace"] if trace else []
    )
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
    copy.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsns", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--traced-up-to", type=int, default=1000,
        help="also run sizes up to this under tracemalloc (it doubles the time)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.trace)
        return
    for count in args.dsns:
        with tempfile.TemporaryDirectory(prefix="newsletter-bounces-") as tmp:
            folder = Path(tmp)
            template, mbox = prepare(folder, count)
            runs = [run_child(template, mbox, folder, trace=False) for _ in range(args.runs)]
            traced = (
                run_child(template, mbox, folder, trace=True)
                if count <= args.traced_up_to
                else None
            )
            assert all(r["hard"] == count and r["read"] == count for r in runs), runs
            rate = statistics.median(count / r["seconds"] for r in runs)
            rss = statistics.median(r["rss_kb"] for r in runs) / 1024
            each = ", ".join(f"{count / r['seconds']:,.0f}" for r in runs)
            cpu_ms = statistics.median(r["cpu"] for r in runs) / count * 1000
            peak = f"; traced Python peak {traced['traced_peak'] / 1e6:.1f} MB" if traced else ""
            print(
                f"{count:>6} DSNs ({mbox.stat().st_size / 1e6:.1f} MB mbox): "
                f"median {rate:,.0f} DSNs/s over {args.runs} runs "
                f"({each}); CPU {cpu_ms:.1f} ms per DSN; peak RSS {rss:.0f} MB{peak}"
            )


if __name__ == "__main__":
    main()
