"""Who may open which editor page: one table, enforced around every editor route.

``ROUTES`` maps each editor route (method and path pattern, as written in its module)
to the permission it needs; ``GRANTED_BY`` says which roles hold each permission.
``auth.guard_routes`` wraps every route under ``/editor`` of the app in ``auth.Guarded``
when the app is built, so a page needs no decorator of its own to be protected, and a route
the table does not name is refused to everyone but admins: a new page is never open
by mistake. ``tests/web/test_permissions.py`` lists every unclassified route by name.

A refused editor gets a 403 page in their language; someone not logged in is sent to
the login form (scripts get a 401), as ``auth.editor_only`` does.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Mount, Route

from newsletter.users import ADMIN, AUTHOR, LIST_KEEPER, ROLES, SENDER

EDITOR_AREA = "/editor"

# Permissions
OPEN = "open"  # no login: the login form itself
VIEW = "view"  # read issues, previews and campaign dashboards
WRITE = "write"  # write, save, restore issues; send a test copy
REQUEST = "request"  # ask for a campaign (choose lists, confirm); refresh its content
APPROVE = "approve"  # approve someone else's campaign
SEND = "send"  # start, pause, resume, cancel; the per-recipient report
LISTS = "lists"  # lists, imports, people, GDPR actions
ACCOUNTS = "accounts"  # editor accounts and roles; the audit log

GRANTED_BY: dict[str, frozenset[str]] = {
    OPEN: frozenset(ROLES),
    VIEW: frozenset(ROLES),
    WRITE: frozenset({AUTHOR}),
    REQUEST: frozenset({AUTHOR, SENDER}),
    APPROVE: frozenset({AUTHOR, SENDER}),
    SEND: frozenset({SENDER}),
    LISTS: frozenset({LIST_KEEPER}),
    ACCOUNTS: frozenset({ADMIN}),
}

# (method, path pattern) → permission. HEAD is looked up as GET.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/editor/login"): OPEN,
    ("POST", "/editor/login"): OPEN,
    ("POST", "/editor/logout"): OPEN,
    # issues (editor.py, writing.py, history.py)
    ("GET", "/editor/"): VIEW,
    ("GET", "/editor/issues/{slug}"): VIEW,
    ("GET", "/editor/issues/{slug}/render"): VIEW,
    ("GET", "/editor/issues/{slug}/frame"): VIEW,
    ("GET", "/editor/issues/{slug}/events"): VIEW,
    ("GET", "/editor/issues/new"): WRITE,
    ("POST", "/editor/issues/new"): WRITE,
    ("GET", "/editor/issues/{slug}/edit"): WRITE,
    ("POST", "/editor/issues/{slug}/edit"): WRITE,
    ("GET", "/editor/issues/{slug}/history"): VIEW,
    ("POST", "/editor/issues/{slug}/history/{revision_id:int}/restore"): WRITE,
    ("POST", "/editor/issues/{slug}/live"): WRITE,
    ("GET", "/editor/issues/{slug}/live-frame"): WRITE,
    ("POST", "/editor/issues/{slug}/draft"): WRITE,
    ("POST", "/editor/issues/{slug}/draft/discard"): WRITE,
    # the image library and the sponsor registry (media.py, sponsors.py)
    ("GET", "/editor/media"): VIEW,
    ("POST", "/editor/media"): WRITE,
    ("POST", "/editor/media/{sha256}/delete"): WRITE,
    ("GET", "/editor/sponsors"): VIEW,
    ("POST", "/editor/sponsors/tier"): WRITE,
    ("POST", "/editor/sponsors/sponsor"): WRITE,
    ("POST", "/editor/sponsors/move"): WRITE,
    ("POST", "/editor/sponsors/delete"): WRITE,
    # sending (campaigns.py, approvals.py)
    ("GET", "/editor/issues/{slug}/test"): WRITE,
    ("POST", "/editor/issues/{slug}/test"): WRITE,
    ("GET", "/editor/issues/{slug}/campaign"): REQUEST,
    ("POST", "/editor/issues/{slug}/campaign"): REQUEST,
    # Without approvals this also starts it: the page asks for SEND then (campaigns.py).
    ("POST", "/editor/issues/{slug}/campaign/start"): REQUEST,
    ("GET", "/editor/campaigns"): VIEW,
    ("GET", "/editor/campaigns/{campaign_id:int}"): VIEW,
    ("GET", "/editor/campaigns/{campaign_id:int}/progress"): VIEW,
    ("GET", "/editor/campaigns/{campaign_id:int}/report.csv"): SEND,
    ("GET", "/editor/campaigns/{campaign_id:int}/clicks.csv"): VIEW,
    ("GET", "/editor/reports/sponsors"): VIEW,
    ("GET", "/editor/reports/sponsors.csv"): VIEW,
    ("GET", "/editor/campaigns/{campaign_id:int}/approve"): APPROVE,
    ("POST", "/editor/campaigns/{campaign_id:int}/approve"): APPROVE,
    ("POST", "/editor/campaigns/{campaign_id:int}/refresh"): REQUEST,
    ("POST", "/editor/campaigns/{campaign_id:int}/start"): SEND,
    ("POST", "/editor/campaigns/{campaign_id:int}/{action:str}"): SEND,
    # audience (web/audience/)
    ("GET", "/editor/lists"): LISTS,
    ("POST", "/editor/lists/upload"): LISTS,
    ("POST", "/editor/lists/upload/confirm"): LISTS,
    ("POST", "/editor/lists/new"): LISTS,
    ("GET", "/editor/lists/{slug}/edit"): LISTS,
    ("POST", "/editor/lists/{slug}/edit"): LISTS,
    ("POST", "/editor/lists/{slug}/archive"): LISTS,
    ("GET", "/editor/lists/{slug}/export"): LISTS,
    ("POST", "/editor/segments/{segment_id:int}/delete"): LISTS,
    # the campaign form's live recipient count (campaigns.py)
    ("GET", "/editor/segments/count"): REQUEST,
    ("GET", "/editor/people"): LISTS,
    ("GET", "/editor/people/new"): LISTS,
    ("POST", "/editor/people/new"): LISTS,
    ("GET", "/editor/people/{subscriber_id:int}"): LISTS,
    ("POST", "/editor/people/{subscriber_id:int}/unsubscribe"): LISTS,
    ("POST", "/editor/people/{subscriber_id:int}/edit"): LISTS,
    ("POST", "/editor/people/{subscriber_id:int}/resubscribe"): LISTS,
    ("POST", "/editor/people/{subscriber_id:int}/reactivate"): LISTS,
    ("GET", "/editor/people/{subscriber_id:int}/export"): LISTS,
    ("POST", "/editor/people/{subscriber_id:int}/erase"): LISTS,
    # accounts and the audit log (admin.py)
    ("GET", "/editor/admin/users"): ACCOUNTS,
    ("POST", "/editor/admin/users"): ACCOUNTS,
    ("POST", "/editor/admin/users/{user_id:int}"): ACCOUNTS,
    ("GET", "/editor/audit"): ACCOUNTS,
    ("GET", "/editor/audit.csv"): ACCOUNTS,
}


def required(method: str, path: str) -> str | None:
    """The permission a route needs; None when the table does not name it (admins only)."""
    return ROUTES.get(("GET" if method == "HEAD" else method, path))


def allows(roles: Iterable[str], permission: str | None) -> bool:
    """True when an editor holding ``roles`` has ``permission`` (None: admins only)."""
    held = set(roles)
    if permission is None:
        return ADMIN in held
    return bool(held & GRANTED_BY[permission])


def editor_routes(routes: Iterable[BaseRoute], prefix: str = "") -> list[tuple[str, str, Route]]:
    """Every (method, path, route) under ``/editor``; a route without methods counts as GET."""
    found: list[tuple[str, str, Route]] = []
    for route in routes:
        if isinstance(route, Mount):
            found += editor_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route) and (prefix + route.path).startswith(EDITOR_AREA):
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                found.append((method, prefix + route.path, route))
    return found
