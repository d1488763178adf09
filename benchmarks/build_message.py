"""Per-recipient cost of personalising and building a ~100 KB HTML newsletter.

Run: ``.venv/bin/python benchmarks/build_message.py [--runs 300]``

Prints medians (milliseconds per recipient), all in the same run:

- ``MessageFactory.build``: personalise, headers, the MIME body from quoted-printable pieces
  (target: at most 1 ms);
- the same with DKIM signing (an RSA-2048 key made with ``openssl`` for the run);
- the stdlib path: ``EmailMessage`` with ``policy.SMTP``, ``set_content`` and
  ``add_alternative``, then ``as_bytes``, as a naive sender does per recipient;
- the body encodings considered, on the personalised HTML part alone.

The issue is a ``newsletter.compose.render.CompiledIssue`` of about 100 KB of inlined HTML with
placeholder slots, built with ``from_dict`` as the sender rebuilds it from the campaign.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter.compose.render import CompiledIssue
from newsletter.compose.slots import slot
from newsletter.delivery.message import MessageFactory, Recipient, base64_body
from newsletter.settings import Secret, Settings

PARAGRAPH = (
    '<tr><td style="padding:0 24px 16px 24px;font-family:Arial,Helvetica,sans-serif;'
    'font-size:16px;line-height:24px;color:#222222">Vilniaus miesto savivaldybės viešoji '
    "biblioteka kviečia į renginį „Skaitymai po atviru dangumi“. Šiemet dalyvauja 60 "
    "savivaldybių bibliotekų, o programa „Bibliotekos pažangai“ remia naujas kompiuterių "
    'klases. <a href="https://www.bibliotekos-pazangai.lt/naujienos/2026/sausis" '
    'style="color:#0b5cad;text-decoration:underline">Skaityti daugiau</a>.</td></tr>\n'
)


def sample_issue() -> CompiledIssue:
    """Return a ~100 KB compiled issue with placeholder slots, as stored on a campaign."""
    head = f"<p>Sveiki, {slot('name')} ({slot('municipality')})!</p>\n"
    foot = f'<p><a href="{slot("unsubscribe_url")}">Atsisakyti</a> · {slot("view_url")}</p>\n'
    body = PARAGRAPH * (100_000 // len(PARAGRAPH.encode()))
    text = (
        f"Sveiki, {slot('name')}!\n\n" + ("Naujienų pastraipa apie biblioteką. " * 40 + "\n") * 20
    )
    return CompiledIssue.from_dict(
        {"slug": "2026-01-sausis", "subject": "Sausio naujienos: ąčęėįšųūž", "lang": "lt",
         "html": head + body + foot, "text": text}
    )  # fmt: skip


def recipients(count: int) -> list[Recipient]:
    """Distinct recipients, as a campaign has."""
    base = "https://naujienos.bibliotekos-pazangai.example"
    return [
        Recipient(
            email=f"asmuo{n}@savivaldybe{n % 60}.lt",
            name=f"Vardenis Pavardenis {n} – Ąžuolaitis",
            municipality="Šiaulių rajono savivaldybė",
            unsubscribe_url=f"{base}/u/AQEB{n:08d}x3k9dWl-a_Zq0Lw2mVt8",
            preferences_url=f"{base}/p/AQEB{n:08d}x3k9dWl-a_Zq0Lw2mVt8",
            view_url=f"{base}/v/7/AQEB{n:08d}x3k9dWl-a_Zq0Lw2mVt8",
        )
        for n in range(count)
    ]


def values(person: Recipient) -> dict[str, str]:
    """The placeholder values of one recipient."""
    return {
        "name": person.name, "municipality": person.municipality, "email": person.email,
        "unsubscribe_url": person.unsubscribe_url, "preferences_url": person.preferences_url,
        "view_url": person.view_url,
    }  # fmt: skip


def median_ms(work: Callable[[Any], object], inputs: list[Any]) -> float:
    """Median wall time of ``work`` per input, in milliseconds, after a warm-up."""
    for item in inputs[:20]:
        work(item)
    times = []
    for item in inputs:
        started = time.perf_counter_ns()
        work(item)
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1e6


def stdlib_builder(issue: CompiledIssue, settings: Settings) -> Callable[[Recipient], bytes]:
    """The naive path: one ``EmailMessage`` per recipient, serialised by the stdlib."""

    def build(person: Recipient) -> bytes:
        page, text = issue.personalise(values(person))
        message = EmailMessage(policy=policy.SMTP)
        message["From"] = f"{settings.from_name} <{settings.from_address}>"
        message["To"] = f"{person.name} <{person.email}>"
        message["Subject"] = issue.subject
        message["List-Unsubscribe"] = f"<{person.unsubscribe_url}>"
        message.set_content(text)
        message.add_alternative(page, subtype="html")
        return message.as_bytes()

    return build


def encodings(page: str, runs: int) -> dict[str, float]:
    """Median cost of each body encoding considered: str in, CRLF-lined bytes out."""
    ways: dict[str, Callable[[str], bytes]] = {
        "base64 of the whole part (before)": base64_body,
        "base64.encodebytes": lambda t: base64.encodebytes(t.encode()).replace(b"\n", b"\r\n"),
        "quoted-printable, binascii.b2a_qp": lambda t: binascii.b2a_qp(
            t.encode(), istext=True
        ).replace(b"\n", b"\r\n"),
    }
    pages = [page] * runs
    return {f"  HTML part only: {name}": median_ms(way, pages) for name, way in ways.items()}


def dkim_key(folder: Path) -> Path | None:
    """Make an RSA-2048 key for the DKIM run, or None without openssl."""
    binary = shutil.which("openssl")
    if binary is None:
        return None
    path = folder / "dkim.pem"
    subprocess.run([binary, "genrsa", "-out", str(path), "2048"], check=True, capture_output=True)
    return path


def measure(runs: int, folder: Path) -> tuple[dict[str, float], int, int]:
    """Run every measurement; return the medians and the sizes."""
    issue = sample_issue()
    people = recipients(runs)
    settings = Settings(data_dir=folder, secret_key=Secret("benchmark-secret-0123456789"))
    factory = MessageFactory(issue, settings, campaign_id=7, list_id_header="savivaldybes")
    page = issue.personalise(values(people[0]))[0]
    results = {
        "personalise only": median_ms(lambda p: issue.personalise(values(p)), people),
        "MessageFactory.build (personalise + build)": median_ms(factory.build, people),
    }
    key = dkim_key(folder)
    if key is not None:
        signing = settings.replace(dkim_key_file=key, dkim_selector="nl2026")
        signed = MessageFactory(issue, signing, campaign_id=7, list_id_header="savivaldybes")
        results["MessageFactory.build with DKIM (dkimpy)"] = median_ms(signed.build, people)
    results["stdlib EmailMessage path"] = median_ms(stdlib_builder(issue, settings), people)
    results.update(encodings(page, runs))
    return results, len(page.encode()), len(factory.build(people[0])[1])


def main() -> None:
    parser = argparse.ArgumentParser(description="Per-recipient message build time.")
    parser.add_argument("--runs", type=int, default=300, help="recipients per measurement")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        results, page_size, message_size = measure(runs, Path(folder))
    print(
        f"HTML {page_size / 1000:.0f} KB personalised; whole message {message_size / 1000:.0f} KB"
    )
    print(f"{runs} recipients per line; Python {sys.version.split()[0]}")
    for name, value in results.items():
        print(f"{name:<50} median {value:7.3f} ms")
    fast = results["MessageFactory.build (personalise + build)"]
    slow = results["stdlib EmailMessage path"]
    print(f"{'stdlib path / MessageFactory.build':<50} ratio  {slow / fast:7.1f}x")


if __name__ == "__main__":
    main()
