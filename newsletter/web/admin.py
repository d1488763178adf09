"""Admin pages: editor accounts (invite, roles, disable, enable) and the audit log.

An invited editor gets the password the admin typed, or one generated and shown once on
the page, to pass on in person (there is no mail to editors). Disabling ends every
session of the account at once (``users.disable``). An admin cannot disable themselves
or take the last admin's role away: nobody could manage accounts then.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter import audit, db, users
from newsletter.errors import InputError, NewsletterError, StateError
from newsletter.models import User
from newsletter.settings import Settings
from newsletter.web.auth import audited, editor_only
from newsletter.web.templating import page

USERS_PAGE = "editor/admin/users.html"
AUDIT_PAGE = "editor/admin/audit.html"
AUDIT_CSV_LIMIT = 100_000


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def _editors(settings: Settings) -> list[dict[str, object]]:
    with db.transaction(settings.database) as session:
        return [
            {"id": user.id, "email": user.email, "roles": roles, "disabled": bool(user.disabled_at)}
            for user, roles in users.all_editors(session)
        ]


async def _users_page(request: Request, status_code: int = 200, **context: object) -> Response:
    editors = await run_in_threadpool(_editors, settings_of(request))
    values = {"editors": editors, "roles": users.ROLES, **context}
    return page(request, USERS_PAGE, values, status_code=status_code)


@editor_only
async def users_page(request: Request) -> Response:
    """Every editor account, its roles, and the invite form."""
    return await _users_page(request)


def _invite(settings: Settings, email: str, password: str, roles: list[str]) -> str:
    if not roles:
        raise InputError("roles: choose at least one role")
    with db.transaction(settings.database) as session:
        return users.create_user(session, email, password, roles).email


@editor_only
async def invite(request: Request) -> Response:
    """Create an account with the roles chosen; show a generated password once."""
    form = await request.form()
    email = str(form.get("email", ""))
    typed = str(form.get("password", ""))
    password = typed or secrets.token_urlsafe(12)
    roles = [str(role) for role in form.getlist("role")]
    try:
        address = await run_in_threadpool(_invite, settings_of(request), email, password, roles)
    except NewsletterError as exc:
        return await _users_page(request, 400, error=str(exc), typed_email=email)
    await audited(request, "account.create", f"editor:{address}", roles=roles)
    shown = "" if typed else password
    return await _users_page(request, created=address, password=shown)


def _change(settings: Settings, me: int, user_id: int, form: FormData) -> tuple[str, str, dict]:
    """Apply one change to an account; return (action, address, detail) for the audit log."""
    action = str(form.get("action", ""))
    with db.transaction(settings.database) as session:
        user = session.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404)
        if action == "roles":
            wanted = set(users.check_roles(str(role) for role in form.getlist("role")))
            held = users.roles_of(session, user.id)
            if user.id == me and users.ADMIN not in wanted:
                raise StateError("you cannot take your own admin role away")
            now = users.change_roles(session, user.email, wanted - held, held - wanted)
            return "account.roles", user.email, {"roles": now}
        if action in ("disable", "enable"):
            if action == "disable" and user.id == me:
                raise StateError("you cannot disable your own account")
            if action == "disable" and users.ADMIN in users.roles_of(session, user.id):
                users.refuse_last_admin(session, user.id)
            (users.disable if action == "disable" else users.enable)(session, user.email)
            return f"account.{action}", user.email, {}
    raise HTTPException(status_code=404)


@editor_only
async def change(request: Request) -> Response:
    """Change an account's roles, or disable or enable it."""
    form = await request.form()
    settings = settings_of(request)
    me, user_id = request.scope["editor_id"], request.path_params["user_id"]
    try:
        action, address, detail = await run_in_threadpool(_change, settings, me, user_id, form)
    except NewsletterError as exc:
        return await _users_page(request, 409, error=str(exc))
    await audited(request, action, f"editor:{address}", **detail)
    return RedirectResponse("/editor/admin/users", status_code=303)


# The audit log -------------------------------------------------------------------------


def read_filters(request: Request) -> audit.Filters:
    """The page's filters from its query; a malformed date is ignored (shown as given)."""
    query = request.query_params
    return audit.Filters(
        actor=query.get("actor", "").strip(),
        action=query.get("action", "").strip(),
        obj=query.get("object", "").strip(),
        since=_day(query.get("since", "")),
        until=_day(query.get("until", ""), plus=timedelta(days=1)),
    )


def _day(text: str, plus: timedelta = timedelta(0)) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").astimezone() + plus
    except ValueError:
        return None


@editor_only
async def audit_page(request: Request) -> Response:
    """The newest audit entries that match the filters."""
    url = settings_of(request).database
    rows = await run_in_threadpool(audit.entries, url, read_filters(request))
    context = {
        "rows": rows,
        "actions": await run_in_threadpool(audit.actions, url),
        "query": dict(request.query_params),
        "query_string": request.url.query,
    }
    return page(request, AUDIT_PAGE, context)


@editor_only
async def audit_csv(request: Request) -> Response:
    """The matching entries as CSV, safe to open in a spreadsheet."""
    url = settings_of(request).database
    rows = await run_in_threadpool(audit.entries, url, read_filters(request), AUDIT_CSV_LIMIT)
    await audited(request, "audit.export", "audit", entries=len(rows))
    return Response(
        audit.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": 'attachment; filename="audit.csv"',
            "cache-control": "no-store",
        },
    )


routes = [
    Route("/editor/admin/users", users_page, methods=["GET"]),
    Route("/editor/admin/users", invite, methods=["POST"]),
    Route("/editor/admin/users/{user_id:int}", change, methods=["POST"]),
    Route("/editor/audit", audit_page, methods=["GET"]),
    Route("/editor/audit.csv", audit_csv, methods=["GET"]),
]
