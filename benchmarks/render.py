"""Benchmark: warm compile time per issue and personalisation time for a ~100 KB email.

    .venv/bin/python benchmarks/render.py [--runs N]

Prints medians. Targets: compile <= 50 ms warm per issue, personalise <= 100 µs for an
email of about 100 KB. The large issue is generated into a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from newsletter.compose.issue import compile_file
from newsletter.compose.render import sample_values
from newsletter.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PARAGRAPH = (
    "Viešosiose bibliotekose vyksta pokyčiai: {n}-asis renginys pristatė projekto "
    "pasiekimus savivaldybių atstovams, o [daugiau apie tai](https://bibliotekos-pazangai"
    ".example/renginiai/{n}?saltinis=naujienlaiskis) rasite svetainėje. Dėkojame "
    "partneriams ir rėmėjams už paramą, prizus ir bendradarbiavimą.\n"
)


def median_seconds(action: Callable[[], object], runs: int) -> float:
    """Median wall time of ``runs`` calls of ``action`` after one warm-up call."""
    action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def large_issue(folder: Path, paragraphs: int) -> Path:
    """Write an issue whose body has ``paragraphs`` paragraphs with links and headings."""
    parts = []
    for n in range(paragraphs):
        if n % 10 == 0:
            parts.append(f"## Skyrius {n // 10 + 1}\n")
        parts.append(PARAGRAPH.format(n=n))
    path = folder / "didelis-numeris.md"
    front = (
        "---\nsubject: Didelis bandomasis numeris\npreheader: Daug teksto\nsponsors: [all]\n---\n"
    )
    path.write_text(front + "\n".join(parts), encoding="utf-8")
    return path


def settings() -> Settings:
    return Settings(
        issues_dir=ROOT / "issues",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        base_url="https://naujienos.bibliotekos-pazangai.example",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per compile figure")
    args = parser.parse_args()
    config = settings()
    print(f"compile, warm (median of {args.runs}):")
    for path in sorted((ROOT / "issues").glob("*.md")):
        seconds = median_seconds(lambda path=path: compile_file(path, config), args.runs)
        print(f"  {path.name:<48} {seconds * 1000:7.1f} ms")
    with tempfile.TemporaryDirectory() as folder:
        big = large_issue(Path(folder), paragraphs=140)
        seconds = median_seconds(lambda: compile_file(big, config), max(5, args.runs // 3))
        compiled = compile_file(big, config)
    values = sample_values(config.base_url)
    html, _text = compiled.personalise(values)
    size = len(html.encode("utf-8"))
    print(f"  {big.name + f' ({size / 1024:.0f} KB HTML)':<48} {seconds * 1000:7.1f} ms")
    recipients = [
        {**values, "name": f"Vardenis {n} <b>&</b>", "email": f"asmuo{n}@example.lt"}
        for n in range(100)
    ]
    times = []
    for _ in range(50):
        for recipient in recipients:
            start = time.perf_counter()
            compiled.personalise(recipient)
            times.append(time.perf_counter() - start)
    print(
        f"personalise, {size / 1024:.0f} KB HTML + {len(compiled.text) / 1024:.0f} KB text "
        f"(median of {len(times)}): {statistics.median(times) * 1e6:.1f} µs"
    )


if __name__ == "__main__":
    main()
