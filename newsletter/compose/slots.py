"""Placeholder slots: how per-recipient values travel through the pipeline and get filled.

A compiled issue is rendered once, with a *marker* wherever a per-recipient value goes,
and personalised many times by splicing values between precomputed literal segments.

Marker syntax (ASCII letters, digits and underscores only)::

    NLPH_name_NLPH                      the value of ``name``
    NLIF_name_NLIF … NLFI_name_NLFI     the text between is kept only when ``name`` is set

Why this shape: every stage leaves such a word alone. markdown-it percent-encodes braces
and ``%`` in link URLs, and premailer (through lxml's HTML serialiser) percent-encodes
spaces and non-ASCII in ``href``, so ``{{ name }}`` turns into ``%7B%7B%20name…`` there;
letters, digits and underscores are unreserved in URLs (RFC 3986 2.3) and plain text in
HTML, and the plain-text part passes them through as words. An underscore inside a word never starts
Markdown emphasis (CommonMark 6.2), so the marker also survives an editor's body.

The split into segments happens once per compiled issue; filling is a loop over a few
dozen tuples and costs microseconds, whatever the size of the email.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

MARKER = re.compile(r"NL(PH|IF|FI)_([a-z][a-z0-9_]*?)_NL\1")
# Attributes whose value is a URL: a value placed there is percent-encoded and refused
# when its scheme could run code.
URL_ATTRIBUTES = frozenset({"href", "src", "background", "action", "cite", "poster"})
SAFE_SCHEMES = frozenset({"", "http", "https", "mailto", "tel"})
# Everything RFC 3986 allows in a URL stays as it is, including existing %XX escapes.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~-._"
_ATTRIBUTE_BEFORE = re.compile(
    r"([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:\"[^\"]*|'[^']*|[^\s\"'=<>`]*)$"
)

LITERAL, SLOT, IF_SET, END_IF = 0, 1, 2, 3

Escape = Callable[[str], str]
Op = tuple[int, str, Escape | None]


def slot(name: str) -> str:
    """Return the marker that stands for the value of ``name``."""
    return f"NLPH_{name}_NLPH"


def if_set(name: str) -> str:
    """Return the marker that opens a region kept only when ``name`` has a value."""
    return f"NLIF_{name}_NLIF"


def end_if(name: str) -> str:
    """Return the marker that closes the region opened by ``if_set(name)``."""
    return f"NLFI_{name}_NLFI"


def escape_text(value: str) -> str:
    """Escape a value for HTML text or a non-URL attribute."""
    return html.escape(value, quote=True)


def escape_url(value: str) -> str:
    """Escape a value for a URL attribute; schemes that could run code become ''."""
    value = value.strip()
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return ""
    if scheme not in SAFE_SCHEMES:
        return ""
    return html.escape(quote(value, safe=_URL_SAFE), quote=True)


def escape_url_part(value: str) -> str:
    """Escape a value placed inside a longer URL (e.g. a query value): encode it all."""
    return html.escape(quote(value, safe=""), quote=True)


def keep(value: str) -> str:
    """Return a value unchanged (the plain-text part)."""
    return value


def encode_url_part(value: str) -> str:
    """Percent-encode a value placed inside a longer URL of the plain-text part."""
    return quote(value, safe="")


def text_escape_for(document: str, start: int) -> Escape:
    """Values go into plain text as they are, except inside a URL written there."""
    word_start = max(document.rfind(" ", 0, start), document.rfind("\n", 0, start)) + 1
    prefix = document[word_start:start]
    return encode_url_part if "://" in prefix or prefix.startswith("mailto:") else keep


def html_escape_for(document: str, start: int, end: int) -> Escape:
    """Choose how to escape a value that replaces ``document[start:end]``.

    In text or an ordinary attribute: HTML escaping. As the whole value of a URL
    attribute: a URL, percent-encoded where needed, refused if it could run code. Inside
    a longer URL (``?name=…``): every reserved character percent-encoded.
    """
    tag_start = document.rfind("<", 0, start)
    if tag_start <= document.rfind(">", 0, start):
        return escape_text
    attribute = _ATTRIBUTE_BEFORE.search(document, tag_start, start)
    if not attribute or attribute.group(1).lower() not in URL_ATTRIBUTES:
        return escape_text
    whole = document[start - 1 : start] in ('"', "'") and document[end : end + 1] in ('"', "'")
    return escape_url if whole else escape_url_part


@dataclass(frozen=True)
class FillPlan:
    """A document split into literal segments and slots, ready to fill many times."""

    ops: tuple[Op, ...]
    names: frozenset[str]

    @classmethod
    def for_html(cls, document: str) -> FillPlan:
        """Split an HTML document; each slot escapes for the context it sits in."""
        return cls._split(document, lambda start, end: html_escape_for(document, start, end))

    @classmethod
    def for_text(cls, document: str) -> FillPlan:
        """Split a plain-text document; values go in as they are, except inside URLs."""
        return cls._split(document, lambda start, _end: text_escape_for(document, start))

    @classmethod
    def _split(cls, document: str, escape_at: Callable[[int, int], Escape]) -> FillPlan:
        ops: list[Op] = []
        names: set[str] = set()
        start = 0
        for match in MARKER.finditer(document):
            if match.start() > start:
                ops.append((LITERAL, document[start : match.start()], None))
            kind, name = match.group(1), match.group(2)
            names.add(name)
            if kind == "PH":
                ops.append((SLOT, name, escape_at(match.start(), match.end())))
            else:
                ops.append((IF_SET if kind == "IF" else END_IF, name, None))
            start = match.end()
        if start < len(document):
            ops.append((LITERAL, document[start:], None))
        return cls(ops=_closed_regions_only(ops), names=frozenset(names))

    def fill(self, values: Mapping[str, str]) -> str:
        """Return the document with every slot filled; missing values count as ''."""
        return "".join(text for _literal, text in self.fill_parts(values))

    def fill_parts(self, values: Mapping[str, str]) -> list[tuple[bool, str]]:
        """The filled document as ``(is_literal, text)`` pieces, in order.

        Literal pieces are this plan's own strings, the same objects for every
        recipient, so a caller can encode each once (the message body's
        quoted-printable, ``newsletter.delivery.message``); the others are filled values.
        """
        parts: list[tuple[bool, str]] = []
        skipping: str | None = None
        depth = 0  # regions of the skipped name opened inside the skipped one
        for kind, text, escape in self.ops:
            if skipping is not None:
                if kind == IF_SET and text == skipping:
                    depth += 1
                elif kind == END_IF and text == skipping:
                    skipping, depth = (None, 0) if depth == 0 else (skipping, depth - 1)
                continue
            if kind == LITERAL:
                parts.append((True, text))
            elif kind == SLOT:
                value = values.get(text) or ""
                parts.append((False, escape(value) if escape is not None and value else value))
            elif kind == IF_SET and not values.get(text):
                skipping, depth = text, 0
        return parts


def _closed_regions_only(ops: list[Op]) -> tuple[Op, ...]:
    """Drop region markers without a partner; each closer ends the nearest open region of its name.

    An editor can write an opener into the body by hand; left in, it would hide everything
    up to the template's next closer of that name (the whole body) from every recipient
    without that value, or the rest of the email, unsubscribe link included.
    """
    open_at: dict[str, list[int]] = {}
    paired: set[int] = set()
    for index, (kind, name, _escape) in enumerate(ops):
        if kind == IF_SET:
            open_at.setdefault(name, []).append(index)
        elif kind == END_IF and open_at.get(name):
            paired.update((open_at[name].pop(), index))
    return tuple(
        op for index, op in enumerate(ops) if op[0] not in (IF_SET, END_IF) or index in paired
    )
