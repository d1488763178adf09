"""Commands of the subscribers area: ``newsletter subscribers …`` and ``newsletter lists``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from newsletter import audit, db
from newsletter.audience.listfiles import XLSX_EMPTY_ROWS_END
from newsletter.audience.lists import (
    COMMAND_LINE,
    ImportReport,
    LastImport,
    archive_list,
    change_list,
    create_list,
    find_list,
    import_detail,
    import_file,
    last_imports,
    list_summaries,
)
from newsletter.audience.lists import Progress as ProgressCallback
from newsletter.audience.subscribers import (
    ErasureReport,
    audit_name,
    erase_person,
    export_subscriber,
    find_subscriber,
    normalise_email,
    resolve_lists,
    unsubscribe,
)
from newsletter.cli.core import Context, console, err_console, pass_context
from newsletter.errors import NotFoundError
from newsletter.settings import Settings

_STAGE_TEXT = {
    "reading": "reading the file",
    "duplicates": "merging duplicate addresses",
    "suppressed": "setting aside suppressed addresses",
    "compare": "comparing existing subscribers",
    "subscribers": "adding new subscribers",
    "memberships": "adding memberships",
    "sync": "removing members not in the file",
    "done": "finishing",
}


def _database(settings: Settings) -> str:
    """Migrate the database (nothing to do when current) and return its URL."""
    db.migrate(settings.database)
    return settings.database


@click.group("subscribers")
def subscribers_group() -> None:
    """Import list files; export, erase or unsubscribe one person."""


@subscribers_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--list", "slug", required=True, help="Slug of the list, e.g. savivaldybes.")
@click.option("--sync", is_flag=True, help="Also remove members who are not in the file.")
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--name", default="", help="Name of the list (sets or changes it).")
@pass_context
def import_command(
    ctx: Context, file: Path, slug: str, sync: bool, dry_run: bool, name: str
) -> None:
    """Import a CSV or XLSX list FILE into a list, all or nothing.

    Columns: email (required), name, municipality, role, and optionally institution,
    department, county, language; English or Lithuanian headers. UTF-8 (with or
    without BOM) or Windows-1257; comma, semicolon or tab. People who unsubscribed,
    bounced or were erased are never added back.
    """
    settings = ctx.settings
    url = _database(settings)
    with _progress_bar() as progress:
        report = import_file(
            url,
            settings.key(),
            file,
            slug,
            sync=sync,
            dry_run=dry_run,
            name=name,
            progress=progress,
            by=COMMAND_LINE,
        )
    if not dry_run:
        audit.record_cli(settings, "list.import", f"list:{report.slug}", **import_detail(report))
    _print_report(report)


@contextmanager
def _progress_bar() -> Iterator[ProgressCallback]:
    """A rich progress bar on stderr when it is a terminal; silent otherwise."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(
        *columns, console=err_console, transient=True, disable=not err_console.is_terminal
    ) as bar:
        task = bar.add_task(_STAGE_TEXT["reading"], total=None)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=_STAGE_TEXT.get(stage, stage), completed=done, total=total)

        yield update


def _print_report(report: ImportReport) -> None:
    file_kind = (
        f"{report.encoding.upper()}, delimiter {report.delimiter!r}" if report.encoding else "XLSX"
    )
    created = " (new list)" if report.list_created else ""
    console.print(
        f"{escape(str(report.path))} → list [bold]{report.slug}[/]{created} ({file_kind}), "
        f"{report.rows} rows",
        soft_wrap=True,
    )
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("added", str(report.added))
    table.add_row("updated", str(report.updated))
    table.add_row("unchanged", str(report.unchanged))
    table.add_row(
        "suppressed", str(report.suppressed), "unsubscribed, bounced or erased: not added"
    )
    if report.duplicates:
        table.add_row("duplicates", str(report.duplicates), "merged into the address's first row")
    if report.sync:
        table.add_row("removed", str(report.removed), "members not in the file")
    table.add_row("rejected", str(report.rejected_count))
    console.print(table)
    if report.dry_run and report.leaving:
        console.print("would leave: " + escape(", ".join(report.leaving)), soft_wrap=True)
    for rejection in report.rejected:
        console.print(f"  line {rejection.line}: {escape(rejection.reason)}", soft_wrap=True)
    if report.rejected_count > len(report.rejected):
        console.print(f"  … and {report.rejected_count - len(report.rejected)} more")
    if report.stopped_at:
        console.print(
            f"stopped reading at line {report.stopped_at}, the last of "
            f"{XLSX_EMPTY_ROWS_END:,} empty rows in a row; rows below it, if any, were not read",
            soft_wrap=True,
        )
    if report.ignored_columns:
        ignored = ", ".join(report.ignored_columns)
        console.print(f"ignored columns (not stored): {escape(ignored)}")
    if report.dry_run:
        console.print("dry run: nothing was changed")


def person_hmac(settings: Settings, email: str) -> str:
    """A person as the audit log names them: never the address, its suppression HMAC."""
    return audit_name(settings.key(), email)


@subscribers_group.command("export")
@click.argument("email")
@pass_context
def export_command(ctx: Context, email: str) -> None:
    """Print everything held about one person as JSON (profile, lists, consent, mail sent)."""
    settings = ctx.settings
    with db.transaction(_database(settings)) as session:
        data = export_subscriber(session, settings.key(), email)
    audit.record_cli(settings, "person.export", person_hmac(settings, email))
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@subscribers_group.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def erase_command(ctx: Context, email: str, yes: bool) -> None:
    """Erase one person's data for good; only a keyed HMAC stays, to keep them suppressed.

    A message already being handed to the mail server when the erasure begins is
    waited for (at most NEWSLETTER_LEASE_SECONDS); its outcome is kept without the address.
    """
    settings = ctx.settings
    address = normalise_email(email)
    if not yes:
        click.confirm(f"Erase everything held about {address}? This cannot be undone", abort=True)
    url = _database(settings)
    wait = settings.lease_seconds

    def waiting(count: int) -> None:
        noun = "message is" if count == 1 else "messages are"
        err_console.print(
            f"{count} {noun} being sent to {escape(address)}; waiting (at most {wait} s)…"
        )

    report = erase_person(
        url, settings.key(), address, settings.outbox, wait_seconds=wait, on_wait=waiting
    )
    audit.record_cli(settings, "person.erase", person_hmac(settings, address))
    what = "subscriber data deleted" if report.held else "no subscriber data was held"
    rows = sum(report.outcomes.values())
    console.print(
        f"erased {escape(address)}: {what}; {rows} outbox rows anonymised"
        f"{_erased_rows(report.outcomes)}; {report.files} outbox files removed; "
        "the address stays suppressed",
        soft_wrap=True,
    )
    if report.in_flight:
        console.print(_in_flight(report), soft_wrap=True)
    if not report.compacted:
        err_console.print(
            "warning: the database was busy and could not be compacted; old copies of the "
            "rows may stay in its free pages until it is (run the erase again when idle)"
        )


#: How the erase command names what became of a row.
ROW_OUTCOMES = {
    "sent": "sent",
    "uncertain": "possibly delivered (no reply from the server)",
    "failed": "refused by the server",
    "stopped": "stopped before sending",
    "unsent": "never sent",
    "sending": "still being sent",
}


def _erased_rows(outcomes: Counter[str]) -> str:
    """``: 1 sent, 2 stopped before sending`` (nothing for no rows)."""
    parts = [f"{outcomes[name]} {words}" for name, words in ROW_OUTCOMES.items() if outcomes[name]]
    return f": {', '.join(parts)}" if parts else ""


def _in_flight(report: ErasureReport) -> str:
    """The line about messages a sender held when the erasure began."""
    count = sum(report.in_flight.values())
    noun = "message" if count == 1 else "messages"
    line = (
        f"waited for {count} {noun} already being sent when the erasure began"
        f"{_erased_rows(report.in_flight)} ({report.waited_seconds:.1f} s)"
    )
    if report.in_flight["sending"]:
        line += (
            "; the mail server may still receive it: its outcome will be kept without the address"
        )
    return line


@subscribers_group.command("unsubscribe")
@click.argument("email")
@click.option("--list", "slug", default=None, help="Only from this list (default: from all).")
@pass_context
def unsubscribe_command(ctx: Context, email: str, slug: str | None) -> None:
    """Unsubscribe one person from one list or from all lists (recorded as consent)."""
    settings = ctx.settings
    with db.transaction(_database(settings)) as session:
        subscriber = find_subscriber(session, email)
        if subscriber is None:
            raise NotFoundError(f"no subscriber {normalise_email(email)}")
        list_id = resolve_lists(session, [slug])[0].id if slug else None
        changed = unsubscribe(session, settings.key(), subscriber.id, list_id, "command line")
        person = f"subscriber:{subscriber.id}"
    audit.record_cli(settings, "person.unsubscribe", person, list=slug or "*", changed=changed)
    scope = f"list {slug}" if slug else "all lists"
    state = "unsubscribed from" if changed else "was already unsubscribed from"
    console.print(f"{escape(subscriber.email)} {state} {scope}", soft_wrap=True)


@click.group("lists", invoke_without_command=True)
@click.pass_context
def lists_command(click_ctx: click.Context) -> None:
    """Show the lists with their active, unsubscribed, bounced and pending counts and last
    import; create, rename or archive one."""
    if click_ctx.invoked_subcommand is None:
        _show_lists(click_ctx.ensure_object(Context))


def _show_lists(ctx: Context) -> None:
    with db.transaction(_database(ctx.settings)) as session:
        summaries = list_summaries(session)
        latest = last_imports(session)
    if not summaries:
        console.print(
            "no lists yet: import one with `newsletter subscribers import FILE --list SLUG`"
        )
        return
    table = Table()
    table.add_column("list", no_wrap=True)  # the name commands are given: never cut
    table.add_column("name")
    for count in ("active", "unsubscribed", "bounced", "pending"):
        table.add_column(count, no_wrap=True)
    for summary in summaries:
        table.add_row(
            summary.slug,
            escape(summary.name) + (" (archived)" if summary.archived else ""),
            str(summary.active),
            str(summary.unsubscribed),
            str(summary.bounced),
            str(summary.pending),
        )
    console.print(table)
    # Below the table, one line per list: in a column it would squeeze the names away.
    for summary in summaries:
        last = latest.get(summary.slug)
        when = _last_import(last) if last else "never"
        console.print(f"{summary.slug}: last import {when}", soft_wrap=True)


def _local(moment: datetime) -> datetime:
    """A stored time in local time (SQLite hands back naive UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone()


def _last_import(last: LastImport) -> str:
    """``2026-12-01 09:30 by …, file.csv, sha256 1a2b3c4d…: 3 added, 1 updated, …``."""
    counts = ", ".join(
        f"{counts} {name}"
        for name, counts in last.counts.items()
        if name in ("added", "updated", "unchanged", "suppressed", "removed", "rejected")
    )
    return escape(
        f"{_local(last.at):%Y-%m-%d %H:%M} by {last.by or '?'}, {last.file_name}, "
        f"sha256 {last.sha256[:12]}…: {counts}"
    )


@lists_command.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Name of the list as editors and visitors see it.")
@click.option("--description", default="", help="What the list is for.")
@click.option("--public", is_flag=True, help="Offer the list on /subscribe.")
@pass_context
def lists_create_command(
    ctx: Context, slug: str, name: str, description: str, public: bool
) -> None:
    """Create an empty list."""
    with db.transaction(_database(ctx.settings)) as session:
        create_list(session, slug, name, description, public=public)
    audit.record_cli(ctx.settings, "list.create", f"list:{slug}", public=public)
    console.print(f"created list {slug}" + (" (public)" if public else ""))


@lists_command.command("rename")
@click.argument("slug")
@click.argument("name")
@pass_context
def lists_rename_command(ctx: Context, slug: str, name: str) -> None:
    """Give a list a new name (its slug stays: links in mail already sent name it)."""
    with db.transaction(_database(ctx.settings)) as session:
        found = find_list(session, slug)
        change_list(session, slug, name=name, description=found.description, public=found.public)
    audit.record_cli(ctx.settings, "list.change", f"list:{slug}", name=name)
    console.print(f"renamed list {slug}: {escape(name)}")


@lists_command.command("archive")
@click.argument("slug")
@click.option("--undo", is_flag=True, help="Bring an archived list back.")
@pass_context
def lists_archive_command(ctx: Context, slug: str, undo: bool) -> None:
    """Archive a list: not offered for new campaigns nor on /subscribe; members kept."""
    with db.transaction(_database(ctx.settings)) as session:
        archive_list(session, slug, archived=not undo)
    audit.record_cli(ctx.settings, "list.unarchive" if undo else "list.archive", f"list:{slug}")
    console.print(f"{'unarchived' if undo else 'archived'} list {slug}")


def register(group: click.Group) -> None:
    """Attach ``subscribers`` and ``lists`` to the main command group."""
    group.add_command(subscribers_group)
    group.add_command(lists_command)
