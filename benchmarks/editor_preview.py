"""Benchmark: keystroke to the editor's live preview showing the unsaved text (goal 300 ms).

    .venv/bin/python benchmarks/editor_preview.py [--edits N] [--markdown]

Serves the app with uvicorn on loopback and opens the editor page of two issues in
Debian's Chromium (/usr/bin/chromium, driven by Playwright): the repository's sample issue
and a generated one whose email is about 90 KB of HTML, near Gmail's 102 KB clip
(``--markdown``: whose text is 90 KB of Markdown). On each it makes N edits: a pause, then one
real keystroke adding a letter to a word at the end of a paragraph. The page notes the
time of the keystroke (``keydown``) and of the preview frame's ``load`` that shows
the marker; both are the browser's clock. Nothing is saved. Prints the median and the
slowest, and the median time to compile and lint the text alone (the server's share).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from web_preview_reload import (
    EMAIL,
    FLAGS,
    PASSWORD,
    ROOT,
    free_port,
    log_in,
    serving,
    settings_in,
    wait_until,
)

from newsletter import db, users
from newsletter.settings import Settings
from newsletter.web import issues

SAMPLE = ROOT / "issues" / "2026-12-remejai-ir-partneriai.md"
SECTION = (
    "\n## Naujienos iš savivaldybės Nr. {n}\n\n"
    "Bibliotekose vyko mokymai, o skaitytojai mokėsi naudotis e. paslaugomis ir "
    "skaitmeniniais ištekliais. [Daugiau](https://www.bibliotekospazangai.lt/naujienos/{n})\n\n"
    "- Kompiuterinio raštingumo kursai senjorams\n- Vaikų programavimo būrelis\n"
)
RECORD = """() => {
    window.__keys = [];
    window.__loads = [];
    document.addEventListener("keydown", () => window.__keys.push(performance.now()), true);
    document.getElementById("frame").addEventListener("load", (event) => {
        const body = event.target.contentDocument.body.innerText;
        window.__loads.push({at: performance.now(), body: body});
    });
}"""


def large_issue(settings: Settings, target_kb: int, *, markdown: bool = False) -> str:
    """The sample issue with sections appended until its email's HTML (or, with
    ``markdown``, its own text) is ``target_kb`` KB."""
    text = SAMPLE.read_text(encoding="utf-8").rstrip("\n") + "\n"
    path = settings.issues_dir / "large.md"

    def size(candidate: str) -> int:
        if markdown:
            return len(candidate.encode("utf-8"))
        return len(issues.compile_text(candidate, path, settings)[0].html.encode("utf-8"))

    number = 0
    while size(text) < target_kb * 1024:
        for _ in range(1 if markdown else 10):
            text += SECTION.format(n=number)
            number += 1
    return text


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def edit_latencies(page, edits: int) -> list[float]:
    """Make ``edits`` one-keystroke edits; return keystroke-to-preview milliseconds for each.

    Each keystroke adds a letter to a word at the end of a paragraph; the preview shows the
    edit when its frame holds the word as typed so far.
    """
    page.evaluate(RECORD)
    line = page.locator("#code-editor .cm-line").filter(has_text="Bibliotekose vyko").first
    if line.count() == 0:
        line = page.locator("#code-editor .cm-line").last
    line.click()
    page.keyboard.press("End")
    page.keyboard.type(" Zq")
    wait_until(page, "(m) => window.__loads.some((l) => l.body.includes(m))", "Zq")
    shown = []
    for n in range(edits):
        word = "Zq" + LETTERS[: n + 1]
        time.sleep(0.6)  # a pause, so that each edit is timed on its own
        page.keyboard.press(LETTERS[n])
        wait_until(page, "(m) => window.__loads.some((l) => l.body.includes(m))", word)
        keys = page.evaluate("window.__keys")
        loads = page.evaluate("window.__loads")
        shown.append(min(x["at"] for x in loads if word in x["body"]) - keys[-1])
    return shown


def compile_ms(text: str, path: Path, settings, rounds: int = 5) -> float:
    """The median time to compile and lint ``text`` in memory, as the live endpoint does."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        issues.compile_text(text, path, settings)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def measure(edits: int, markdown: bool) -> dict[str, tuple[int, int, list[float], float]]:
    """For each issue: its text's and its HTML's bytes, the latencies, the compile median."""
    from playwright.sync_api import sync_playwright

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        settings = settings_in(Path(folder), port)
        db.migrate(settings.database)
        with db.transaction(settings.database) as session:
            users.create_user(session, EMAIL, PASSWORD)
        large = large_issue(settings, 90, markdown=markdown)
        texts = {"sample": SAMPLE.read_text(encoding="utf-8"), "large": large}
        for slug, text in texts.items():
            (settings.issues_dir / f"{slug}.md").write_text(text, encoding="utf-8")
        with serving(settings, port) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            log_in(page, url)
            for slug, text in texts.items():
                page.goto(f"{url}/editor/issues/{slug}/edit")
                page.wait_for_selector("#code-editor")
                wait_until(page, "() => document.getElementById('preview').dataset.shownVersion")
                latencies = edit_latencies(page, edits)
                path = settings.issues_dir / f"{slug}.md"
                html = issues.compile_text(text, path, settings)[0].html
                compiled = compile_ms(text, path, settings)
                results[slug] = (len(text.encode()), len(html.encode()), latencies, compiled)
            browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument(
        "--markdown", action="store_true", help="size the large issue by its text, not its HTML"
    )
    args = parser.parse_args()
    for slug, (size, html, latencies, compiled) in measure(args.edits, args.markdown).items():
        ms = sorted(latencies)
        print(
            f"{slug} issue ({size / 1024:.1f} KB Markdown, {html / 1024:.1f} KB HTML), "
            f"{len(ms)} edits: keystroke -> "
            f"preview shows it: median {statistics.median(ms):.0f} ms, slowest {ms[-1]:.0f} ms; "
            f"compile and lint alone: median {compiled:.0f} ms"
        )


if __name__ == "__main__":
    main()
