"""Benchmark: the RFC 8058 one-click POST to /u/<token> and the GET page, under ``wrk``.

    .venv/bin/python benchmarks/unsubscribe.py [--rounds 3] [--seconds 10] [--connections 20]
        [--postgres] [--people 40000]

Serves the app with ``newsletter web`` (a uvicorn process, as in production, access log
on) on a migrated database with ``--people`` subscribers on one list: a SQLite file, or
with ``--postgres`` a throwaway database on the local PostgreSQL. Then, round by round,
``wrk -c N -d S --latency --timeout 2s`` (``/usr/bin/wrk``) runs against the GET page and
against the one-click POST (body ``List-Unsubscribe=One-Click``), interleaved. Every POST
names another subscriber (a Lua script walks a file of tokens), so each is a real
unsubscribe; after the run the recorded unsubscribe events are counted and compared with
the POSTs wrk saw answered 200.

Prints per round and as medians: requests/s, p50, p99, the slowest request, timeouts,
non-2xx answers and the server process's CPU time per request. The machine may be shared: quote the medians.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from newsletter import db  # noqa: E402
from newsletter.audience import tokens  # noqa: E402
from newsletter.models import ConsentEvent, MailingList  # noqa: E402
from newsletter.settings import Settings  # noqa: E402
from tests.dispatch.support import add_people  # noqa: E402
from tests.support.services import PostgresDatabase  # noqa: E402

WRK = "/usr/bin/wrk"
# Each wrk thread walks its own share of the token file from the round's start (the
# script's argument), so no two POSTs of the whole run name one person.
POST_SCRIPT = """
local tokens = {}
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
local counter = 0
local threads = 0
function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end
function init(args)
  step = %(threads)d
  counter = tonumber(args[1]) + offset
end
function request()
  local token = tokens[(counter %% #tokens) + 1]
  counter = counter + step
  return wrk.format("POST", "/u/" .. token,
    {["Content-Type"] = "application/x-www-form-urlencoded"},
    "List-Unsubscribe=One-Click")
end
"""
THREADS = 2
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def milliseconds(text: str) -> float:
    """wrk's '12.34ms' / '1.02s' / '850.00us' as milliseconds."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * UNITS[found.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50, p99, max (ms), timeouts and non-2xx from ``wrk --latency`` output."""
    latency = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", output)
    timeouts = re.search(r"timeout (\d+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "p50": milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1)),  # type: ignore[union-attr]
        "p99": milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)),  # type: ignore[union-attr]
        "max": milliseconds(latency.group(1)) if latency else 0.0,
        "timeouts": float(timeouts.group(1)) if timeouts else 0.0,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, args: argparse.Namespace, script: list[str], server: int) -> dict[str, float]:
    """One wrk run; its parsed figures, with the server's CPU ms per request."""
    before = cpu_seconds(server)
    command = [WRK, f"-t{THREADS}", f"-c{args.connections}", f"-d{args.seconds}s"]
    command += ["--latency", "--timeout", "2s"]
    done = subprocess.run([*command, url, *script], capture_output=True, text=True, check=True)
    figures = parse_wrk(done.stdout)
    figures["cpu"] = (cpu_seconds(server) - before) * 1000 / max(figures["requests"], 1)
    return figures


def prepare(url: str, settings: Settings, people: int, folder: Path) -> tuple[str, Path]:
    """Migrate, add the people; return one GET token and the file of POST tokens."""
    db.migrate(url)
    ids = add_people(url, people, ("savivaldybes",), prefix="skaitytojas")
    with db.transaction(url) as session:
        list_id = session.scalar(select(MailingList.id).where(MailingList.slug == "savivaldybes"))
    key = settings.key()
    token_file = folder / "tokens.txt"
    token_file.write_text("\n".join(tokens.make_token(key, i, list_id) for i in ids[1:]) + "\n")
    return tokens.make_token(key, ids[0], list_id), token_file


def unsubscribes(url: str) -> int:
    """Unsubscribe events recorded so far."""
    with db.transaction(url) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(ConsentEvent)
                .where(ConsentEvent.kind == "unsubscribe")
            )
            or 0
        )


def start_server(folder: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    """``newsletter web`` on ``port``, waiting until it answers."""
    env = {
        **os.environ,
        "NEWSLETTER_DATA_DIR": str(folder),
        "NEWSLETTER_DATABASE_URL": url,
        "NEWSLETTER_BASE_URL": f"http://127.0.0.1:{port}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "web", "--port", str(port), "--no-reload-watch"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the web server did not start")


def profile(pid: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """py-spy recording the server (``pip install py-spy``) for one wrk run."""
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid)]
    command += ["-d", str(args.seconds), "-f", "raw", "-o", str(args.py_spy), "-r", "250", "--gil"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def show(label: str, figures: dict[str, float]) -> None:
    print(
        f"  {label:5} {figures['rps']:7.0f} req/s  p50 {figures['p50']:7.1f} ms  "
        f"p99 {figures['p99']:7.1f} ms  max {figures['max']:7.1f} ms  "
        f"timeouts {figures['timeouts']:.0f}  non-2xx {figures['non2xx']:.0f}  "
        f"server CPU {figures['cpu']:.2f} ms/request",
        flush=True,
    )


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--people", type=int, default=40_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--py-spy", type=Path, help="profile the server in POST rounds (raw, to FILE)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        database = PostgresDatabase() if args.postgres else None
        url = database.url if database else f"sqlite:///{folder / 'newsletter.db'}"
        settings = Settings(data_dir=folder, database_url=url)
        get_token, token_file = prepare(url, settings, args.people, folder)
        script = folder / "post.lua"
        script.write_text(POST_SCRIPT % {"tokens": token_file, "threads": THREADS})
        port = free_port()
        server = start_server(folder, url, port)
        base = f"http://127.0.0.1:{port}"
        before = unsubscribes(url)
        gets: list[dict[str, float]] = []
        posts: list[dict[str, float]] = []
        try:
            print(
                f"{'PostgreSQL' if database else 'SQLite'}, wrk -c{args.connections} -d{args.seconds}s"
            )
            for number in range(1, args.rounds + 1):
                print(f"round {number}")
                start = (number - 1) * (args.people // args.rounds)
                gets.append(run_wrk(f"{base}/u/{get_token}", args, [], server.pid))
                show("GET", gets[-1])
                spy = profile(server.pid, args) if args.py_spy else None
                posts.append(run_wrk(base, args, ["-s", str(script), "--", str(start)], server.pid))
                if spy is not None:
                    spy.wait()
                show("POST", posts[-1])
        finally:
            os.killpg(server.pid, 15)
            server.wait(10)
        recorded = unsubscribes(url) - before
        answered = sum(run["requests"] - run["non2xx"] for run in posts)
        print("medians")
        show("GET", median_of(gets))
        show("POST", median_of(posts))
        print(f"POSTs answered 2xx: {answered:.0f}; unsubscribes recorded: {recorded}")
        db.dispose(url)
        if database:
            database.drop()


if __name__ == "__main__":
    main()
