"""The links of a compiled issue, and the same issue with them replaced (no I/O).

Used for aggregate click counting: once per campaign, every counted link of the HTML
and the plain-text part is replaced by the URL that ``url_for`` gives its number, the
same URL for every recipient. What is never replaced:

- a link whose address holds a placeholder marker (``newsletter.compose.slots``): the
  unsubscribe, preferences and view-in-browser links, and any personalised link an
  editor wrote (``https://x.lt/?m=NLPH_municipality_NLPH``), because one URL for all
  would either lose the person's value or have to carry it;
- anything but ``http``/``https`` (``mailto:``, ``tel:``, ``#anchors``).

Each counted link is described by its number (1, 2, … in document order), address,
text (an image's ``alt`` when it has no text), the heading above it (its section) and
the sponsor it credits: the template's sponsor block marks its links with
``data-sponsor``, and a link elsewhere to the same address credits the same sponsor.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.compose.slots import MARKER

# Headings and anchors are never nested in one another in the issue's HTML (nh3 and the
# templates see to it); lxml writes attributes in double quotes, a template may not.
_ELEMENT = re.compile(
    r"<(?P<heading>h[1-3])\b[^>]*>(?P<title>.*?)</(?P=heading)>"
    r"|<a\b(?P<attrs>[^>]*)>(?P<inner>.*?)</a>",
    re.DOTALL | re.IGNORECASE,
)
_HREF = re.compile(r"""\bhref=(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_SPONSOR = re.compile(r"""\bdata-sponsor=(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_ALT = re.compile(r"""\balt=(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
# A URL in the plain-text part: the text layout writes them bare or in <…>.
_TEXT_URL = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,;:!?)]")
COUNTED_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Link:
    """One counted link of an issue."""

    number: int
    url: str
    text: str
    section: str
    sponsor: str


@dataclass(frozen=True)
class Relinked:
    """An issue's HTML and text with counted links replaced, and what they were."""

    html: str
    text: str
    links: tuple[Link, ...]


def is_counted(url: str) -> bool:
    """True for an ``http(s)`` address without a placeholder in it."""
    return url.lower().startswith(COUNTED_SCHEMES) and MARKER.search(url) is None


def _plain(fragment: str) -> str:
    """The visible text of an HTML fragment, one line."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", fragment))).strip()


def _link_text(inner: str) -> str:
    text = _plain(inner)
    if text:
        return text
    alt = _ALT.search(inner)
    return html.unescape(alt.group(2)).strip() if alt else ""


def relink(issue_html: str, text: str, url_for: Callable[[int], str]) -> Relinked:
    """Replace every counted link by ``url_for(its number)``; leave the rest as it is.

    In the text part a counted address is replaced by the URL of the first HTML link
    to it; an address that is only in the text is left alone.
    """
    links: list[Link] = []
    section = ""
    parts: list[str] = []
    last = 0
    for match in _ELEMENT.finditer(issue_html):
        if match.group("heading"):
            section = _plain(match.group("title"))
            continue
        attrs = match.group("attrs")
        href = _HREF.search(attrs)
        url = html.unescape(href.group(2)).strip() if href else ""
        if not href or not is_counted(url):
            continue
        sponsor = _SPONSOR.search(attrs)
        number = len(links) + 1
        links.append(
            Link(
                number,
                url,
                _link_text(match.group("inner")),
                section,
                html.unescape(sponsor.group(2)) if sponsor else "",
            )
        )
        start = match.start("attrs") + href.start(2)
        parts += [issue_html[last:start], html.escape(url_for(number), quote=True)]
        last = match.start("attrs") + href.end(2)
    parts.append(issue_html[last:])
    links = _credit_sponsors(links)
    return Relinked("".join(parts), _relink_text(text, links, url_for), tuple(links))


def _credit_sponsors(links: list[Link]) -> list[Link]:
    """Give a link to a sponsor's address elsewhere in the issue that sponsor's name."""
    sponsors = {link.url: link.sponsor for link in links if link.sponsor}
    return [
        link if link.sponsor else Link(**{**vars(link), "sponsor": sponsors.get(link.url, "")})
        for link in links
    ]


def _relink_text(text: str, links: list[Link], url_for: Callable[[int], str]) -> str:
    first: dict[str, int] = {}
    for link in links:
        first.setdefault(link.url, link.number)

    def replace(match: re.Match[str]) -> str:
        number = first.get(match.group(0))
        return url_for(number) if number is not None else match.group(0)

    return _TEXT_URL.sub(replace, text)
