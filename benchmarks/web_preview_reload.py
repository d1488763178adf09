"""Benchmark: time from saving an issue file to the open preview showing it (target 300 ms).

    .venv/bin/python benchmarks/web_preview_reload.py [--saves N]

Serves the app with uvicorn on loopback, opens the preview in Debian's Chromium
(/usr/bin/chromium, driven by Playwright), then saves the issue N times. Each time it
notes the wall clock just before the write and, inside the page, the wall clock of the
iframe's ``load`` event that brought the new text; both clocks are this machine's.
Prints the median and the slowest, and the median compile time of the issue alone.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from newsletter import db, users
from newsletter.compose.issue import compile_file
from newsletter.settings import Secret, Settings
from newsletter.web import create_app
from newsletter.web.server import web_server

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
EMAIL, PASSWORD = "benchmark@example.org", "benchmark-password"
ISSUE = """---
subject: Bibliotekos pažangai – matavimas
preheader: Peržiūros atnaujinimo greitis
date: 2026-02-01
---
# Matavimas

Žymė: {marker}

Bibliotekose vyko mokymai, o skaitytojai mokėsi naudotis e. paslaugomis.
"""
RECORD_LOADS = """() => {
    window.__loads = [];
    document.getElementById("frame").addEventListener("load", (event) => {
        const body = event.target.contentDocument.body.innerText;
        window.__loads.push({at: performance.timeOrigin + performance.now(), body: body});
    });
}"""


def settings_in(folder: Path, port: int) -> Settings:
    """Embedded settings on a temporary folder with the repository's templates and sponsors."""
    issues = folder / "issues"
    issues.mkdir()
    return Settings(
        data_dir=folder / "var",
        issues_dir=issues,
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        base_url=f"http://127.0.0.1:{port}",
        secret_key=Secret("benchmark-secret-key-0123456789"),
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(page, predicate: str, arg: object = None, timeout: float = 30.0) -> None:
    """Poll ``predicate`` in the page (the page's CSP forbids Playwright's own waiting,
    which evaluates a string); the times measured are noted by the page itself."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate, arg):
        if time.monotonic() > deadline:
            raise TimeoutError(predicate)
        time.sleep(0.01)


@contextmanager
def serving(settings: Settings, port: int) -> Iterator[str]:
    """Serve the app with uvicorn on ``port`` until the block ends; yield its URL."""
    server = web_server(create_app(settings), "127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def log_in(page, url: str) -> None:
    """Log the benchmark's editor in."""
    page.goto(f"{url}/editor/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/editor/")


def measure(saves: int) -> tuple[list[float], list[float]]:
    """Return (save-to-visible seconds, compile seconds) for each save."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        settings = settings_in(Path(folder), port)
        db.migrate(settings.database)
        with db.transaction(settings.database) as session:
            users.create_user(session, EMAIL, PASSWORD)
        issue = settings.issues_dir / "matavimas.md"
        issue.write_text(ISSUE.format(marker="pradžia"), encoding="utf-8")
        latencies, compiles = [], []
        with serving(settings, port) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page()
            log_in(page, url)
            page.goto(f"{url}/editor/issues/matavimas")
            wait_until(page, "() => document.getElementById('preview').dataset.shownVersion")
            wait_until(page, "() => document.getElementById('preview').dataset.live === '1'")
            page.evaluate(RECORD_LOADS)
            for n in range(saves):
                marker = f"zyme{n}x"
                time.sleep(0.3)  # let the previous round settle
                saved_at = time.time() * 1000
                issue.write_text(ISSUE.format(marker=marker), encoding="utf-8")
                wait_until(page, "(m) => window.__loads.some((l) => l.body.includes(m))", marker)
                loads = page.evaluate("window.__loads")
                shown_at = min(x["at"] for x in loads if marker in x["body"])
                latencies.append((shown_at - saved_at) / 1000)
                started = time.perf_counter()
                compile_file(issue, settings)
                compiles.append(time.perf_counter() - started)
            browser.close()
    return latencies, compiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saves", type=int, default=20)
    args = parser.parse_args()
    latencies, compiles = measure(args.saves)
    ms = sorted(1000 * x for x in latencies)
    print(f"saves: {len(ms)}")
    print(
        f"save -> preview shows it: median {statistics.median(ms):.0f} ms, slowest {ms[-1]:.0f} ms"
    )
    print(f"compile of the issue alone: median {1000 * statistics.median(compiles):.1f} ms")


if __name__ == "__main__":
    main()
