"""The image library pages: upload (a form, or the editor's button, paste and drop), list,
search, delete; and ``/media/<sha256>.<ext>``, which serves the images to everyone.

An upload is checked and re-encoded by ``images.clean`` and kept by ``media_store``.
The editor's script asks for the alt text first and sends ``Accept: application/json``;
it gets the Markdown to insert, or the one-line reason beside the field. The form on the
library page gets the page again, with the reason beside its file field.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter.web import i18n, images, media_store
from newsletter.web.audience.uploads import safe_file_name
from newsletter.web.auth import editor_only
from newsletter.web.editor import settings_of
from newsletter.web.templating import page

LIBRARY_PAGE = "editor/media.html"
# The file and the alt text, plus the multipart framing around them.
MAX_REQUEST_BYTES = images.MAX_INPUT_BYTES + 64 * 1024
SERVED_NAME = re.compile(r"^([0-9a-f]{64})\.(png|jpg|gif)$")
SERVED_HEADERS = {
    "cache-control": "public, max-age=31536000, immutable",
    "x-content-type-options": "nosniff",
    # Opened on its own, an image is a document that can do nothing.
    "content-security-policy": "default-src 'none'; sandbox",
    "cross-origin-resource-policy": "cross-origin",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FieldError(Exception):
    """A field of the upload form is wrong; ``field`` names it, ``message`` is translated."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def markdown_image(alt: str, url: str) -> str:
    """``![alt](url)`` with the alt text's brackets and backslashes escaped."""
    escaped = re.sub(r"([\\\[\]])", r"\\\1", " ".join(alt.split()))
    return f"![{escaped}]({url})"


def _text(request: Request, key: str, **values: object) -> str:
    return i18n.translate(key, i18n.choose_language(request)).format(**values)


# Serving ---------------------------------------------------------------------------------


async def serve(request: Request) -> Response:
    """The image's bytes, cached for a year: its name is the hash of its content."""
    found = SERVED_NAME.match(request.path_params["name"])
    if found is None:
        raise HTTPException(status_code=404)
    sha256, ext = found.groups()
    etag = f'"{sha256}"'
    headers = {**SERVED_HEADERS, "etag": etag}
    stored = await run_in_threadpool(
        media_store.content, settings_of(request).database, sha256, ext
    )
    if stored is None:
        raise HTTPException(status_code=404)
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    data, content_type = stored
    return Response(data, media_type=content_type, headers=headers)


# Uploading -------------------------------------------------------------------------------


async def read_multipart(request: Request) -> FormData:
    """The upload form, at most ``MAX_REQUEST_BYTES``; FieldError when it is larger or unreadable.

    A request over the limit is read to its end and dropped (answered early, a browser
    shows a broken connection instead of the reason).
    """
    body = bytearray()
    async for chunk in request.stream():
        if len(body) <= MAX_REQUEST_BYTES:
            body += chunk
    if len(body) > MAX_REQUEST_BYTES:
        raise FieldError("file", _text(request, "media.too_large", limit=_input_mb()))

    async def replay() -> AsyncIterator[bytes]:
        yield bytes(body)

    parser = MultiPartParser(request.headers, replay(), max_files=1, max_fields=20)
    try:
        return await parser.parse()
    except MultiPartException:
        raise FieldError("file", _text(request, "media.no_file")) from None


async def read_upload(request: Request) -> tuple[FormData, str, bytes, str]:
    """The form, and its file's safe name, bytes and declared type; FieldError when unfit."""
    form = await read_multipart(request)
    sent = form.get("file")
    if not isinstance(sent, UploadFile) or not sent.filename:
        raise FieldError("file", _text(request, "media.no_file"))
    data = await sent.read()
    await sent.close()
    return form, safe_file_name(sent.filename), data, sent.content_type or ""


def _input_mb() -> int:
    return images.MAX_INPUT_BYTES // 2**20


def checked_alt(request: Request, form: FormData) -> str:
    """The alt text typed: required, one line, at most ``ALT_MAX`` characters."""
    alt = " ".join(_CONTROL.sub(" ", str(form.get("alt", ""))).split())
    if not alt:
        raise FieldError("alt", _text(request, "media.alt_required"))
    if len(alt) > media_store.ALT_MAX:
        raise FieldError("alt", _text(request, "media.alt_long", limit=media_store.ALT_MAX))
    return alt


async def store_upload(
    request: Request, form: FormData, file_name: str, data: bytes, declared: str
) -> tuple[media_store.StoredImage, str]:
    """Check, re-encode and keep the uploaded image; return it and the alt text typed."""
    alt = checked_alt(request, form)
    try:
        clean = await run_in_threadpool(images.clean, data, file_name, declared)
    except images.ImageRefused as refused:
        raise FieldError("file", _text(request, refused.key, **refused.values)) from None
    url, author = settings_of(request).database, request.scope["editor_email"]
    stored = await run_in_threadpool(media_store.add, url, clean, file_name, alt, author)
    return stored, alt


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@editor_only
async def upload(request: Request) -> Response:
    """Keep an uploaded image: JSON for the editor's script, else back to the library."""
    form = None
    try:
        form, file_name, data, declared = await read_upload(request)
        stored, alt = await store_upload(request, form, file_name, data, declared)
    except FieldError as error:
        if _wants_json(request):
            return JSONResponse({"field": error.field, "error": error.message}, status_code=400)
        typed = str(form.get("alt", "")) if form is not None else ""
        errors = {error.field: error.message}
        return await library_page(request, errors=errors, typed_alt=typed, status_code=400)
    if _wants_json(request):
        return JSONResponse(
            {
                "url": stored.url,
                "markdown": markdown_image(alt, stored.url),
                "width": stored.width,
                "height": stored.height,
                "sha256": stored.sha256,
            }
        )
    return RedirectResponse(f"/editor/media?added={stored.sha256}", status_code=303)


# The library -----------------------------------------------------------------------------


async def library_page(request: Request, *, status_code: int = 200, **context: Any) -> Response:
    """The library: the upload form, the search, the images newest first."""
    search = request.query_params.get("q", "")
    url = settings_of(request).database
    values: dict[str, Any] = {
        "images": await run_in_threadpool(media_store.library, url, search),
        "search": search,
        "added": request.query_params.get("added", ""),
        "deleted": request.query_params.get("deleted", ""),
        "errors": {},
        "typed_alt": "",
        "refused": {},
        "max_mb": _input_mb(),
        "markdown_image": markdown_image,
    }
    values.update(context)
    return page(request, LIBRARY_PAGE, values, status_code=status_code)


@editor_only
async def library(request: Request) -> Response:
    """The library page."""
    return await library_page(request)


@editor_only
async def delete(request: Request) -> Response:
    """Delete an image, unless a campaign that may have mailed it links to it."""
    sha256 = request.path_params["sha256"]
    url = settings_of(request).database
    try:
        removed = await run_in_threadpool(media_store.remove, url, sha256)
    except media_store.ImageInUse as in_use:
        reason = _text(request, "media.in_use", subjects="; ".join(in_use.subjects))
        return await library_page(request, refused={sha256: reason}, status_code=409)
    if not removed:
        raise HTTPException(status_code=404)
    return RedirectResponse("/editor/media?deleted=1", status_code=303)


routes = [
    Route("/media/{name}", serve, methods=["GET"]),
    Route("/editor/media", library, methods=["GET"]),
    Route("/editor/media", upload, methods=["POST"]),
    Route("/editor/media/{sha256}/delete", delete, methods=["POST"]),
]
