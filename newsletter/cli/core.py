"""The ``newsletter`` command line.

Commands are thin: they parse arguments, call plain functions of the domain modules and
print. Errors of the package (``NewsletterError``) are shown in exactly one place,
``main()``, as one line on stderr with the error's exit code; nothing else prints a
traceback for bad input. So are errors of the database itself (connection lost, disk
full, lock timeout), translated by ``newsletter.db.database_error``.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from newsletter.errors import NewsletterError
from newsletter.settings import Settings, env_example

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class Context:
    """Per-invocation state: the settings, loaded once and lazily."""

    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    def database_if_loaded(self) -> str | None:
        """The database URL in force, if a command has read the settings."""
        return self._settings.database if self._settings is not None else None


pass_context = click.make_pass_decorator(Context, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="newsletter")
def cli() -> None:
    """Compose and send e-newsletters: Markdown issues, sponsor credits, curated lists.

    Settings come from NEWSLETTER_* environment variables or a .env file; `newsletter
    config` shows them. With no servers configured everything runs on this machine:
    a SQLite file and an outbox folder under var/.
    """


@cli.command("config")
@click.option("--example", is_flag=True, help="Print a commented .env.example with every default.")
@pass_context
def config_command(ctx: Context, example: bool) -> None:
    """Show the settings in force (secrets and passwords hidden)."""
    if example:
        click.echo(env_example(), nl=False)
        return
    for name, value in ctx.settings.describe().items():
        console.print(f"{name}={value}")


@cli.command("migrate")
@pass_context
def migrate_command(ctx: Context) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    from newsletter import db

    db.migrate(ctx.settings.database)
    console.print(
        f"database is up to date: {ctx.settings.describe()['NEWSLETTER_DATABASE_URL'] or ctx.settings.database}"
    )


COMMAND_MODULES = ("compose", "audience", "dispatch", "bounces", "web", "demo", "audit")


def register(group: click.Group) -> None:
    """Attach the commands of each ``newsletter.cli.<area>`` module that exists."""
    import importlib

    for area in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"newsletter.cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name != f"newsletter.cli.{area}":
                raise
            continue
        module.register(group)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: run a command, show package errors as one line."""
    register(cli)
    context = Context()
    try:
        try:
            result = cli.main(args=argv, prog_name="newsletter", standalone_mode=False, obj=context)
        except SQLAlchemyError as exc:
            from newsletter.db import database_error

            mapped = database_error(exc, context.database_if_loaded())
            if mapped is None:
                raise
            raise mapped from exc
    except NewsletterError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return result if isinstance(result, int) else 0
