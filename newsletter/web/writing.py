"""Editor pages that write issues: a new issue from a form, and editing one beside its preview.

The file operations (names, atomic writes, the concurrency guard) are in ``issue_files``;
this module reads forms and shows results. A text that does not compile is still saved (a
draft), with the error beside the editor; the test-send and campaign pages refuse it,
since they compile the file first (``campaigns.sendable``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter.compose import sponsors as sponsor_registry
from newsletter.compose.lint import SUBJECT_MAX, SUBJECT_MIN
from newsletter.compose.strings import LANGUAGES
from newsletter.errors import IssueError, NotFoundError
from newsletter.web import drafts, i18n, issue_files, live, revisions
from newsletter.web.auth import audited, editor_only
from newsletter.web.editor import hub_of, picker_people, settings_of, state_or_404
from newsletter.web.preview import ISSUE_SUFFIX, SLUG
from newsletter.web.templating import page

TEXT_MAX_BYTES = issue_files.TEXT_MAX_BYTES
_CONTROL = "".join(chr(code) for code in (*range(0, 9), *range(11, 32), 127))


@dataclass
class NewIssueForm:
    """The fields of the new-issue form as typed, and an error message per bad field."""

    subject: str = ""
    preheader: str = ""
    date: str = ""
    lang: str = "lt"
    sponsors: list[str] | None = None
    body: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def _message(request: Request, key: str, **values: object) -> str:
    return i18n.translate(key, i18n.choose_language(request)).format(**values)


def _tiers(request: Request) -> tuple[list[dict[str, object]], str]:
    """The registry's tiers for the checkboxes, and the registry's error if it has one."""
    try:
        registry = sponsor_registry.load_registry(settings_of(request).sponsors_file)
    except IssueError as exc:
        return [], str(exc)
    tiers = [{"id": tier.id, "default": tier.default} for tier in registry.tiers]
    return tiers, ""


def read_new_form(request: Request, form: FormData) -> NewIssueForm:
    """The submitted fields, with a message for each that the issue file would refuse."""
    typed = NewIssueForm(
        subject=" ".join(str(form.get("subject", "")).split()),
        preheader=" ".join(str(form.get("preheader", "")).split()),
        date=str(form.get("date", "")).strip(),
        lang=str(form.get("lang", "")),
        sponsors=[str(value) for value in form.getlist("sponsor")],
        body=issue_files.normalise(str(form.get("body", ""))).strip("\n"),
    )
    errors = typed.errors
    if not SUBJECT_MIN <= len(typed.subject) <= SUBJECT_MAX:
        errors["subject"] = _message(
            request, "write.subject_length", low=SUBJECT_MIN, high=SUBJECT_MAX, n=len(typed.subject)
        )
    for name in ("subject", "preheader"):
        if any(char in _CONTROL for char in getattr(typed, name)):
            errors[name] = _message(request, "write.control")
    try:
        dt.date.fromisoformat(typed.date)
    except ValueError:
        errors["date"] = _message(request, "write.date_error")
    if typed.lang not in LANGUAGES:
        errors["lang"] = _message(request, "write.lang_error")
    tiers, _problem = _tiers(request)
    known = {str(tier["id"]) for tier in tiers}
    if not known:
        typed.sponsors = None  # no registry to choose from: the issue names no tiers
    elif any(item not in known for item in typed.sponsors or []):
        errors["sponsors"] = _message(request, "write.sponsors_error")
    if not typed.body.strip():
        errors["body"] = _message(request, "write.body_error")
    elif len(typed.body.encode("utf-8")) > TEXT_MAX_BYTES:
        errors["body"] = _message(request, "write.too_long", limit=TEXT_MAX_BYTES // 1024)
    return typed


def _new_page(request: Request, typed: NewIssueForm, status_code: int = 200) -> Response:
    tiers, problem = _tiers(request)
    if typed.sponsors is None:
        typed.sponsors = [str(tier["id"]) for tier in tiers if tier["default"]]
    context = {"form": typed, "tiers": tiers, "registry_error": problem, "languages": LANGUAGES}
    return page(request, "editor/new.html", context, status_code=status_code)


@editor_only
async def new_form(request: Request) -> Response:
    """The empty new-issue form, dated today."""
    return _new_page(request, NewIssueForm(date=dt.date.today().isoformat()))


@editor_only
async def new_issue(request: Request) -> Response:
    """Create ``issues/<date>-<subject words>.md`` from the form; open it in the editor."""
    typed = read_new_form(request, await request.form())
    if typed.errors:
        return _new_page(request, typed, status_code=400)
    date = dt.date.fromisoformat(typed.date)
    text = issue_files.front_matter(
        typed.subject, typed.preheader, date, typed.lang, typed.sponsors
    )
    text += issue_files.normalise(typed.body)
    settings = settings_of(request)
    slug = issue_files.base_slug(typed.subject, date)
    path = await run_in_threadpool(issue_files.create, settings.issues_dir, slug, text)
    author = request.scope["editor_email"]
    await run_in_threadpool(revisions.record, settings.database, path.stem, text, author)
    await audited(request, "issue.create", f"issue:{path.stem}", sha256=issue_files.digest(text))
    return RedirectResponse(f"/editor/issues/{path.stem}/edit", status_code=303)


# Editing -------------------------------------------------------------------------------


async def _edit_page(
    request: Request,
    text: str,
    loaded: str,
    *,
    notice: str = "",
    field_error: str = "",
    draft: drafts.Draft | None = None,
) -> Response:
    state = await state_or_404(request)
    context = {
        "draft": draft,
        "slug": state.slug,
        "subject": state.compiled.subject if state.compiled else "",
        "version": state.render_version,
        "people": await run_in_threadpool(picker_people, settings_of(request).database),
        "watching": hub_of(request).watching,
        "text": text,
        "loaded": loaded,
        "compile_error": state.error,
        "notice": notice,
        "field_error": field_error,
    }
    return page(request, "editor/edit.html", context, status_code=400 if field_error else 200)


@editor_only
async def edit_page(request: Request) -> Response:
    """The issue's text in a textarea beside its preview; an autosaved draft that differs
    from the file is offered, and ``?draft=restore`` loads it (guarded by the version it
    was edited from, so a file changed since then shows the conflict on save)."""
    state = await state_or_404(request)
    text = await run_in_threadpool(issue_files.read_text, hub_of(request).issue_path(state.slug))
    notice = "write.saved" if request.query_params.get("saved") else ""
    url, editor = settings_of(request).database, request.scope["editor_email"]
    draft = await run_in_threadpool(drafts.find, url, state.slug, editor)
    if draft is None or draft.text == text:
        return await _edit_page(request, text, issue_files.digest(text), notice=notice)
    if request.query_params.get("draft") == "restore":
        return await _edit_page(request, draft.text, draft.loaded, notice="write.draft_restored")
    return await _edit_page(request, text, issue_files.digest(text), notice=notice, draft=draft)


def _writable_path(request: Request, slug: str) -> Path:
    """The issue file to save: an existing one inside the folder, or one removed meanwhile
    (so the editor's text can still be saved); 404 for bad names and links."""
    try:
        return hub_of(request).issue_path(slug)
    except NotFoundError:
        path = settings_of(request).issues_dir / f"{slug}{ISSUE_SUFFIX}"
        if not SLUG.match(slug) or path.is_symlink() or path.exists():
            raise HTTPException(status_code=404) from None
        return path


@editor_only
async def save(request: Request) -> Response:
    """Save the text if the file is still the version it was loaded from; else show both."""
    slug = request.path_params["slug"]
    path = _writable_path(request, slug)
    form = await request.form()
    text = issue_files.normalise(str(form.get("text", "")))
    loaded = str(form.get("loaded", ""))
    if len(text.encode("utf-8")) > TEXT_MAX_BYTES:
        error = _message(request, "write.too_long", limit=TEXT_MAX_BYTES // 1024)
        return await _edit_page(request, text, loaded, field_error=error)
    return await store(request, path, text, loaded)


async def store(request: Request, path: Path, text: str, loaded: str) -> Response:
    """Save ``text`` over the version ``loaded`` and record the revision; on to the edit page.

    When the file changed meanwhile, nothing is written: the conflict page shows both.
    """
    slug = path.stem
    try:
        replaced = await run_in_threadpool(issue_files.save, path, text, loaded)
    except issue_files.SaveConflict as conflict:
        context = {
            "slug": slug,
            "theirs": conflict.current,
            "yours": text,
            "current": issue_files.digest(conflict.current),
            "diff": revisions.diff(conflict.current, text),
        }
        return page(request, "editor/conflict.html", context, status_code=409)
    author = request.scope["editor_email"]
    url = settings_of(request).database
    await run_in_threadpool(revisions.record, url, slug, text, author, replaced or None)
    await run_in_threadpool(drafts.discard, url, slug, author)
    await audited(request, "issue.save", f"issue:{slug}", sha256=issue_files.digest(text))
    return RedirectResponse(f"/editor/issues/{slug}/edit?saved=1", status_code=303)


routes = [
    Route("/editor/issues/new", new_form, methods=["GET"]),
    Route("/editor/issues/new", new_issue, methods=["POST"]),
    Route("/editor/issues/{slug}/edit", edit_page, methods=["GET"]),
    Route("/editor/issues/{slug}/edit", save, methods=["POST"]),
    *live.routes,
]
