"""The image library in the database: add, find, list, serve and delete re-encoded images.

Images are content-addressed: a row is named by the SHA-256 of the bytes it serves, so the
same picture uploaded twice is one row, and its URL ``/media/<sha256>.<ext>`` never
changes meaning (which is why it may be cached for a year). An image that a campaign has
mailed is kept: recipients' copies link to it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, cast, delete, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from newsletter import db
from newsletter.compose.markdown import absolute_url
from newsletter.errors import StateError
from newsletter.models import Campaign, MediaImage
from newsletter.settings import Settings
from newsletter.web.images import CleanImage

log = logging.getLogger(__name__)

URL_PREFIX = "/media/"
# ``/media/<sha256>.<ext>`` anywhere in a text (a compiled issue, an email).
MEDIA_URL = re.compile(r"/media/([0-9a-f]{64})\.(png|jpg|gif)\b")
ALT_MAX = 500
LIBRARY_PAGE = 200


class ImageInUse(StateError):
    """A campaign that may have mailed the image links to it: it is not deleted."""

    def __init__(self, sha256: str, subjects: list[str]) -> None:
        super().__init__(f"image {sha256} is used by a sent campaign: {', '.join(subjects)}")
        self.subjects = subjects


@dataclass(frozen=True)
class StoredImage:
    """One library image as the pages show it (without its bytes)."""

    sha256: str
    ext: str
    size: int
    width: int
    height: int
    file_name: str
    alt: str
    uploaded_by: str
    uploaded_at: datetime

    @property
    def url(self) -> str:
        """Its address relative to the base URL."""
        return f"{URL_PREFIX}{self.sha256}.{self.ext}"


def add(url: str, image: CleanImage, file_name: str, alt: str, by: str) -> StoredImage:
    """Keep ``image``; the same bytes kept before are that row, with their first name and alt."""
    with db.transaction(url) as session:
        row = session.scalar(select(MediaImage).where(MediaImage.sha256 == image.sha256))
        if row is None:
            row = MediaImage(
                sha256=image.sha256,
                ext=image.ext,
                content_type=image.content_type,
                content=image.content,
                size=len(image.content),
                width=image.width,
                height=image.height,
                file_name=file_name,
                alt=alt[:ALT_MAX],
                uploaded_by=by,
            )
            session.add(row)
            session.flush()
        return _stored(row)


def content(url: str, sha256: str, ext: str) -> tuple[bytes, str] | None:
    """The bytes and content type served as ``<sha256>.<ext>``, or None."""
    with db.transaction(url) as session:
        found = session.execute(
            select(MediaImage.content, MediaImage.content_type).where(
                MediaImage.sha256 == sha256, MediaImage.ext == ext
            )
        ).first()
        return (found.content, found.content_type) if found else None


def one(url: str, sha256: str) -> StoredImage | None:
    """The library image ``sha256``, or None."""
    with db.transaction(url) as session:
        row = session.scalar(select(MediaImage).where(MediaImage.sha256 == sha256))
        return _stored(row) if row is not None else None


def library(url: str, search: str = "") -> list[StoredImage]:
    """The newest images first, those whose alt text or file name contain ``search``."""
    columns = [getattr(MediaImage, name) for name in StoredImage.__dataclass_fields__]
    query = select(*columns).order_by(MediaImage.id.desc()).limit(LIBRARY_PAGE)
    if search.strip():
        pattern = "%" + _escape_like(search.strip().lower()) + "%"
        query = query.where(
            or_(
                func.lower(MediaImage.alt).like(pattern, escape="\\"),
                func.lower(MediaImage.file_name).like(pattern, escape="\\"),
            )
        )
    with db.transaction(url) as session:
        return [StoredImage(*row) for row in session.execute(query)]


def remove(url: str, sha256: str) -> bool:
    """Delete the image; False when there is none. ImageInUse while a sent campaign uses it."""
    with db.transaction(url) as session:
        subjects = _campaigns_using(session, sha256)
        if subjects:
            raise ImageInUse(sha256, subjects)
        result = session.execute(delete(MediaImage).where(MediaImage.sha256 == sha256))
        return bool(result.rowcount)


def sizes(url: str, texts: Iterable[str]) -> dict[str, int]:
    """The byte size of each library image that ``texts`` link to, by ``/media/…`` path."""
    wanted = {match.group(1) for text in texts for match in MEDIA_URL.finditer(text)}
    if not wanted:
        return {}
    with db.transaction(url) as session:
        rows = session.execute(
            select(MediaImage.sha256, MediaImage.ext, MediaImage.size).where(
                MediaImage.sha256.in_(wanted)
            )
        )
        return {f"{URL_PREFIX}{row.sha256}.{row.ext}": row.size for row in rows}


def image_sizes(settings: Settings, html: str) -> dict[str, int]:
    """Sizes of the library images ``html`` shows, by absolute URL, for lint.

    Lint is advice: when the database cannot answer, it goes without them (logged).
    """
    try:
        found = sizes(settings.database, [html])
    except SQLAlchemyError as exc:
        log.warning("image sizes unknown to lint: %s", type(exc).__name__)
        return {}
    return {absolute_url(settings.base_url, path): size for path, size in found.items()}


def _campaigns_using(session: Session, sha256: str) -> list[str]:
    """Subjects of the campaigns past their draft whose compiled issue names the image.

    The compiled issue is JSON; as text it holds the image's URL as written (the SHA-256
    is 64 hex digits, so a match is never an accident). Scheduled and cancelled campaigns
    count too: one may go out, the other may have sent part of its list.
    """
    rows = session.execute(
        select(Campaign.subject)
        .where(Campaign.status != "draft")
        .where(cast(Campaign.compiled, Text).like(f"%{sha256}%"))
        .order_by(Campaign.id)
        .limit(5)
    )
    return [row.subject for row in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _stored(row: MediaImage) -> StoredImage:
    return StoredImage(**{name: getattr(row, name) for name in StoredImage.__dataclass_fields__})
