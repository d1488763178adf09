"""Benchmark: the counted-link redirect against the unsubscribe page, under wrk, same run.

    .venv/bin/python benchmarks/clicks.py [--rounds 3] [--seconds 10] [--connections 20] [--postgres]

Sets up the demo data (``newsletter demo``: the sample lists and the December issue,
sent to var/outbox/) in a temporary folder on SQLite (``--postgres``: a throwaway
database on the local PostgreSQL) with
``NEWSLETTER_CLICK_COUNTING=aggregate``, serves it with ``newsletter web`` (one uvicorn
process), and runs Debian's ``wrk`` (20 connections, 10 s) against a counted link
(``/c/…``: one indexed read, one insert, a 302) and a recipient's unsubscribe page
(``/u/<token>`` GET: one token check, two reads, a rendered page), alternating, for
``--rounds`` rounds. Prints requests per second and p50/p99 latency per round and their
medians, the web process's CPU time per request (steadier than the rates on a busy
machine), and checks that every redirect wrk completed was counted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sqlalchemy import func, select

from newsletter import db
from newsletter.audience import tokens
from newsletter.dispatch import clicks
from newsletter.models import CampaignLink, ClickEvent, Membership
from newsletter.settings import Secret, Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.services import PostgresDatabase  # noqa: E402

NEWSLETTER = Path(sys.executable).with_name("newsletter")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_settings(folder: Path, port: int, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=folder / "var",
        issues_dir=ROOT / "issues",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        base_url=f"http://127.0.0.1:{port}",
        secret_key=Secret("benchmark-secret-key-0123456789abcdef"),
        click_counting="aggregate",
    )


def environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "NEWSLETTER_DATA_DIR": str(settings.data_dir),
        "NEWSLETTER_DATABASE_URL": settings.database_url,
        "NEWSLETTER_ISSUES_DIR": str(settings.issues_dir),
        "NEWSLETTER_TEMPLATES_DIR": str(settings.templates_dir),
        "NEWSLETTER_SPONSORS_FILE": str(settings.sponsors_file),
        "NEWSLETTER_BASE_URL": settings.base_url,
        "NEWSLETTER_SECRET_KEY": settings.secret_key.reveal(),
        "NEWSLETTER_CLICK_COUNTING": "aggregate",
    }


def set_up_demo(settings: Settings, folder: Path) -> None:
    """``newsletter demo`` with the repository's lists and issue, its output in ``folder``."""
    subprocess.run(
        [
            str(NEWSLETTER),
            "demo",
            "--issue",
            str(ROOT / "issues" / "2026-12-remejai-ir-partneriai.md"),
            "--lists-dir",
            str(ROOT / "subscribers"),
        ],
        cwd=folder,
        env=environment(settings),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def targets(settings: Settings) -> tuple[str, str]:
    """The paths of the campaign's first counted link and of one recipient's unsubscribe page."""
    with db.transaction(settings.database) as session:
        link = session.execute(
            select(CampaignLink).order_by(CampaignLink.number).limit(1)
        ).scalar_one()
        member = session.execute(select(Membership).limit(1)).scalar_one()
        path = clicks.click_path(clicks.link_key(settings.key()), link.campaign_id, link.number)
        token = tokens.make_token(settings.key(), member.subscriber_id, member.list_id)
    return path, f"/u/{token}"


def clicks_recorded(settings: Settings) -> int:
    with db.transaction(settings.database) as session:
        return int(session.scalar(select(func.count()).select_from(ClickEvent)) or 0)


def serve(settings: Settings, port: int, folder: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [str(NEWSLETTER), "web", "--port", str(port), "--no-reload-watch"],
        cwd=folder,
        env=environment(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/archive", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the web server did not start")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def run_wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 in ms, requests completed, non-2xx/3xx answers."""
    output = subprocess.run(
        [WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rate": rate,
        "p50": p50,
        "p99": p99,
        "requests": done,
        "errors": int(bad.group(1)) if bad else 0,
    }


def measure(pid: int, url: str, args: argparse.Namespace) -> dict[str, float]:
    """``run_wrk`` with the web process's CPU milliseconds per request added (``cpu``)."""
    before = cpu_seconds(pid)
    result = run_wrk(url, args.seconds, args.connections)
    result["cpu"] = (cpu_seconds(pid) - before) / max(result["requests"], 1) * 1e3
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="use the local PostgreSQL")
    args = parser.parse_args()
    postgres = PostgresDatabase() if args.postgres else None
    try:
        run(args, postgres.url if postgres else "")
    finally:
        if postgres:
            db.engine_for(postgres.url).dispose()
            postgres.drop()


def run(args: argparse.Namespace, database_url: str) -> None:
    """Set up the demo, serve it, and run wrk in turns against the two pages."""
    with tempfile.TemporaryDirectory(prefix="clicks-bench-") as name:
        folder = Path(name)
        port = free_port()
        settings = demo_settings(folder, port, database_url)
        set_up_demo(settings, folder)
        redirect, unsubscribe = targets(settings)
        server = serve(settings, port, folder)
        results: dict[str, list[dict[str, float]]] = {"redirect": [], "unsubscribe": []}
        try:
            for round_number in range(1, args.rounds + 1):
                for what, path in (("redirect", redirect), ("unsubscribe", unsubscribe)):
                    result = measure(server.pid, f"http://127.0.0.1:{port}{path}", args)
                    results[what].append(result)
                    print(
                        f"round {round_number} {what:<11} {result['rate']:8.0f} req/s  "
                        f"p50 {result['p50']:6.2f} ms  p99 {result['p99']:6.2f} ms  "
                        f"server CPU {result['cpu']:.2f} ms/request  "
                        f"({result['requests']:.0f} requests, {result['errors']:.0f} errors)"
                    )
        finally:
            server.terminate()
            server.wait(15)
        print(
            f"\nmedians of {args.rounds} rounds, {args.connections} connections, {args.seconds} s each:"
        )
        for what, runs in results.items():
            print(
                f"  {what:<11} {statistics.median(r['rate'] for r in runs):8.0f} req/s  "
                f"p50 {statistics.median(r['p50'] for r in runs):6.2f} ms  "
                f"p99 {statistics.median(r['p99'] for r in runs):6.2f} ms  "
                f"server CPU {statistics.median(r['cpu'] for r in runs):.2f} ms/request"
            )
        answered = sum(r["requests"] - r["errors"] for r in results["redirect"])
        # wrk does not count the requests still in flight when it stops (at most one per
        # connection per run), which the server may have answered and counted.
        print(f"redirects answered {answered:.0f}, clicks recorded {clicks_recorded(settings)}")


if __name__ == "__main__":
    main()
