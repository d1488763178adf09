"""The sponsor registry in the browser: tiers and sponsors in display order, edited, moved,
deleted, a logo uploaded through the image library.

Every change is made to the file's current entries and written back to ``sponsors.yaml``
(the settings' ``sponsors_file``) only after the new text passes the CLI's own check
(``compose.sponsors.parse_registry``, whose file:line message is shown beside the form).
The write is the issue files' (``issue_files.save``): guarded by the sha256 of the text the
page was loaded from, atomic, and refused with nothing written when the file changed
meanwhile; the form is then shown again as typed. Each save is kept as a revision (slug
``:sponsors``, which no issue file can have). The browser writes the file in one regular
layout: the comment block at its top is kept, comments between entries are not (the
revision before the save keeps them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter.compose import sponsors as registry_file
from newsletter.errors import IssueError
from newsletter.web import i18n, images, issue_files, media, media_store, revisions
from newsletter.web.audience.uploads import safe_file_name
from newsletter.web.auth import audited, editor_only
from newsletter.web.editor import settings_of
from newsletter.web.templating import page

SPONSORS_PAGE = "editor/sponsors.html"
REVISION_SLUG = ":sponsors"
SPONSOR_KEYS = ("id", "name", "tier", "url", "logo", "logo_width", "logo_height", "alt")
TIER_KEYS = ("id", "size", "default")
_TOP_COMMENTS = re.compile(r"(?:[ \t]*#[^\n]*\n|[ \t]*\n)*")
# Which form field an error of the registry check is about, by the words of its message.
_FIELD_WORDS = (
    ("url", "url"),
    ("'name'", "name"),
    ("tier", "tier"),
    ("logo", "logo"),
    ("size", "size"),
    ("id", "id"),
)


@dataclass
class Document:
    """The registry file as read: its text, its top comments, and its entries as mappings."""

    text: str
    header: str = ""
    tiers: list[dict[str, Any]] = field(default_factory=list)
    sponsors: list[dict[str, Any]] = field(default_factory=list)

    def dump(self) -> str:
        """The file's new text: the top comments, then tiers and sponsors in order."""
        tiers = [_ordered(entry, TIER_KEYS) for entry in self.tiers]
        sponsors = [_ordered(entry, SPONSOR_KEYS) for entry in self.sponsors]
        body = yaml.safe_dump(
            {"tiers": tiers, "sponsors": sponsors},
            allow_unicode=True,
            sort_keys=False,
            width=1000,
        )
        return self.header + body


class Refused(Exception):
    """A change that is not saved: ``message`` for the form, ``field`` it is about."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _ordered(entry: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The entry's keys in the registry's order; empty values left out."""
    ordered = {key: entry[key] for key in keys if entry.get(key) not in (None, "", False)}
    ordered.update({key: value for key, value in entry.items() if key not in keys})
    return ordered


def read_document(path: Path) -> Document:
    """The registry file's entries (an absent file is an empty registry).

    Only a file whose YAML parses to mappings in lists is editable here; anything else is
    an IssueError with its line, as the CLI says it.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Document(text="")
    registry_file.parse_registry(data, path)  # the CLI's check, with its messages
    text = data.decode("utf-8")
    _node, values = registry_file.load_yaml(text, path)
    values = values or {}
    header = _TOP_COMMENTS.match(text).group(0).lstrip("\n")
    return Document(
        text=text,
        header=header,
        tiers=[dict(entry) for entry in values.get("tiers") or []],
        sponsors=[dict(entry) for entry in values.get("sponsors") or []],
    )


# Changes to the entries ------------------------------------------------------------------


def _index(entries: list[dict[str, Any]], ident: str) -> int:
    for index, entry in enumerate(entries):
        if entry.get("id") == ident:
            return index
    raise Refused("", "id")


def put_tier(document: Document, original: str, entry: dict[str, Any]) -> None:
    """Add the tier, or replace ``original`` (its sponsors follow a new id)."""
    if not original:
        document.tiers.append(entry)
        return
    document.tiers[_index(document.tiers, original)] = entry
    for sponsor in document.sponsors:
        if sponsor.get("tier") == original:
            sponsor["tier"] = entry["id"]


def put_sponsor(document: Document, original: str, entry: dict[str, Any]) -> None:
    """Add the sponsor, or replace ``original`` in its place."""
    if not original:
        document.sponsors.append(entry)
        return
    document.sponsors[_index(document.sponsors, original)] = entry


def move(document: Document, kind: str, ident: str, step: int) -> None:
    """Move a tier among the tiers, or a sponsor among its tier's sponsors, one place."""
    entries = document.tiers if kind == "tier" else document.sponsors
    here = _index(entries, ident)
    tier = entries[here].get("tier")
    neighbours = [
        index for index, entry in enumerate(entries) if kind == "tier" or entry.get("tier") == tier
    ]
    position = neighbours.index(here) + step
    if 0 <= position < len(neighbours):
        there = neighbours[position]
        entries[here], entries[there] = entries[there], entries[here]


def remove(document: Document, kind: str, ident: str) -> None:
    """Delete a tier or a sponsor (a tier that still has sponsors fails the check)."""
    entries = document.tiers if kind == "tier" else document.sponsors
    del entries[_index(entries, ident)]


# Saving ----------------------------------------------------------------------------------


def save(path: Path, document: Document, loaded: str, url: str, author: str) -> None:
    """Check the new text as the CLI would, then write it over the version ``loaded``.

    Refused names the registry check's file:line message; ``issue_files.SaveConflict`` when
    the file changed since ``loaded``. A missing file's folder must exist.
    """
    text = document.dump()
    try:
        registry_file.parse_registry(text.encode("utf-8"), path)
    except IssueError as exc:
        raise Refused(str(exc), _field_of(exc.reason)) from None
    replaced = issue_files.save(path, text, loaded)
    revisions.record(url, REVISION_SLUG, text, author, replaced or None)


def _field_of(reason: str) -> str:
    for words, name in _FIELD_WORDS:
        if words in reason:
            return name
    return ""


# Pages -----------------------------------------------------------------------------------


def _text(request: Request, key: str, **values: object) -> str:
    return i18n.translate(key, i18n.choose_language(request)).format(**values)


async def sponsors_page(request: Request, *, status_code: int = 200, **context: Any) -> Response:
    """The registry: tiers in order, each with its sponsors, and the forms to change them."""
    path = settings_of(request).sponsors_file
    values: dict[str, Any] = {
        "file": str(path),
        "document": None,
        "file_error": "",
        "loaded": "",
        "saved": request.query_params.get("saved", ""),
        "form": {},  # the form typed, shown again when it was refused
        "errors": {},
        "sizes": registry_file.SIZES,
    }
    try:
        document = await run_in_threadpool(read_document, path)
    except IssueError as exc:
        values["file_error"] = str(exc)
    else:
        values["document"] = document
        values["loaded"] = issue_files.digest(document.text)
    values.update(context)
    return page(request, SPONSORS_PAGE, values, status_code=status_code)


@editor_only
async def show(request: Request) -> Response:
    """The sponsors page."""
    return await sponsors_page(request)


async def _apply(request: Request, form: FormData, change: Any) -> Response:
    """Read the file, make ``change`` to its entries, save; the page again when refused."""
    settings = settings_of(request)
    path = settings.sponsors_file
    typed = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    typed.pop("csrf_token", None)
    try:
        document = await run_in_threadpool(read_document, path)
        if issue_files.digest(document.text) != typed.get("loaded", ""):
            raise issue_files.SaveConflict(path, document.text)
        await change(document)
        author = request.scope["editor_email"]
        await run_in_threadpool(
            save, path, document, typed.get("loaded", ""), settings.database, author
        )
    except issue_files.SaveConflict:
        message = _text(request, "sponsors.conflict")
        return await sponsors_page(request, status_code=409, form=typed, errors={"form": message})
    except (Refused, IssueError) as exc:
        message = exc.message if isinstance(exc, Refused) else str(exc)
        where = exc.field if isinstance(exc, Refused) else ""
        errors = {"form": message or _text(request, "sponsors.gone")}
        if where:
            errors[where] = errors["form"]
        return await sponsors_page(request, status_code=400, form=typed, errors=errors)
    await audited(request, "sponsors.save", f"file:{path.name}")
    return RedirectResponse("/editor/sponsors?saved=1", status_code=303)


@editor_only
async def post_tier(request: Request) -> Response:
    """Add or change a tier."""
    form = await request.form(max_files=0, max_fields=20)

    async def change(document: Document) -> None:
        entry = {
            "id": str(form.get("id", "")).strip(),
            "size": str(form.get("size", "normal")),
            "default": form.get("default") == "1",
        }
        put_tier(document, str(form.get("original", "")), entry)

    return await _apply(request, form, change)


@editor_only
async def post_sponsor(request: Request) -> Response:
    """Add or change a sponsor; a logo file goes through the image library."""
    try:
        form = await media.read_multipart(request)
    except media.FieldError as error:
        return await sponsors_page(
            request, status_code=400, errors={"form": error.message, "logo": error.message}
        )

    async def change(document: Document) -> None:
        original = str(form.get("original", ""))
        entry = _sponsor_entry(form, original)
        if original:
            previous = document.sponsors[_index(document.sponsors, original)]
            for key in ("logo", "logo_width", "logo_height"):
                entry[key] = previous.get(key)
        if form.get("remove_logo") == "1":
            entry.update(logo=None, logo_width=None, logo_height=None)
        logo = form.get("logo")
        if isinstance(logo, UploadFile) and logo.filename:
            stored = await _store_logo(request, form, logo)
            entry.update(logo=stored.url, logo_width=stored.width, logo_height=stored.height)
        put_sponsor(document, original, entry)

    try:
        return await _apply(request, form, change)
    finally:
        await form.close()


def _sponsor_entry(form: FormData, original: str) -> dict[str, Any]:
    """The sponsor's fields as typed; with no id typed, the one it had, or one from the name."""
    name = " ".join(str(form.get("name", "")).split())
    ident = str(form.get("id", "")).strip() or original or issue_files.slug_words(name)
    return {
        "id": ident,
        "name": name,
        "tier": str(form.get("tier", "")),
        "url": str(form.get("url", "")).strip(),
        "alt": " ".join(str(form.get("alt", "")).split()),
    }


async def _store_logo(
    request: Request, form: FormData, logo: UploadFile
) -> media_store.StoredImage:
    """Keep the uploaded logo in the library, its alt text required."""
    alt = " ".join(str(form.get("alt", "")).split())
    if not alt:
        raise Refused(_text(request, "media.alt_required"), "alt")
    data = await logo.read()
    name = safe_file_name(logo.filename or "")
    try:
        clean = await run_in_threadpool(images.clean, data, name, logo.content_type or "")
    except images.ImageRefused as refused:
        raise Refused(_text(request, refused.key, **refused.values), "logo") from None
    url, author = settings_of(request).database, request.scope["editor_email"]
    return await run_in_threadpool(media_store.add, url, clean, name, alt, author)


@editor_only
async def post_move(request: Request) -> Response:
    """Move a tier or a sponsor one place up or down."""
    form = await request.form(max_files=0, max_fields=10)
    kind = "tier" if form.get("kind") == "tier" else "sponsor"
    step = -1 if form.get("step") == "up" else 1

    async def change(document: Document) -> None:
        move(document, kind, str(form.get("id", "")), step)

    return await _apply(request, form, change)


@editor_only
async def post_delete(request: Request) -> Response:
    """Delete a tier or a sponsor."""
    form = await request.form(max_files=0, max_fields=10)
    kind = "tier" if form.get("kind") == "tier" else "sponsor"

    async def change(document: Document) -> None:
        remove(document, kind, str(form.get("id", "")))

    return await _apply(request, form, change)


routes = [
    Route("/editor/sponsors", show, methods=["GET"]),
    Route("/editor/sponsors/tier", post_tier, methods=["POST"]),
    Route("/editor/sponsors/sponsor", post_sponsor, methods=["POST"]),
    Route("/editor/sponsors/move", post_move, methods=["POST"]),
    Route("/editor/sponsors/delete", post_delete, methods=["POST"]),
]
