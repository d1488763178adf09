"""The SMTP transport alone against Postfix's smtp-sink: what each of its shortcuts buys.

Run: ``.venv/bin/python benchmarks/transport.py [--messages 3000] [--runs 5]``

The December sample issue's messages are built beforehand with ``MessageFactory`` (as
``benchmarks/dispatch.py``'s raw path does), then pushed, one connection each, by four
senders, interleaved run by run, to ``smtp-sink`` (``benchmarks/processes.py``; it
counts final dots with ``-c``), which is not the bottleneck:

- raw: ``smtplib.sendmail`` (four round trips per message, its own CRLF and dot scan);
- scanned, one at a time: ``SmtpTransport`` given plain ``bytes`` (scanned and copied
  for DATA), to a sink started with ``-p`` (no PIPELINING offered): the transport as
  it was before either shortcut;
- as built, one at a time: given the factory's ``WireMessage``, still with ``-p``;
- as built, pipelined: the same to a sink that offers PIPELINING (its default).

Prints per run and as medians: messages per second, each sender's ratio to raw in the
same run, and this process's CPU time per message (user + system: the sender's cost,
whatever the sink's speed). No database, no worker: ``benchmarks/dispatch.py`` measures
the whole system.
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import PostfixSink  # noqa: E402
from newsletter.compose.issue import compile_file  # noqa: E402
from newsletter.delivery.message import MessageFactory, Recipient  # noqa: E402
from newsletter.delivery.transport import SmtpTransport  # noqa: E402
from newsletter.settings import Secret, Settings  # noqa: E402

ISSUE = ROOT / "issues" / "2026-12-remejai-ir-partneriai.md"
SENDER = "naujienos@bibliotekos-pazangai.example"

Messages = list[tuple[str, bytes]]


def built_messages(count: int) -> Messages:
    """The issue's messages for ``count`` recipients, as the factory builds them."""
    folder = Path(tempfile.mkdtemp(prefix="newsletter-transport-"))
    settings = Settings(
        data_dir=folder,
        base_url="https://naujienos.bibliotekos-pazangai.example",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=ROOT / "sponsors.yaml",
        issues_dir=ROOT / "issues",
        secret_key=Secret("benchmark-secret-key-0123456789abcdef"),
        from_address=SENDER,
    )
    compiled = compile_file(ISSUE, settings)
    factory = MessageFactory(compiled, settings, campaign_id=1, list_id_header="savivaldybes")
    built = []
    for n in range(count):
        address = f"asmuo{n:05d}@savivaldybe.example"
        token = f"AbCdEfGhIjKlMnOp{n:06d}"
        person = Recipient(
            email=address,
            name="Vardenis Pavardenis",
            municipality="Vilniaus m.",
            unsubscribe_url=f"{settings.base_url}/u/{token}",
        )
        built.append((address, factory.build(person)[1]))
    return built


def raw(sink: PostfixSink, messages: Messages) -> None:
    connection = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
    connection.ehlo()
    for address, data in messages:
        connection.sendmail(SENDER, [address], data)
    connection.quit()


def transport(sink: PostfixSink, messages: Messages) -> None:
    sending = SmtpTransport(sink.url, timeout=30)
    for address, data in messages:
        sending.send(SENDER, address, data)
    sending.close()


def timed(
    send: Callable[[PostfixSink, Messages], None], sink: PostfixSink, messages: Messages
) -> tuple[float, float]:
    """(messages per second until the sink counted them all, CPU µs per message here)."""
    sink.reset()
    cpu, started = time.process_time(), time.monotonic()
    send(sink, messages)
    finished = sink.wait_for(len(messages), 120)
    cpu_us = (time.process_time() - cpu) / len(messages) * 1e6
    return len(messages) / (finished - started), cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    built = built_messages(args.messages)
    plain = [(address, bytes(data)) for address, data in built]
    size = len(built[0][1]) / 1024
    pipelining, one_at_a_time = PostfixSink(), PostfixSink("-p")
    senders = {
        "raw smtplib": (raw, one_at_a_time, plain),
        "scanned, one at a time": (transport, one_at_a_time, plain),
        "as built, one at a time": (transport, one_at_a_time, built),
        "as built, pipelined": (transport, pipelining, built),
    }
    print(f"{args.messages} messages of {size:.0f} KB, one connection each, sink smtp-sink")
    rates: dict[str, list[float]] = {name: [] for name in senders}
    ratios: dict[str, list[float]] = {name: [] for name in senders}
    cpus: dict[str, list[float]] = {name: [] for name in senders}
    try:
        for run in range(1, args.runs + 1):
            line = []
            for name, (send, sink, messages) in senders.items():
                rate, cpu_us = timed(send, sink, messages)
                rates[name].append(rate)
                cpus[name].append(cpu_us)
                ratios[name].append(rate / rates["raw smtplib"][-1])
                line.append(f"{name} {rate:5.0f}/s {cpu_us:4.0f} µs")
            print(f"run {run}: " + "   ".join(line))
    finally:
        pipelining.stop()
        one_at_a_time.stop()
    print(f"medians of {args.runs} runs:")
    for name in senders:
        print(
            f"  {name:24s} {statistics.median(rates[name]):6.0f} msg/s   "
            f"÷ raw {statistics.median(ratios[name]):.2f}   "
            f"CPU {statistics.median(cpus[name]):4.0f} µs per message"
        )


if __name__ == "__main__":
    main()
