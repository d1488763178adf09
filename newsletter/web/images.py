"""Uploaded images checked and re-encoded with Pillow, so that only clean pixels are kept.

An upload is refused, with a one-line reason, when it is larger than ``MAX_INPUT_BYTES``,
is SVG or HTML (they can carry scripts), carries HTML, script or an archive inside an
image (a polyglot), is not a PNG, JPEG, GIF or WebP image, is not the type its name or
declared content type says, or would decode to more than ``MAX_PIXELS`` (a decompression
bomb: a 20,000 × 20,000 PNG is a few hundred bytes on the wire and 1.2 GB in memory as RGB).
The pixel count is read from the header and checked before a single pixel is decoded.

What is kept is a new file written by Pillow from the decoded pixels: the orientation
applied, at most ``MAX_WIDTH`` pixels wide (twice the email's 600 px column, for sharp
images on high-density screens), and no metadata: EXIF (camera, time, GPS position), XMP
and comments are not copied. WebP is kept as PNG or JPEG, since Outlook and older mail
apps do not show WebP. No I/O here: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from newsletter.errors import InputError

MAX_INPUT_BYTES = 10 * 1024 * 1024
# A re-encoded 1200 px photo is a few hundred KB; a larger result is not an email image.
MAX_OUTPUT_BYTES = 3 * 1024 * 1024
MAX_WIDTH = 1200
# A 50-megapixel camera's photo passes; decoding it takes 150 MB as RGB.
MAX_PIXELS = 50_000_000
# An animated GIF decodes every frame: its frames together get the same budget.
MAX_FRAMES = 300
JPEG_QUALITY = 85
ORIENTATION_TAG = 0x0112

# Detected format -> (stored extension, content type).
KINDS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"), "GIF": ("gif", "image/gif")}
CONTENT_TYPES = {ext: content_type for ext, content_type in KINDS.values()}
# What a name's extension or a declared content type says the file is.
NAMED_FORMATS = {
    "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "jpe": "JPEG", "gif": "GIF", "webp": "WEBP",
    "image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP",
}  # fmt: skip
ACCEPTED = ("PNG", "JPEG", "GIF", "WEBP")
OPENED_BY = list(ACCEPTED)
# A phone's JPEG with a depth map or a second picture opens as MPO: it is a JPEG.
SAME_AS = {"MPO": "JPEG"}
# Markup or an archive inside an image: a browser or a tool may read the file as that.
# (Literal searches: a regular expression over 5 MB took 0.6 s, these a tenth of it.)
_MARKUP = (b"<script", b"<html", b"<svg", b"<body", b"<iframe", b"<object", b"<embed", b"<?php")
_ARCHIVE = (b"PK\x03\x04", b"PK\x05\x06")
_MARKUP_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<", re.DOTALL)


class ImageRefused(InputError):
    """The upload is not an image we keep; ``key`` and ``values`` name the reason for the page."""

    def __init__(self, key: str, message: str, **values: object) -> None:
        super().__init__(message)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class CleanImage:
    """A re-encoded image: its bytes, their sha256, and what serving it needs."""

    content: bytes
    sha256: str
    ext: str
    content_type: str
    width: int
    height: int

    @property
    def name(self) -> str:
        """The file name it is served under: ``<sha256>.<ext>``."""
        return f"{self.sha256}.{self.ext}"


def clean(data: bytes, file_name: str, declared_type: str = "") -> CleanImage:
    """Check an upload and re-encode it; ImageRefused says why it is not kept."""
    if len(data) > MAX_INPUT_BYTES:
        raise ImageRefused(
            "media.too_large", "the file is larger than 10 MB", limit=MAX_INPUT_BYTES // 2**20
        )
    if _MARKUP_START.match(data[:1024]):
        raise ImageRefused("media.markup", "SVG and HTML files are refused: they can carry scripts")
    if _is_polyglot(data):
        raise ImageRefused("media.polyglot", "the image carries HTML, script or an archive inside")
    with _pillow_errors():
        # Only these decoders look at the file: Pillow's others (TIFF, PSD, …) never do.
        image = Image.open(io.BytesIO(data), formats=OPENED_BY)
        detected = SAME_AS.get(image.format or "", image.format or "")
        _check_type(detected, file_name, declared_type)
        _check_pixels(image)
        return _reencode(image, detected)


def _is_polyglot(data: bytes) -> bool:
    """True when markup or an archive's signature is inside the file."""
    lowered = data.lower()
    return any(marker in lowered for marker in _MARKUP) or any(sign in data for sign in _ARCHIVE)


@contextmanager
def _pillow_errors() -> Iterator[None]:
    """Pillow's refusals of a file, and its decompression-bomb warning, as ImageRefused."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise _too_many_pixels() from exc
        except UnidentifiedImageError as exc:
            raise ImageRefused("media.not_image", "not a PNG, JPEG, GIF or WebP image") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageRefused("media.broken", "the image is damaged or cut short") from exc


def _check_type(detected: str, file_name: str, declared_type: str) -> None:
    """The content must be an accepted format, the one its name (and declared type) say."""
    if detected not in ACCEPTED:
        raise ImageRefused("media.not_image", "not a PNG, JPEG, GIF or WebP image")
    suffix = PurePath(file_name).suffix.lower().lstrip(".")
    named = NAMED_FORMATS.get(suffix)
    if named is None:
        raise ImageRefused("media.bad_name", "the file name must end in .png, .jpg, .gif or .webp")
    declared = NAMED_FORMATS.get(declared_type.split(";")[0].strip().lower(), detected)
    if named != detected or declared != detected:
        raise ImageRefused(
            "media.mismatch",
            f"the file is a {detected} image but is named or sent as {suffix.upper()}",
            detected=detected,
            named=suffix.upper(),
        )


def _check_pixels(image: Image.Image) -> None:
    """Refuse a decompression bomb from its header, before anything is decoded."""
    frames = getattr(image, "n_frames", 1) if image.format == "GIF" else 1
    if frames > MAX_FRAMES or image.width * image.height * frames > MAX_PIXELS:
        raise _too_many_pixels()


def _too_many_pixels() -> ImageRefused:
    return ImageRefused(
        "media.bomb",
        f"the image has too many pixels (at most {MAX_PIXELS // 1_000_000} megapixels)",
        limit=MAX_PIXELS // 1_000_000,
    )


def _reencode(image: Image.Image, detected: str) -> CleanImage:
    """Decode, orient, shrink and write the image again without its metadata."""
    if detected == "GIF" and getattr(image, "n_frames", 1) > 1:
        content, size, kind = _animated_gif(image), _fitted(image.size), "GIF"
    else:
        if detected == "JPEG":
            _draft(image)
        frame = ImageOps.exif_transpose(image)  # applies the EXIF orientation, drops the tag
        frame = _shrunk(frame)
        kind = _output_format(detected, frame)
        content, size = _write(frame, kind), frame.size
    if len(content) > MAX_OUTPUT_BYTES:
        raise ImageRefused(
            "media.output_large",
            f"the image is still larger than {MAX_OUTPUT_BYTES // 2**20} MB after re-encoding",
            limit=MAX_OUTPUT_BYTES // 2**20,
        )
    ext, content_type = KINDS[kind]
    sha = hashlib.sha256(content).hexdigest()
    return CleanImage(content, sha, ext, content_type, size[0], size[1])


def _draft(image: Image.Image) -> None:
    """Let libjpeg decode a large JPEG at 1/2, 1/4 or 1/8 scale, still at least as wide as
    the kept image will be: a 12-megapixel photo then decodes about four times faster."""
    width, height = image.size
    turned = image.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8)
    shown_width = height if turned else width
    if shown_width <= MAX_WIDTH:
        return
    scale = MAX_WIDTH / shown_width
    image.draft(
        "RGB" if image.mode != "L" else "L", (math.ceil(width * scale), math.ceil(height * scale))
    )


def _fitted(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled down to ``MAX_WIDTH`` wide, its shape kept (never enlarged)."""
    width, height = size
    if width <= MAX_WIDTH:
        return size
    return MAX_WIDTH, max(1, round(height * MAX_WIDTH / width))


def _shrunk(frame: Image.Image) -> Image.Image:
    """The frame at most ``MAX_WIDTH`` wide; palette images are resampled in RGBA."""
    size = _fitted(frame.size)
    if size == frame.size:
        return frame
    if frame.mode not in ("RGB", "RGBA", "L", "LA"):
        frame = frame.convert("RGBA" if _has_alpha(frame) else "RGB")
    return frame.resize(size, Image.Resampling.LANCZOS)


def _has_alpha(frame: Image.Image) -> bool:
    return frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info


def _output_format(detected: str, frame: Image.Image) -> str:
    """The kept format: the uploaded one, except WebP (PNG with transparency, else JPEG)."""
    if detected != "WEBP":
        return detected
    return "PNG" if _has_alpha(frame) else "JPEG"


def _bare(frame: Image.Image) -> Image.Image:
    """A copy of the frame that keeps only its pixels and transparency: Pillow's writers
    copy some of ``info`` (comments, EXIF) into the new file otherwise."""
    kept = {key: frame.info[key] for key in ("transparency",) if key in frame.info}
    frame = frame.copy()
    frame.info = kept
    return frame


def _write(frame: Image.Image, kind: str) -> bytes:
    """Encode one frame anew; only what the format needs is passed, no metadata."""
    out = io.BytesIO()
    if kind == "JPEG":
        if frame.mode not in ("RGB", "L"):
            frame = frame.convert("RGB")
        _bare(frame).save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    elif kind == "PNG":
        if frame.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            frame = frame.convert("RGBA")
        _bare(frame).save(out, "PNG", optimize=True)
    else:
        _bare(frame).save(out, "GIF")
    return out.getvalue()


def _animated_gif(image: Image.Image) -> bytes:
    """Every frame of an animated GIF, shrunk, written as a new GIF with its timing."""
    size = _fitted(image.size)
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        durations.append(frame.info.get("duration", 100))
        frames.append(_bare(frame.convert("RGBA").resize(size, Image.Resampling.LANCZOS)))
    out = io.BytesIO()
    frames[0].save(
        out,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=image.info.get("loop", 0),
        disposal=2,
    )
    return out.getvalue()
