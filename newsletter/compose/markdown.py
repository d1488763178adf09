"""An issue's Markdown body as safe HTML and as plain text (no I/O).

Markdown is CommonMark plus tables and strikethrough (markdown-it-py). Editors may write
raw HTML, so the result is cleaned with nh3 against an allow-list: no ``<script>``,
``<style>``, event handlers, ``javascript:`` URLs, iframes or forms. Relative ``href`` and
``src`` values are made absolute against the base URL during that same pass, so the HTML
and the plain-text part carry the same absolute links; placeholder markers are left alone.
"""

from __future__ import annotations

import functools
from urllib.parse import urljoin

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

from newsletter.compose import plaintext
from newsletter.compose.slots import MARKER

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl",
        "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "img", "li", "mark", "ol", "p", "pre", "s", "small", "span", "strong", "sub", "sup",
        "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "style"},
    "th": {"colspan", "rowspan", "style"},
    "*": {"lang", "dir"},
}
# markdown-it writes column alignment as style="text-align:…"; nothing else is kept.
ALLOWED_STYLE = frozenset({"text-align"})
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
# Removed together with their content (nh3 would keep the text of an unknown tag).
DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "form", "object", "noscript"})


@functools.cache
def markdown_parser() -> MarkdownIt:
    """The Markdown parser: CommonMark with tables and strikethrough, raw HTML allowed."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def parse(body: str) -> list[Token]:
    """Return markdown-it's block tokens for ``body`` (each carries its line range)."""
    return markdown_parser().parse(body)


def to_unsafe_html(body: str) -> str:
    """Render Markdown to HTML as written, raw HTML included (clean it before use)."""
    return markdown_parser().render(body)


def absolute_url(base_url: str, url: str) -> str:
    """Return ``url`` resolved against ``base_url``; markers and ``#`` anchors stay."""
    if not url or url.startswith("#") or MARKER.fullmatch(url):
        return url
    return urljoin(base_url.rstrip("/") + "/", url)


@functools.lru_cache(maxsize=8)
def _cleaner(base_url: str) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(ALLOWED_STYLE),
        link_rel=None,
        strip_comments=True,
        url_relative=functools.partial(absolute_url, base_url),
    )


def sanitise(fragment: str, base_url: str) -> str:
    """Clean an HTML fragment against the allow-list and make its URLs absolute."""
    return _cleaner(base_url).clean(fragment)


def to_html(body: str, base_url: str) -> str:
    """Render Markdown to clean HTML with absolute URLs."""
    return sanitise(to_unsafe_html(body), base_url)


def to_text(fragment: str) -> str:
    """Return a clean HTML fragment as plain text that reads like a letter.

    Headings underlined, no Markdown syntax, lines wrapped at 72 columns except a URL,
    links listed as numbered references (``newsletter.compose.plaintext``).
    """
    return plaintext.html_to_text(fragment)
