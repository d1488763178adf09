"""Commands about bounces that come back by mail: ``bounces fetch`` and ``bounces read``.

Thin: each calls ``newsletter.dispatch.bounces`` and prints what became of the messages.
"""

from __future__ import annotations

import click

from newsletter.cli.core import Context, console, pass_context


def register(group: click.Group) -> None:
    """Attach the ``bounces`` group."""
    group.add_command(bounces_group)


@click.group("bounces")
def bounces_group() -> None:
    """Read bounces and complaints (DSN, ARF) and suppress the addresses they name."""


@bounces_group.command("fetch")
@pass_context
def fetch_command(ctx: Context) -> None:
    """Read the IMAP mailbox NEWSLETTER_BOUNCE_IMAP_URL; file each message in .processed or .unmatched."""
    from newsletter.dispatch import bounces

    console.print(str(bounces.fetch(ctx.settings)))


@bounces_group.command("read")
@click.argument("source")
@pass_context
def read_command(ctx: Context, source: str) -> None:
    """Read SOURCE: one message, an mbox or a Maildir; - reads standard input (an MTA's pipe)."""
    from newsletter.dispatch import bounces

    console.print(str(bounces.read_file(ctx.settings, source)))
