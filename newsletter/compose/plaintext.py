"""The plain-text part as a letter: clean HTML to text, and wrapping at 72 columns (no I/O).

What a reader of the text part sees:

- headings underlined (``=`` under a first-level heading, ``-`` under the others);
- no Markdown syntax: no emphasis marks, backticks or escapes; images by their alt text;
- running text wrapped at 72 columns, only at spaces, so that a URL (or any word longer
  than the width) stands whole on a line of its own;
- quotes with ``> `` before every line, list items with a hanging indent;
- links as ``text [1]`` with the numbered addresses listed after the text; a link whose
  text is its own address is shown once, as it is.

The input is a fragment already cleaned by ``markdown.sanitise``, so only the allow-listed
tags occur. Placeholder markers (``newsletter.compose.slots``) pass through as words. They
are filled per recipient after wrapping, which runs once per issue, so a marker is
measured as the width its value usually has (``SLOT_WIDTHS``) rather than its own length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from newsletter.compose.slots import MARKER

WIDTH = 72
# Room that filled values are given: a line stays within 78 columns while its values
# together are at most 6 characters longer (officials' addresses such as
# vardas.pavarde@savivaldybe.lt are 30-40 long; "Gavėjas: name, municipality" fits one
# line). A URL slot in running text is counted as long enough to go on a line of its
# own, where it can run past 72 without being broken.
SLOT_WIDTHS = {"name": 30, "municipality": 30, "email": 40}
URL_SLOT_WIDTH = 64
OTHER_SLOT_WIDTH = 30

BLOCKS = frozenset(
    {
        "blockquote", "caption", "dd", "div", "dl", "dt", "figcaption", "figure", "h1", "h2",
        "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre", "table", "ul",
    }
)  # fmt: skip
VOID = frozenset({"br", "hr", "img"})
_SPACE = re.compile(r"[ \t\r\n\f]+")


# Measuring and wrapping ----------------------------------------------------------------


def measure(text: str) -> int:
    """The width ``text`` will have once its placeholders are filled (typical values)."""
    return len(MARKER.sub("", text)) + sum(_slot_width(m) for m in MARKER.finditer(text))


def _slot_width(marker: re.Match[str]) -> int:
    if marker.group(1) != "PH":
        return 0  # region markers vanish when filled
    name = marker.group(2)
    if name.endswith("_url"):
        return URL_SLOT_WIDTH
    return SLOT_WIDTHS.get(name, OTHER_SLOT_WIDTH)


def wrap(text: str, width: int = WIDTH, hang: str = "") -> list[str]:
    """Wrap ``text`` at ``width`` columns, only at spaces; line breaks in it are kept.

    Continuation lines start with ``hang``. A word longer than the width (a URL) is put
    on a line of its own and never broken.
    """
    lines: list[str] = []
    for piece in text.split("\n"):
        lines.extend(_wrap_piece(piece.strip(), width, hang if lines else "", hang))
    return lines


def _wrap_piece(piece: str, width: int, first: str, hang: str) -> list[str]:
    lines: list[str] = []
    current, used = first, measure(first)
    for word in piece.split():
        size = measure(word)
        if current.strip() and used + 1 + size > width:
            lines.append(current)
            current, used = hang + word, measure(hang) + size
        else:
            gap = " " if current.strip() else ""
            current, used = current + gap + word, used + len(gap) + size
    lines.append(current)
    return [line.rstrip() for line in lines]


def wrap_filter(text: str, hang: str = "") -> str:
    """Jinja filter for the text template: ``text`` wrapped at 72 columns."""
    return "\n".join(wrap(str(text), WIDTH, hang))


def heading(text: str, rule: str = "-", width: int = WIDTH) -> list[str]:
    """A heading's lines: the text wrapped, then ``rule`` repeated under its longest line."""
    lines = wrap(text, width)
    return [*lines, rule * max(measure(line) for line in lines)]


def heading_filter(text: str, rule: str = "-") -> str:
    """Jinja filter for the text template: ``text`` as an underlined heading."""
    return "\n".join(heading(str(text), rule))


# HTML to text --------------------------------------------------------------------------


@dataclass
class Element:
    """One element of the fragment, with its children (elements and text)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    """Builds the element tree of a clean fragment (nh3 closes every element it keeps)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("body")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_fragment(fragment: str) -> Element:
    """The element tree of an HTML fragment, under a ``body`` element."""
    builder = _TreeBuilder()
    builder.feed(fragment)
    builder.close()
    return builder.root


def html_to_text(fragment: str, width: int = WIDTH) -> str:
    """Return a clean HTML fragment as a plain-text letter (see the module docstring)."""
    writer = _Writer()
    blocks = writer.blocks(parse_fragment(fragment), width)
    if writer.links:
        blocks.append([f"[{n}] {url}" for n, url in enumerate(writer.links, start=1)])
    return "\n\n".join("\n".join(block) for block in blocks if block).strip("\n") + "\n"


Block = list[str]


class _Writer:
    """Turns elements into blocks of lines; numbers the links it meets, in order."""

    def __init__(self) -> None:
        self.links: list[str] = []

    def blocks(self, element: Element, width: int) -> list[Block]:
        """The blocks of ``element``'s children; loose inline content makes a paragraph."""
        found: list[Block] = []
        inline: list[str] = []
        for child in element.children:
            if isinstance(child, str) or child.tag not in BLOCKS:
                inline.append(self.inline(child))
            else:
                found += self.paragraph(inline, width)
                found += self.block(child, width)
        found += self.paragraph(inline, width)
        return [block for block in found if block]

    @staticmethod
    def paragraph(inline: list[str], width: int) -> list[Block]:
        """The inline pieces gathered so far as a wrapped paragraph (and forget them)."""
        text = "".join(inline).strip(" ")
        inline.clear()
        return [wrap(text, width)] if text.strip() else []

    def block(self, element: Element, width: int) -> list[Block]:
        """The blocks that one block element makes."""
        tag = element.tag
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            text = self.inline(element).strip()
            return [heading(text, "=" if tag == "h1" else "-", width)] if text else []
        if tag == "blockquote":
            inner = self.blocks(element, width - 2)
            lines = "\n\n".join("\n".join(block) for block in inner).split("\n")
            return [[f"> {line}".rstrip() for line in lines]]
        if tag in ("ul", "ol"):
            return [self.list_items(element, width)]
        if tag == "pre":
            return [[line.rstrip() for line in _text_of(element).strip("\n").split("\n")]]
        if tag == "table":
            return [self.table(element, width)]
        if tag == "hr":
            return [["* * *"]]
        if tag == "dd":
            return [["    " + line if line else line for line in block]
                    for block in self.blocks(element, width - 4)]  # fmt: skip
        return self.blocks(element, width)

    def list_items(self, element: Element, width: int) -> Block:
        """A list, one item after another, continuation lines under the item's text."""
        number = int(element.attrs.get("start") or 1) if element.tag == "ol" else 0
        lines: Block = []
        for item in element.children:
            if not isinstance(item, Element) or item.tag != "li":
                continue
            mark = f"{number}. " if number else "- "
            number += 1 if number else 0
            indent = " " * len(mark)
            inner = self.blocks(item, width - len(mark))
            # A tight list item (no <p> in it) keeps its nested list right under its text.
            loose = any(isinstance(c, Element) and c.tag == "p" for c in item.children)
            body = ("\n\n" if loose else "\n").join("\n".join(b) for b in inner).split("\n")
            lines.append(mark + body[0])
            lines.extend((indent + line).rstrip() for line in body[1:])
        return lines

    def table(self, element: Element, width: int) -> Block:
        """A table as aligned columns; as one line per row when it is too wide for that."""
        rows = [
            [(self.inline(cell).strip(), _right_aligned(cell)) for cell in row.children
             if isinstance(cell, Element) and cell.tag in ("th", "td")]
            for row in _rows(element)
        ]  # fmt: skip
        rows = [row for row in rows if row]
        if not rows:
            return []
        columns = max(len(row) for row in rows)
        sizes = [
            max((measure(r[i][0]) for r in rows if i < len(r)), default=0) for i in range(columns)
        ]
        if sum(sizes) + 3 * (columns - 1) > width:
            return [
                line for row in rows for line in wrap(" | ".join(c for c, _ in row), width, "  ")
            ]
        lines = [" | ".join(_pad(text, sizes[i], right) for i, (text, right) in enumerate(row)).rstrip()
                 for row in rows]  # fmt: skip
        if _has_header(element):
            lines.insert(1, "-" * max(measure(line) for line in lines))
        return lines

    def inline(self, node: Element | str) -> str:
        """The text of inline content: whitespace collapsed, links numbered, images by alt."""
        if isinstance(node, str):
            return _SPACE.sub(" ", node)
        if node.tag == "br":
            return "\n"
        if node.tag == "img":
            return node.attrs.get("alt", "")
        text = "".join(self.inline(child) for child in node.children)
        if node.tag == "a":
            return self.link(text, node.attrs.get("href", ""))
        return text

    def link(self, text: str, href: str) -> str:
        """Link text followed by its reference number; the address alone when they agree."""
        shown = text.strip()
        if not href or href.startswith("#") or _same_address(shown, href):
            return text
        if not shown:
            return href
        if href not in self.links:
            self.links.append(href)
        return f"{text} [{self.links.index(href) + 1}]"


def _same_address(text: str, href: str) -> bool:
    """True when a link's text already is its address (``mailto:`` or a trailing ``/`` aside)."""
    address = href.removeprefix("mailto:")
    return text.rstrip("/") in (href.rstrip("/"), address.rstrip("/"))


def _text_of(element: Element) -> str:
    """All text under ``element`` as written (for ``pre``)."""
    return "".join(c if isinstance(c, str) else _text_of(c) for c in element.children)


def _rows(element: Element) -> list[Element]:
    """The ``tr`` rows of a table, through ``thead``, ``tbody`` and ``tfoot``."""
    rows: list[Element] = []
    for child in element.children:
        if isinstance(child, Element):
            rows.extend([child] if child.tag == "tr" else _rows(child))
    return rows


def _has_header(table: Element) -> bool:
    first = _rows(table)[0]
    return all(isinstance(c, str) or c.tag == "th" for c in first.children)


def _right_aligned(cell: Element) -> bool:
    return "right" in cell.attrs.get("style", "")


def _pad(text: str, size: int, right: bool) -> str:
    space = " " * max(0, size - measure(text))
    return space + text if right else text + space
