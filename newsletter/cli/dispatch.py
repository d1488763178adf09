"""Dispatch commands: ``send``, ``campaigns``, ``campaign status|pause|resume|cancel|report``,
``worker`` and ``scheduler``.

Thin: each parses its arguments, calls ``newsletter.dispatch.campaign`` (or the Celery app) and
prints. With no ``NEWSLETTER_REDIS_URL``, ``send`` runs the campaign in this process.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from newsletter import audit
from newsletter.cli.core import Context, console, pass_context
from newsletter.db import transaction
from newsletter.dispatch import approval, campaign, clicks, outbox, overlap
from newsletter.errors import InputError, IssueError, SendingElsewhereError
from newsletter.models import utcnow
from newsletter.settings import Settings

if TYPE_CHECKING:
    from newsletter.compose.render import CompiledIssue
    from newsletter.dispatch.sender import Outcome

Update = Callable[..., None]
AT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


def register(group: click.Group) -> None:
    """Attach the dispatch commands to the ``newsletter`` group."""
    for command in (send_command, campaigns_command, campaign_group, worker_command):
        group.add_command(command)
    group.add_command(scheduler_command)


# Parsing ------------------------------------------------------------------------------


def parse_where(pairs: tuple[str, ...]) -> dict[str, str]:
    """Turn ``key=value`` options into a dict; InputError naming a malformed one."""
    where: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--where: expected key=value, got {pair!r}")
        where[key.strip()] = value.strip()
    return where


def parse_at(text: str | None, now: datetime | None = None) -> datetime | None:
    """Parse ``--at`` (local time unless it names an offset); it must lie ahead."""
    if text is None:
        return None
    moment = None
    for pattern in AT_FORMATS:
        try:
            moment = datetime.strptime(text.strip(), pattern)
            break
        except ValueError:
            continue
    if moment is None:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InputError(
                f'--at: expected a time like "2026-12-01 09:00", got {text!r}'
            ) from None
    moment = moment.astimezone() if moment.tzinfo is None else moment
    if moment <= (now or utcnow()):
        raise InputError(f"--at: {text} is in the past")
    return moment


# send ---------------------------------------------------------------------------------


@click.command("send")
@click.argument("issue", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--list", "-l", "slugs", multiple=True, help="List slug; repeat for more lists.")
@click.option("--where", "wheres", multiple=True, help="Segment: key=value; repeat to narrow.")
@click.option("--at", "at", help='Send later, e.g. "2026-12-01 09:00" (local time).')
@click.option("--dry-run", is_flag=True, help="Count who would receive it; send nothing.")
@click.option("--test-to", "test_to", help="Send one [TEST] copy to this address only.")
@click.option("--only-new", is_flag=True, help="Leave out whoever already got this issue.")
@click.option("--again", is_flag=True, help="Send to whoever already got this issue as well.")
@click.option(
    "--allow-insecure-base-url",
    is_flag=True,
    help="Send over SMTP although NEWSLETTER_BASE_URL is no public https:// address (a lab; "
    "workers need NEWSLETTER_ALLOW_INSECURE_BASE_URL=1).",
)
@pass_context
def send_command(
    ctx: Context,
    issue: Path,
    slugs: tuple[str, ...],
    wheres: tuple[str, ...],
    at: str | None,
    dry_run: bool,
    test_to: str | None,
    only_new: bool,
    again: bool,
    allow_insecure_base_url: bool,
) -> None:
    """Send ISSUE to one or more lists (compiled once; one outbox row per recipient).

    Refused when any recipient already got this issue (the same file name or the same
    content) from another campaign, unless --only-new or --again says what to do.
    """
    from newsletter.compose.issue import compile_file

    settings = ctx.settings
    if allow_insecure_base_url:
        settings = settings.replace(allow_insecure_base_url=True)
    if not slugs and not test_to:
        raise InputError("send: name at least one --list (or --test-to ADDRESS)")
    if only_new and again:
        raise InputError("send: --only-new and --again exclude each other; choose one")
    repeat = overlap.ONLY_NEW if only_new else overlap.AGAIN if again else overlap.REFUSE
    where, send_at = parse_where(wheres), parse_at(at)
    compiled = compile_file(issue, settings)
    refuse_lint_errors(issue, settings, compiled)
    if test_to:
        _send_test(settings, compiled, test_to)
        return
    if dry_run:
        _count(settings, compiled, slugs, where)
        return
    created = campaign.create(
        settings,
        compiled,
        slugs,
        where,
        send_at=send_at,
        repeat=repeat,
        created_by=audit.operator(settings),
        hold=settings.approvals > 0,
    )
    obj = f"campaign:{created.campaign_id}"
    audit.record_cli(settings, "campaign.create", obj, issue=compiled.slug, status=created.status)
    if created.status == approval.AWAITING:
        console.print(
            f"campaign {created.campaign_id} awaits {settings.approvals} approval(s) by "
            f"others; `newsletter campaign approve {created.campaign_id}`"
        )
        return
    console.print(
        f"campaign {created.campaign_id}: {created.recipients} recipients ({', '.join(slugs)})"
    )
    if created.status == "scheduled" and send_at is not None:
        console.print(
            f"scheduled for {send_at:%Y-%m-%d %H:%M %Z}; `newsletter scheduler` starts it"
        )
    elif settings.embedded:
        _run_here(settings, created.campaign_id)
    else:
        _hand_to_workers(settings, created.campaign_id)


def _count(
    settings: Settings, compiled: CompiledIssue, slugs: tuple[str, ...], where: dict[str, str]
) -> None:
    """Print how many would receive it, and how many of them already have it (``--dry-run``)."""
    found = overlap.audience(settings, compiled, slugs, where)
    already = f"; {overlap.describe(found)}" if found.already else ""
    console.print(
        f"{found.recipients} recipients would receive {compiled.slug!r}{already}; nothing was sent"
    )


def refuse_lint_errors(issue: Path, settings: Settings, compiled: CompiledIssue) -> None:
    """Refuse an issue with lint errors (as the web does); IssueError names the first.

    Warnings never stop a send, a test copy included.
    """
    from newsletter.compose.lint import lint_file

    errors = [f for f in lint_file(issue, settings, compiled=compiled) if f.severity == "error"]
    if errors:
        first = errors[0]
        raise IssueError(
            f"{first.message} (lint found {len(errors)} error(s); nothing was sent; "
            f"see `newsletter lint {issue}`)",
            path=first.file,
            line=first.line,
        )


def _send_test(settings: Settings, compiled: CompiledIssue, address: str) -> None:
    """Send the one-row test campaign here and print the server's answer."""
    from newsletter.dispatch.embedded import run_campaign

    campaign_id = campaign.create_test(settings, compiled, address)
    run_campaign(settings, campaign_id)
    line = campaign.report(settings, campaign_id)[0]
    detail = line.smtp_reply or line.reason
    console.print(f"test copy to {line.email}: {line.outcome}" + (f" ({detail})" if detail else ""))


def _run_here(settings: Settings, campaign_id: int) -> None:
    """Send the campaign in this process with a progress bar (no Redis configured).

    If another live process holds the campaign's lease (a web process took it first),
    follow that one's progress instead.
    """
    from newsletter.dispatch.embedded import run_campaign

    start = campaign.progress(settings, campaign_id)
    try:
        with progress_bar(start) as update:
            shown = [0.0]

            def on_outcome(_: Outcome) -> None:
                # Read the counts from the database a few times a second, not per message.
                if time.monotonic() - shown[0] >= 0.2:
                    shown[0] = time.monotonic()
                    now = campaign.progress(settings, campaign_id)
                    update(now.counts, now.total, now.rate)

            finished = run_campaign(settings, campaign_id, on_outcome=on_outcome, notice=_notice)
            update(finished.counts, finished.total, finished.rate)
    except SendingElsewhereError as exc:
        console.print(f"{exc}; following it here")
        finished = follow_progress(settings, campaign_id)
    print_summary(finished)


def _notice(text: str) -> None:
    """A line above the progress bar (the database went away, or came back)."""
    console.print(text, markup=False)


def _hand_to_workers(settings: Settings, campaign_id: int) -> None:
    """Publish the campaign's rows to Redis now instead of at the next tick."""
    from newsletter.dispatch.tasks import CeleryBroker, app_for

    done = campaign.tick(settings, CeleryBroker(app_for(settings)))
    with transaction(settings.database) as session:
        later = outbox.not_handed_out(session, campaign_id)
    rest = f" (`newsletter scheduler` hands out the other {later} as they go)" if later > 0 else ""
    console.print(
        f"handed {done.published} messages to the workers{rest}; "
        f"follow with: newsletter campaign status {campaign_id} --follow"
    )


# Showing progress ---------------------------------------------------------------------


def describe(counts: Mapping[str, int], rate: float | None = None) -> str:
    """One line of counts: sent, failed, uncertain, queued (and the rate when known)."""
    parts = [
        f"sent {counts.get(outbox.SENT, 0)}",
        f"failed {counts.get(outbox.FAILED, 0)}",
        f"uncertain {counts.get(outbox.UNCERTAIN, 0) + counts.get('possible_duplicates', 0)}",
        f"suppressed {counts.get(outbox.SUPPRESSED, 0)}",
        f"queued {counts.get(outbox.QUEUED, 0) + counts.get(outbox.SENDING, 0)}",
    ]
    if rate is not None:
        parts.append(f"{rate:.1f}/s")
    return " · ".join(parts)


@contextmanager
def progress_bar(start: campaign.Progress) -> Iterator[Update]:
    """A live bar; yields ``update(counts, total, rate=None)``."""
    columns = (
        TextColumn("[bold]campaign {task.fields[campaign]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(describe(start.counts), total=start.total, campaign=start.campaign_id)

        def update(counts: Mapping[str, int], total: int, rate: float | None = None) -> None:
            waiting = counts.get(outbox.QUEUED, 0) + counts.get(outbox.SENDING, 0)
            bar.update(
                task, completed=total - waiting, total=total, description=describe(counts, rate)
            )

        yield update


def print_summary(now: campaign.Progress) -> None:
    """Print the campaign's final line."""
    reason = f" ({now.status_reason})" if now.status_reason else ""
    console.print(f"campaign {now.campaign_id} {now.status}{reason}: {describe(now.counts)}")
    if now.status == "paused" and now.status_reason:
        console.print(f"once that is fixed: newsletter campaign resume {now.campaign_id}")
    if now.counts.get("possible_duplicates") or now.counts.get(outbox.UNCERTAIN):
        console.print(f"see who may hold two copies: newsletter campaign report {now.campaign_id}")


# campaigns, campaign … ----------------------------------------------------------------


@click.command("campaigns")
@pass_context
def campaigns_command(ctx: Context) -> None:
    """List campaigns, newest first."""
    table = Table("id", "issue", "status", "created", "sent / total", "failed", "uncertain")
    for item in campaign.all_campaigns(ctx.settings):
        counts = item.counts
        status = item.status + (" (test)" if item.is_test else "")
        table.add_row(
            str(item.campaign_id),
            item.issue_slug,
            status,
            f"{item.created_at.astimezone():%Y-%m-%d %H:%M}",
            f"{counts[outbox.SENT]} / {item.total}",
            str(counts[outbox.FAILED]),
            str(counts[outbox.UNCERTAIN] + counts["possible_duplicates"]),
        )
    console.print(table)


@click.group("campaign")
def campaign_group() -> None:
    """Look at or steer one campaign."""


@campaign_group.command("status")
@click.argument("campaign_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Show a live progress bar until it ends.")
@click.option("--interval", default=0.5, show_default=True, hidden=True)
@pass_context
def status_command(ctx: Context, campaign_id: int, follow: bool, interval: float) -> None:
    """Show how far a campaign got: queued, sent, failed, uncertain, rate."""
    if follow:
        now = follow_progress(ctx.settings, campaign_id, interval)
    else:
        now = campaign.progress(ctx.settings, campaign_id)
    console.print(f"campaign {now.campaign_id}: {now.issue_slug} — {now.subject}")
    print_summary(now)
    if now.status == "running" and ctx.settings.embedded:
        _say_who_sends(ctx.settings, campaign_id)


def _say_who_sends(settings: Settings, campaign_id: int) -> None:
    """Without Redis: name the process sending the campaign, or say how to continue it."""
    from newsletter.dispatch.lease import sending_elsewhere

    holder = sending_elsewhere(settings, campaign_id)
    if holder is not None:
        console.print(f"being sent by {holder.describe()}")
    else:
        console.print(
            f"no process is sending it; `newsletter campaign resume {campaign_id}` continues it"
        )


def follow_progress(
    settings: Settings, campaign_id: int, interval: float = 0.5
) -> campaign.Progress:
    """Show a live progress bar of a campaign sent elsewhere until it stops; return its end."""
    now = campaign.progress(settings, campaign_id)
    with progress_bar(now) as update:
        while now.status in campaign.ACTIVE:
            update(now.counts, now.total, now.rate)
            if now.status != "running" and now.counts[outbox.SENDING] == 0:
                break
            time.sleep(interval)
            now = campaign.progress(settings, campaign_id)
        update(now.counts, now.total, now.rate)
    return now


@campaign_group.command("pause")
@click.argument("campaign_id", type=int)
@pass_context
def pause_command(ctx: Context, campaign_id: int) -> None:
    """Stop sending; messages already handed to the server still count."""
    campaign.pause(ctx.settings, campaign_id)
    audit.record_cli(ctx.settings, "campaign.pause", f"campaign:{campaign_id}")
    console.print(f"campaign {campaign_id} paused; `newsletter campaign resume {campaign_id}`")


@campaign_group.command("resume")
@click.argument("campaign_id", type=int)
@pass_context
def resume_command(ctx: Context, campaign_id: int) -> None:
    """Continue a paused campaign, or a running one that no process is sending any more."""
    settings = ctx.settings
    status = campaign.resume(settings, campaign_id)
    audit.record_cli(settings, "campaign.resume", f"campaign:{campaign_id}")
    console.print(f"campaign {campaign_id} is {status} again")
    if status == "running":
        if settings.embedded:
            _run_here(settings, campaign_id)
        else:
            _hand_to_workers(settings, campaign_id)


@campaign_group.command("cancel")
@click.argument("campaign_id", type=int)
@pass_context
def cancel_command(ctx: Context, campaign_id: int) -> None:
    """End a campaign; recipients not yet sent to will not be."""
    left = campaign.cancel(ctx.settings, campaign_id)
    audit.record_cli(ctx.settings, "campaign.cancel", f"campaign:{campaign_id}")
    console.print(f"campaign {campaign_id} cancelled; {left} recipients will not receive it")


@campaign_group.command("approve")
@click.argument("campaign_id", type=int)
@pass_context
def approve_command(ctx: Context, campaign_id: int) -> None:
    """Approve a campaign awaiting approval, as this operator (never its author)."""
    settings = ctx.settings
    now = approval.standing(settings, campaign_id)
    basis = now.basis
    console.print(
        f"campaign {campaign_id}: {basis.recipients} recipients, content {basis.content_hash[:12]}"
    )
    me = audit.operator(settings)
    after = approval.approve(settings, campaign_id, me, basis.digest, basis.file_hash)
    audit.record_cli(settings, "campaign.approve", f"campaign:{campaign_id}", basis=basis.digest)
    console.print(f"approved: {after.valid} of {after.needed} approvals hold")


@campaign_group.command("start")
@click.argument("campaign_id", type=int)
@pass_context
def start_command(ctx: Context, campaign_id: int) -> None:
    """Start an approved campaign whose approvals still hold (checked again now)."""
    settings = ctx.settings
    approval.start(settings, campaign_id)
    campaign.start_due(settings)
    audit.record_cli(settings, "campaign.start", f"campaign:{campaign_id}")
    console.print(f"campaign {campaign_id} started")
    if settings.embedded:
        _run_here(settings, campaign_id)
    else:
        _hand_to_workers(settings, campaign_id)


@campaign_group.command("report")
@click.argument("campaign_id", type=int)
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to standard output.")
@pass_context
def report_command(ctx: Context, campaign_id: int, as_csv: bool) -> None:
    """One line per recipient: outcome, attempts, the server's reply and the reason."""
    lines = campaign.report(ctx.settings, campaign_id)
    if as_csv:
        sys.stdout.write(campaign.report_csv(lines))
        return
    header = campaign.REPORT_COLUMNS
    table = Table(*header[:6], "bounce")
    for line in lines:
        table.add_row(*_cells(line)[:6], line.bounce)
    console.print(table)


@campaign_group.command("clicks")
@click.argument("campaign_id", type=int)
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to standard output.")
@pass_context
def clicks_command(ctx: Context, campaign_id: int, as_csv: bool) -> None:
    """Readers' clicks per link (NEWSLETTER_CLICK_COUNTING=aggregate), scanners apart."""
    report = clicks.campaign_clicks(ctx.settings, campaign_id)
    if as_csv:
        sys.stdout.write(clicks.campaign_csv(report))
        return
    table = Table("#", "text", "section", "sponsor", "clicks", "readers", "scanners")
    for link in report.links:
        table.add_row(
            str(link.number),
            link.text or link.url,
            link.section,
            link.sponsor,
            *(str(n) for n in (link.clicks, link.readers, link.scanner_clicks)),
        )
    console.print(table)
    console.print(
        f"{report.clicks} clicks, about {report.readers} distinct readers; "
        f"{report.scanner_clicks} requests of scanners not counted"
    )


def _cells(line: campaign.ReportLine) -> list[str]:
    sent_at = line.sent_at.isoformat(timespec="seconds") if line.sent_at else ""
    code = "" if line.smtp_code is None else str(line.smtp_code)
    return [
        line.email,
        line.outcome,
        str(line.attempts),
        code,
        line.smtp_reply,
        line.reason,
        line.message_id,
        sent_at,
    ]


# worker, scheduler --------------------------------------------------------------------


@click.command("worker")
@click.option(
    "--concurrency", "-c", type=int, default=None, help="Worker processes (default: CPUs)."
)
@click.option("--beat", is_flag=True, help="Also run the periodic scheduler in this worker.")
@click.option("--loglevel", default="info", show_default=True)
@pass_context
def worker_command(ctx: Context, concurrency: int | None, beat: bool, loglevel: str) -> None:
    """Start a Celery worker that sends campaigns (needs NEWSLETTER_REDIS_URL)."""
    from newsletter.dispatch.tasks import SEND_QUEUE, TICK_QUEUE, app_for, check_redis_keeps_tasks

    settings = ctx.settings
    app = app_for(settings)
    check_redis_keeps_tasks(settings.redis_url)
    argv = [
        "worker",
        "--pool=prefork",
        f"--queues={SEND_QUEUE},{TICK_QUEUE}",
        f"--loglevel={loglevel}",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if beat:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        argv.append("--beat")
    app.worker_main(argv)


@click.command("scheduler")
@click.option("--loglevel", default="info", show_default=True)
@pass_context
def scheduler_command(ctx: Context, loglevel: str) -> None:
    """Start due campaigns and re-queue unfinished work every tick (in-process without Redis)."""
    settings = ctx.settings
    if settings.embedded:
        from newsletter.dispatch.embedded import serve

        console.print(
            f"scheduler running in this process, every {settings.tick_seconds:g} s; Ctrl-C stops it"
        )
        serve(settings)
        return
    from newsletter.dispatch.tasks import app_for

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app_for(settings).start(["beat", f"--loglevel={loglevel}"])
