"""The lists page, and importing a CSV or XLSX file into a list: dry run first, then confirm.

The upload's first answer is the dry run (``import_file(dry_run=True)``, as
``subscribers import --dry-run``); the file waits in the database (``uploads``) for the
confirmation, which imports it only when the list and the outcome are still what the dry
run showed (its fingerprint), else shows the dry run again. Errors of the file (type,
size, encoding, columns) are shown beside the file field, and nothing is imported.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter import db
from newsletter.audience import segments
from newsletter.audience.lists import (
    COMMAND_LINE,
    ImportReport,
    import_detail,
    import_file,
    last_imports,
    list_summaries,
)
from newsletter.errors import InputError, ListChangedError, StateError
from newsletter.settings import Settings
from newsletter.web import i18n
from newsletter.web.audience import uploads
from newsletter.web.auth import audited, editor_only
from newsletter.web.templating import page

LISTS_PAGE = "editor/lists/index.html"
DRY_RUN_PAGE = "editor/lists/dry_run.html"


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def _overview(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every list with its counts and its last import, and the saved segments, for the page."""
    with db.transaction(settings.database) as session:
        summaries = list_summaries(session)
        latest = last_imports(session)
        saved = [
            {"id": s.id, "name": s.name, "definition": s.definition}
            for s in segments.saved(session)
        ]
    rows = []
    for summary in summaries:
        last = latest.get(summary.slug)
        rows.append(
            {
                "summary": summary,
                "last": last,
                "by_command_line": last is not None and last.by == COMMAND_LINE,
                "when": last.at.astimezone().strftime("%Y-%m-%d %H:%M") if last else "",
            }
        )
    return rows, saved


async def lists_page_with(request: Request, *, status_code: int = 200, **context: Any) -> Response:
    """The lists page, with ``context`` (a form's values and errors) over its defaults."""
    lists, saved = await run_in_threadpool(_overview, settings_of(request))
    values: dict[str, Any] = {
        "lists": lists,
        "saved_segments": saved,
        "new_list": {"slug": "", "name": "", "description": "", "public": False},
        "new_errors": {},
        "choice": {"list": "", "new_slug": "", "new_name": "", "sync": False},
        "max_mb": uploads.MAX_UPLOAD_BYTES // (1024 * 1024),
        "imported": request.query_params.get("imported", ""),
    }
    values.update(context)
    return page(request, LISTS_PAGE, values, status_code=status_code)


@editor_only
async def lists_page(request: Request) -> Response:
    """Every list with active, unsubscribed, bounced and pending counts, and the upload form."""
    return await lists_page_with(request)


def read_choice(form: FormData) -> dict[str, Any]:
    """The upload form's choice of list, as given."""
    return {
        "list": str(form.get("list", "")).strip(),
        "new_slug": str(form.get("new_slug", "")).strip(),
        "new_name": str(form.get("new_name", "")).strip(),
        "sync": form.get("sync") == "1",
    }


def target_of(choice: dict[str, Any]) -> tuple[str, str]:
    """(slug, name) of the list to import into: the chosen one, or the new one typed."""
    if choice["list"]:
        return choice["list"], ""
    if not choice["new_slug"]:
        raise InputError(i18n.coded("upload.no_list"))
    return choice["new_slug"], choice["new_name"]


def describe(exc: InputError, file_name: str, lang: str) -> str:
    """The error of an import in one line in ``lang``, naming the uploaded file (not the
    temporary one) and the line."""
    reason = i18n.explain(exc.coded, lang) if exc.coded else exc.reason
    if exc.path is None:
        return reason
    where = file_name
    if exc.line is not None:
        where = i18n.translate("error.where_line", lang).format(file=file_name, line=exc.line)
    return f"{where}: {reason}"


def _dry_run(
    settings: Settings, upload: uploads.Upload, slug: str, name: str, sync: bool
) -> ImportReport:
    with uploads.on_disk(upload) as path:
        return import_file(
            settings.database, settings.key(), path, slug, sync=sync, dry_run=True, name=name
        )


@editor_only
async def upload(request: Request) -> Response:
    """Read the upload, run the import dry, keep the file, and show what it would do."""
    settings = settings_of(request)
    try:
        form, sent = await uploads.read_form(request)
    except uploads.UploadError as exc:
        message = i18n.explain(exc, i18n.choose_language(request))
        return await lists_page_with(request, status_code=400, file_error=message)
    choice = read_choice(form)
    try:
        slug, name = target_of(choice)
        report = await run_in_threadpool(_dry_run, settings, sent, slug, name, choice["sync"])
    except InputError as exc:
        # A file's error names it (it has a path); a bad list slug or name does not.
        field = "file_error" if exc.path is not None else "list_error"
        message = describe(exc, sent.file_name, i18n.choose_language(request))
        return await lists_page_with(request, status_code=400, choice=choice, **{field: message})
    wanted = {"slug": slug, "name": name, "sync": choice["sync"]}
    token = await run_in_threadpool(
        uploads.keep,
        settings.database,
        request.scope["editor_id"],
        sent,
        report.sha256,
        wanted,
        report.fingerprint(),
    )
    return _dry_run_page(request, report, sent.file_name, token)


def _dry_run_page(
    request: Request, report: ImportReport, file_name: str, token: str, **context: Any
) -> Response:
    values = {"report": report, "file_name": file_name, "token": token, **context}
    status = 409 if context.get("changed") else 200
    return page(request, DRY_RUN_PAGE, values, status_code=status)


def _commit(settings: Settings, pending: uploads.Pending, by: str) -> ImportReport:
    with uploads.on_disk(pending.upload) as path:
        return import_file(
            settings.database,
            settings.key(),
            path,
            pending.slug,
            sync=pending.sync,
            name=pending.name,
            by=by,
            expected=pending.fingerprint,
            before_commit=lambda session, _report: uploads.take(session, pending.token),
        )


@editor_only
async def confirm(request: Request) -> Response:
    """Import the kept upload, all or nothing, if the list is as the dry run found it."""
    settings = settings_of(request)
    form = await request.form()
    token = str(form.get("token", ""))
    pending = await run_in_threadpool(
        uploads.find, settings.database, request.scope["editor_id"], token
    )
    if pending is None:
        return await lists_page_with(request, status_code=410, gone=True)
    try:
        report = await run_in_threadpool(_commit, settings, pending, request.scope["editor_email"])
    except ListChangedError as exc:
        fresh: ImportReport = exc.report  # type: ignore[assignment]
        await run_in_threadpool(uploads.refresh, settings.database, token, fresh.fingerprint())
        return _dry_run_page(request, fresh, pending.upload.file_name, token, changed=True)
    except StateError:
        return await lists_page_with(request, status_code=410, gone=True)
    await audited(request, "list.import", f"list:{report.slug}", **import_detail(report))
    return RedirectResponse(f"/editor/lists?imported={report.slug}", status_code=303)


routes = [
    Route("/editor/lists", lists_page, methods=["GET"]),
    Route("/editor/lists/upload", upload, methods=["POST"]),
    Route("/editor/lists/upload/confirm", confirm, methods=["POST"]),
]
