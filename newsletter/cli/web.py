"""Commands of the web area: ``newsletter web`` serves the app, ``newsletter users`` manages editors."""

from __future__ import annotations

import click

from newsletter.cli.core import Context, console, pass_context


@click.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--reload-watch/--no-reload-watch",
    default=True,
    show_default=True,
    help="Watch issues, templates and the sponsor registry and refresh open previews.",
)
@pass_context
def web_command(ctx: Context, host: str, port: int, reload_watch: bool) -> None:
    """Serve the editors' preview and dashboard and the public subscriber pages."""
    import gc

    from newsletter import db
    from newsletter.web import create_app
    from newsletter.web.server import web_server

    settings = ctx.settings
    db.migrate(settings.database)
    app = create_app(settings, watch=reload_watch)
    # Everything loaded so far (modules, the schema, templates) lives as long as the
    # process: keep it out of the collector's full passes. Each scanned it all and held
    # every request for 100–200 ms, several times a minute under the one-click load of
    # benchmarks/unsubscribe.py (on a busy machine).
    gc.collect()
    gc.freeze()
    console.print(f"Serving on http://{host}:{port}/ (public address {settings.base_url})")
    try:
        web_server(app, host, port).run()
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly on Ctrl-C, then raises the signal again for us.
        console.print("Stopped.")


@click.group("users")
def users_group() -> None:
    """Editor accounts of the web app."""


def ask_password(label: str) -> str:
    """Prompt for a password twice, hidden; never taken from the command line (shell history)."""
    return str(click.prompt(label, hide_input=True, confirmation_prompt=True))


ROLE_HELP = "author, sender, list_keeper or admin; repeat it for several"


@users_group.command("add")
@click.argument("email")
@click.option("--role", "roles", multiple=True, help=f"A role to give: {ROLE_HELP} (default: all).")
@pass_context
def users_add(ctx: Context, email: str, roles: tuple[str, ...]) -> None:
    """Create an editor account (the password is asked for twice and stored as an argon2 hash)."""
    from newsletter import audit, db, users

    users.check_roles(roles)  # before asking for a password
    password = ask_password("Password")
    db.migrate(ctx.settings.database)
    with db.transaction(ctx.settings.database) as session:
        user = users.create_user(session, email, password, list(roles) or None)
        address = user.email
        granted = sorted(users.roles_of(session, user.id))
    audit.record_cli(ctx.settings, "account.create", f"editor:{address}", roles=granted)
    console.print(f"Editor {address} added, roles: {', '.join(granted)}.")


@users_group.command("roles")
@click.argument("email")
@click.option("--add", "added", multiple=True, help=f"A role to give: {ROLE_HELP}.")
@click.option("--remove", "removed", multiple=True, help=f"A role to take away: {ROLE_HELP}.")
@pass_context
def users_roles(ctx: Context, email: str, added: tuple[str, ...], removed: tuple[str, ...]) -> None:
    """Show an editor's roles, or give and take some (their sessions see it at once)."""
    from newsletter import audit, db, users

    with db.transaction(ctx.settings.database) as session:
        address = users.find_editor(session, email).email
        now = users.change_roles(session, address, added, removed)
    if added or removed:
        audit.record_cli(ctx.settings, "account.roles", f"editor:{address}", roles=now)
    console.print(f"Editor {address}: {', '.join(now) or 'no roles'}.")


@users_group.command("password")
@click.argument("email")
@pass_context
def users_password(ctx: Context, email: str) -> None:
    """Set a new password for an editor (asked for twice)."""
    from newsletter import audit, db, users

    password = ask_password("New password")
    with db.transaction(ctx.settings.database) as session:
        address = users.set_password(session, email, password).email
    audit.record_cli(ctx.settings, "account.password", f"editor:{address}")
    console.print(f"Password of {email.strip().lower()} changed; its sessions ended.")


@users_group.command("disable")
@click.argument("email")
@pass_context
def users_disable(ctx: Context, email: str) -> None:
    """Stop an editor from logging in and end every session they have open."""
    from newsletter import audit, db, users

    with db.transaction(ctx.settings.database) as session:
        address = users.disable(session, email).email
    audit.record_cli(ctx.settings, "account.disable", f"editor:{address}")
    console.print(f"Editor {address} disabled; their sessions ended.")


@users_group.command("enable")
@click.argument("email")
@pass_context
def users_enable(ctx: Context, email: str) -> None:
    """Let a disabled editor log in again."""
    from newsletter import audit, db, users

    with db.transaction(ctx.settings.database) as session:
        address = users.enable(session, email).email
    audit.record_cli(ctx.settings, "account.enable", f"editor:{address}")
    console.print(f"Editor {address} enabled.")


@users_group.command("unlock")
@click.argument("email")
@pass_context
def users_unlock(ctx: Context, email: str) -> None:
    """Forget an editor's recent failed logins, from every client, so they may try at once."""
    from newsletter import audit, db, users

    with db.transaction(ctx.settings.database) as session:
        forgotten = users.unlock(session, email)
        address = users.find_editor(session, email).email
    audit.record_cli(ctx.settings, "account.unlock", f"editor:{address}", forgotten=forgotten)
    console.print(f"Forgot {forgotten} failed logins of {address}.")


def register(group: click.Group) -> None:
    """Attach ``web`` and ``users`` to the command line."""
    group.add_command(web_command)
    group.add_command(users_group)
