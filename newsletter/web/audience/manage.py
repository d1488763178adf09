"""Keeping lists in the browser: create, rename, describe, mark public, archive; export members.

The work is ``newsletter.audience.lists`` (the same functions as ``newsletter lists …``)
and ``newsletter.audience.export``; these views read forms, show a message beside the
field it is about, and stream the export as it is read.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from newsletter import db
from newsletter.audience import export, segments
from newsletter.audience.lists import (
    archive_list,
    change_list,
    create_list,
    find_list,
    list_summaries,
)
from newsletter.errors import InputError, Message, NewsletterError, NotFoundError
from newsletter.settings import Settings
from newsletter.web import i18n
from newsletter.web.audience.lists import lists_page_with
from newsletter.web.auth import audited, editor_only
from newsletter.web.templating import page

EDIT_PAGE = "editor/lists/edit.html"
#: A saved segment's id that is not a number (only a crafted link has one).
CHOOSE_SEGMENT = Message("segment.choose", "segment: choose a saved segment")
NOTICES = ("created", "saved")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def read_list_form(form: FormData) -> dict[str, Any]:
    """A list's fields as the form gives them."""
    return {
        "slug": str(form.get("slug", "")).strip(),
        "name": str(form.get("name", "")).strip(),
        "description": str(form.get("description", "")).strip(),
        "public": form.get("public") == "1",
    }


def field_errors(exc: NewsletterError, request: Request) -> dict[str, str]:
    """The message of ``exc`` in the page's language, keyed by the field its English text
    names (``slug: …``), else ``form``."""
    field, sep, _rest = str(exc).partition(":")
    known = ("slug", "name", "description", "status", "segment")
    message = i18n.explain(exc, i18n.choose_language(request))
    return {field if sep and field in known else "form": message}


# Creating ------------------------------------------------------------------------------


def _create(settings: Settings, values: dict[str, Any]) -> None:
    with db.transaction(settings.database) as session:
        create_list(
            session,
            values["slug"],
            values["name"],
            values["description"],
            public=values["public"],
        )


@editor_only
async def create(request: Request) -> Response:
    """Create a list; the lists page again with the message beside the field when refused."""
    values = read_list_form(await request.form())
    try:
        await run_in_threadpool(_create, settings_of(request), values)
    except InputError as exc:
        return await lists_page_with(
            request, status_code=400, new_list=values, new_errors=field_errors(exc, request)
        )
    await audited(request, "list.create", f"list:{values['slug']}", public=values["public"])
    return RedirectResponse(f"/editor/lists/{values['slug']}/edit?created=1", status_code=303)


# One list's page -----------------------------------------------------------------------


def _list_context(settings: Settings, slug: str) -> dict[str, Any]:
    """The list, its counts, and the saved segments an export may use; 404 when unknown."""
    with db.transaction(settings.database) as session:
        try:
            found = find_list(session, slug)
        except NotFoundError:
            raise HTTPException(status_code=404) from None
        summary = next(s for s in list_summaries(session) if s.slug == slug)
        saved = [{"id": s.id, "name": s.name} for s in segments.saved(session)]
        values = {
            "slug": found.slug,
            "name": found.name,
            "description": found.description,
            "public": found.public,
        }
        return {"list": values, "summary": summary, "saved": saved}


async def _edit_page(request: Request, *, status_code: int = 200, **context: Any) -> Response:
    slug = request.path_params["slug"]
    values = await run_in_threadpool(_list_context, settings_of(request), slug)
    values.update(
        errors={},
        statuses=export.STATUSES,
        notice=next((k for k in NOTICES if request.query_params.get(k)), ""),
    )
    if "form" in context:
        values["list"] = {**values["list"], **context.pop("form")}
    values.update(context)
    return page(request, EDIT_PAGE, values, status_code=status_code)


@editor_only
async def edit_page(request: Request) -> Response:
    """One list: its name, description and visibility, archiving, and the export."""
    return await _edit_page(request)


def _change(settings: Settings, slug: str, values: dict[str, Any]) -> None:
    with db.transaction(settings.database) as session:
        change_list(
            session,
            slug,
            name=values["name"],
            description=values["description"],
            public=values["public"],
        )


@editor_only
async def save(request: Request) -> Response:
    """Rename, describe and mark the list public or not."""
    slug = request.path_params["slug"]
    values = read_list_form(await request.form())
    try:
        await run_in_threadpool(_change, settings_of(request), slug, values)
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    except InputError as exc:
        errors = field_errors(exc, request)
        return await _edit_page(request, status_code=400, form=values, errors=errors)
    await audited(
        request, "list.change", f"list:{slug}", name=values["name"], public=values["public"]
    )
    return RedirectResponse(f"/editor/lists/{slug}/edit?saved=1", status_code=303)


def _archive(settings: Settings, slug: str, archived: bool) -> None:
    with db.transaction(settings.database) as session:
        archive_list(session, slug, archived=archived)


@editor_only
async def archive(request: Request) -> Response:
    """Archive the list (``archived=1``) or bring it back (``archived=0``)."""
    slug = request.path_params["slug"]
    form = await request.form()
    archived = form.get("archived") == "1"
    try:
        await run_in_threadpool(_archive, settings_of(request), slug, archived)
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    await audited(request, "list.archive" if archived else "list.unarchive", f"list:{slug}")
    return RedirectResponse(f"/editor/lists/{slug}/edit?saved=1", status_code=303)


# Export --------------------------------------------------------------------------------


def _export_plan(
    settings: Settings, slug: str, status: str, segment_id: str
) -> tuple[int, segments.Definition, str]:
    """(list id, segment definition, file name stem); InputError naming a bad choice."""
    if status not in export.STATUSES:
        known = ", ".join(export.STATUSES)
        raise InputError(Message("export.status", f"status: expected one of {known}"))
    with db.transaction(settings.database) as session:
        list_id = find_list(session, slug).id
        if not segment_id:
            return list_id, {}, f"{slug}-{status}"
        if not segment_id.isdigit():
            raise InputError(CHOOSE_SEGMENT)
        definition = segments.parse_definition(segments.find(session, int(segment_id)).definition)
        return list_id, definition, f"{slug}-{status}-segment-{segment_id}"


@editor_only
async def export_members(request: Request) -> Response:
    """Download the list's members in a status (and a saved segment) as CSV or XLSX."""
    settings = settings_of(request)
    query = request.query_params
    kind = query.get("format", "csv")
    if kind not in MEDIA_TYPES:
        raise HTTPException(status_code=404)
    try:
        list_id, definition, stem = await run_in_threadpool(
            _export_plan,
            settings,
            request.path_params["slug"],
            query.get("status", "active"),
            query.get("segment", ""),
        )
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    except InputError as exc:
        return await _edit_page(request, status_code=400, errors=field_errors(exc, request))
    rows = export.member_rows(settings.database, list_id, query.get("status", "active"), definition)
    chunks = export.csv_chunks(rows) if kind == "csv" else export.xlsx_chunks(rows)
    await audited(request, "list.export", f"list:{request.path_params['slug']}", format=kind)
    headers = {
        "content-disposition": f'attachment; filename="{stem}.{kind}"',
        "cache-control": "no-store",
    }
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[kind], headers=headers)


# Saved segments ------------------------------------------------------------------------


def _delete_segment(settings: Settings, segment_id: int) -> None:
    with db.transaction(settings.database) as session:
        segments.delete(session, segment_id)


@editor_only
async def delete_segment(request: Request) -> Response:
    """Forget a saved segment; campaigns made with it keep their definition."""
    try:
        await run_in_threadpool(
            _delete_segment, settings_of(request), request.path_params["segment_id"]
        )
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    await audited(request, "segment.delete", f"segment:{request.path_params['segment_id']}")
    return RedirectResponse("/editor/lists#segments", status_code=303)


routes = [
    Route("/editor/lists/new", create, methods=["POST"]),
    Route("/editor/lists/{slug}/edit", edit_page, methods=["GET"]),
    Route("/editor/lists/{slug}/edit", save, methods=["POST"]),
    Route("/editor/lists/{slug}/archive", archive, methods=["POST"]),
    Route("/editor/lists/{slug}/export", export_members, methods=["GET"]),
    Route("/editor/segments/{segment_id:int}/delete", delete_segment, methods=["POST"]),
]
