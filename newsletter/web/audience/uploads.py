"""An uploaded list file between its dry run and its confirmation.

The browser sends the file once. Its bytes wait in ``pending_uploads`` (the database,
so the confirmation may reach any web process) under a random token that only the
uploading editor's confirmation form carries, for ``PENDING_LIFETIME`` at most: the
committed import deletes the row in its own transaction, and every new upload deletes
rows that have expired. On disk the file exists only while a request reads it.
"""

from __future__ import annotations

import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath, PureWindowsPath

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from newsletter import db
from newsletter.errors import InputError, Message, StateError
from newsletter.models import PendingUpload, utcnow
from newsletter.web.i18n import coded

#: The largest list file accepted: a list of 100,000 rows is about 10 MB as CSV.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: The form's other fields and the multipart framing around the file.
FORM_OVERHEAD_BYTES = 64 * 1024
PENDING_LIFETIME = timedelta(minutes=30)
MAX_FILE_NAME = 200
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


class UploadError(InputError):
    """The upload has no file, cannot be read or is larger than ``MAX_UPLOAD_BYTES``."""


@dataclass(frozen=True)
class Upload:
    """A list file as the browser sent it."""

    file_name: str
    content: bytes


async def read_form(request: Request) -> tuple[FormData, Upload]:
    """Read the upload form, its file (the field ``file``) into memory, at most the limit.

    A larger request is read to its end and dropped (a browser that is answered before it
    has sent everything shows a broken connection, not the page), then refused.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES:
        await _drain(request)
        raise UploadError(_too_large())
    stream = _limited(request, MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES)
    parser = MultiPartParser(request.headers, stream, max_files=1, max_fields=20)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UploadError(coded("upload.unreadable", detail=exc.message)) from None
    except _Overflow:
        raise UploadError(_too_large()) from None
    sent = form.get("file")
    if not isinstance(sent, UploadFile) or not sent.filename:
        raise UploadError(coded("upload.no_file"))
    content = await sent.read(MAX_UPLOAD_BYTES + 1)
    await sent.close()
    if len(content) > MAX_UPLOAD_BYTES:
        raise UploadError(_too_large())
    return form, Upload(safe_file_name(sent.filename), content)


def _too_large() -> Message:
    return coded("upload.too_large", mb=MAX_UPLOAD_BYTES // (1024 * 1024))


class _Overflow(Exception):
    """The request body went past the limit while it was being parsed."""


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body, up to ``limit`` bytes; the rest is read and dropped, then _Overflow."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            yield chunk
    if size > limit:
        raise _Overflow


async def _drain(request: Request) -> None:
    try:
        async for _chunk in request.stream():
            pass
    except RuntimeError:  # the stream was already consumed
        pass


def safe_file_name(sent: str) -> str:
    """The last part of the name the browser gave, without control characters, shortened."""
    name = PureWindowsPath(PurePosixPath(sent).name).name
    name = _UNSAFE_NAME.sub("", name).strip().lstrip(".")
    if len(name) > MAX_FILE_NAME:
        suffix = Path(name).suffix[:10]
        name = name[: MAX_FILE_NAME - len(suffix)] + suffix
    return name or "upload"


@contextmanager
def on_disk(upload: Upload) -> Iterator[Path]:
    """The upload as a file under its own name in a private folder, deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="newsletter-upload-") as folder:
        path = Path(folder) / upload.file_name
        path.write_bytes(upload.content)
        yield path


def keep(
    url: str, user_id: int, upload: Upload, sha256: str, wanted: dict[str, object], fingerprint: str
) -> str:
    """Keep the upload for its confirmation; return its token. Drops expired uploads."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with db.transaction(url) as session:
        session.execute(delete(PendingUpload).where(PendingUpload.expires_at < now))
        session.add(
            PendingUpload(
                token=token,
                user_id=user_id,
                file_name=upload.file_name,
                sha256=sha256,
                content=upload.content,
                request=wanted,
                fingerprint=fingerprint,
                created_at=now,
                expires_at=now + PENDING_LIFETIME,
            )
        )
    return token


@dataclass(frozen=True)
class Pending:
    """A kept upload and the import it is for."""

    token: str
    upload: Upload
    sha256: str
    slug: str
    name: str
    sync: bool
    fingerprint: str


def find(url: str, user_id: int, token: str) -> Pending | None:
    """The upload kept under ``token`` for this editor, unless it expired or was imported."""
    with db.transaction(url) as session:
        row = session.scalar(
            select(PendingUpload).where(
                PendingUpload.token == token,
                PendingUpload.user_id == user_id,
                PendingUpload.expires_at >= utcnow(),
            )
        )
        if row is None:
            return None
        wanted = row.request
        return Pending(
            token=token,
            upload=Upload(row.file_name, row.content),
            sha256=row.sha256,
            slug=str(wanted.get("slug", "")),
            name=str(wanted.get("name", "")),
            sync=bool(wanted.get("sync", False)),
            fingerprint=row.fingerprint,
        )


def refresh(url: str, token: str, fingerprint: str) -> None:
    """Make ``fingerprint`` (the dry run shown again) the one the confirmation must match."""
    with db.transaction(url) as session:
        session.execute(
            update(PendingUpload)
            .where(PendingUpload.token == token)
            .values(fingerprint=fingerprint, expires_at=utcnow() + PENDING_LIFETIME)
        )


def take(session: Session, token: str) -> None:
    """Delete the kept upload inside the import's transaction; StateError when it is gone.

    Two confirmations of one upload (a double click, two tabs) cannot both import: the
    second waits for the first's lock, then finds no row and rolls back.
    """
    gone = session.execute(delete(PendingUpload).where(PendingUpload.token == token)).rowcount
    if gone != 1:
        raise StateError("this upload was already imported")
