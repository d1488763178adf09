"""Commands of the audit log: ``newsletter audit verify`` checks its hash chain."""

from __future__ import annotations

import click

from newsletter.cli.core import Context, console, err_console, pass_context


@click.group("audit")
def audit_group() -> None:
    """The append-only audit log of who did what."""


@audit_group.command("verify")
@pass_context
def verify_command(ctx: Context) -> int:
    """Check every entry's hash and link; name the first entry altered or removed (exit 1)."""
    from newsletter import audit

    verdict = audit.verify(ctx.settings.database)
    if verdict.problem:
        err_console.print(verdict.line(), soft_wrap=True, markup=False)
        return 1
    console.print(verdict.line(), soft_wrap=True)
    return 0


def register(group: click.Group) -> None:
    """Attach ``audit`` to the command line."""
    group.add_command(audit_group)
