"""``newsletter demo``: the whole job end to end, on whatever settings are in force.

On the embedded defaults it needs no server: the sample lists go into the SQLite file
under ``var/``, the sample issue is rendered into ``out/``, checked, and sent to every
sample list, each message written as an ``.eml`` file under ``var/outbox/``. It runs the
same commands an editor runs, in the order an editor runs them.
"""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.audience import import_command
from newsletter.cli.compose import lint_command, render_command
from newsletter.cli.core import console, migrate_command
from newsletter.cli.dispatch import send_command
from newsletter.errors import InputError, IssueError

SAMPLE_ISSUE = Path("issues/2026-12-remejai-ir-partneriai.md")
SAMPLE_LISTS = Path("subscribers")


def register(group: click.Group) -> None:
    """Attach ``demo`` to the command group."""
    group.add_command(demo_command)


def _step(title: str) -> None:
    console.rule(f"[bold]{title}")


@click.command("demo")
@click.option(
    "--issue",
    type=click.Path(path_type=Path, dir_okay=False),
    default=SAMPLE_ISSUE,
    show_default=True,
    help="The issue to render, check and send.",
)
@click.option(
    "--lists-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=SAMPLE_LISTS,
    show_default=True,
    help="Folder of list files; each FILE.csv becomes the list FILE.",
)
@click.pass_context
def demo_command(click_ctx: click.Context, issue: Path, lists_dir: Path) -> None:
    """Run the whole job: import the lists, render and check the issue, send it to every list.

    With no servers configured the messages are written to var/outbox/ as .eml files.
    Running it again imports nothing new and sends the issue only to people who have not
    had it yet (nobody, unless a list file gained people).
    """
    files = sorted(lists_dir.glob("*.csv"))
    if not files:
        raise InputError(f"{lists_dir}: no list files (*.csv) to import")
    _step("1. Duomenų bazė / Database")
    click_ctx.invoke(migrate_command)
    _step("2. Sąrašai / Subscriber lists")
    for path in files:
        click_ctx.invoke(import_command, file=path, slug=path.stem)
    _step("3. Numeris / Issue")
    click_ctx.invoke(render_command, issues=(issue,))
    if click_ctx.invoke(lint_command, issues=(issue,)):
        raise IssueError("the issue has lint errors; nothing was sent", path=issue)
    _step("4. Siuntimas / Sending")
    slugs = tuple(path.stem for path in files)
    click_ctx.invoke(send_command, issue=issue, slugs=slugs, only_new=True)
