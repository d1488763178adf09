"""Preflight checks of an issue before it is sent: one finding per problem, with its line.

Errors stop a send (the command exits 1); warnings are advice. Findings point at the
Markdown line where the problem was written: markdown-it tokens carry their line range in
the body, and the body's offset after the front matter turns that into a file line.
Problems the template or the sponsor registry cause point at line 1.

Errors: final HTML over 102 KB (Gmail clips the rest), an image without alt text, a
relative link that cannot be made absolute, a link to localhost, no unsubscribe link,
unresolved placeholders, placeholder regions left open or never opened, and "TK"
markers. Warnings: a subject shorter than 10 or longer than 78 characters, no preheader,
``http://`` links or images, links without text or with "click here" text, skipped
heading levels, raw HTML that rendering removes, an image over 200 KB.

Rendering does no I/O, and neither does lint: an image's size is known only when the
caller passes it (``image_sizes``, bytes by absolute URL; the web app passes those of its
image library, which it reads from the database). Other images are not fetched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html

from newsletter.compose import markdown
from newsletter.compose.issue import IssueSource, compile_source, read_issue
from newsletter.compose.render import PLACEHOLDERS, CompiledIssue, sample_values
from newsletter.compose.slots import MARKER, if_set, slot
from newsletter.errors import IssueError
from newsletter.settings import Settings

MAX_HTML_BYTES = 102 * 1024  # Gmail shows "[Message clipped]" beyond this
# An image larger than this is slow on a phone's connection and counts against data plans.
MAX_IMAGE_BYTES = 200 * 1024
SUBJECT_MIN, SUBJECT_MAX = 10, 78
VAGUE_LINK_TEXT = frozenset(
    {"click here", "here", "spauskite čia", "paspauskite čia", "spausk čia", "spauskite", "čia"}
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]"})
# A relative link that is really a web address written without https://.
BARE_DOMAIN = re.compile(
    r"^(www\.[a-z0-9-]+|[a-z0-9-]+(\.[a-z0-9-]+)*\.(lt|lv|ee|eu|com|org|net|info|gov|edu|io"
    r"|de|pl|fi|se|no|dk|uk|fr|es|it|nl|be|us))(/|$|\?|#)",
    re.IGNORECASE,
)
FOREIGN_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\*\|[A-Za-z0-9_]+\|\*")
TK_MARKER = re.compile(r"\bTK\b")
EVENT_ATTRIBUTE = re.compile(r"^on[a-z]+$", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One problem found in an issue."""

    severity: str  # "error" or "warning"
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.severity} {self.file}:{self.line}: {self.message}"

    def to_dict(self) -> dict[str, str | int]:
        """The finding as JSON-safe values."""
        return asdict(self)


@dataclass(frozen=True)
class Block:
    """A piece of the body rendered on its own, with its file lines."""

    first: int  # first file line (1-based)
    last: int  # last file line
    html: str


def lint_file(
    path: Path,
    settings: Settings,
    compiled: CompiledIssue | None = None,
    image_sizes: Mapping[str, int] | None = None,
) -> list[Finding]:
    """Check an issue file; a compile error becomes one error finding.

    Pass ``compiled`` when the issue was just compiled, to check that result instead of
    compiling again, and ``image_sizes`` (bytes by absolute URL) for the images it knows.
    """
    try:
        source = read_issue(path)
        if compiled is None:
            compiled = compile_source(source, settings)
    except IssueError as exc:
        return [Finding("error", exc.path or str(path), exc.line or 1, exc.reason)]
    return lint_issue(
        source, compiled, settings.base_url, display=str(path), image_sizes=image_sizes
    )


def lint_issue(
    source: IssueSource,
    compiled: CompiledIssue,
    base_url: str,
    *,
    display: str = "",
    image_sizes: Mapping[str, int] | None = None,
) -> list[Finding]:
    """Check a read and compiled issue (no I/O); findings in line order, errors first on ties."""
    checker = _Checker(source, base_url, display or str(source.path), image_sizes or {})
    checker.front_matter()
    checker.body()
    checker.output(compiled)
    order = {"error": 0, "warning": 1}
    return sorted(checker.findings, key=lambda f: (f.line, order[f.severity], f.message))


class _Checker:
    """Collects findings for one issue."""

    def __init__(
        self, source: IssueSource, base_url: str, display: str, image_sizes: Mapping[str, int]
    ) -> None:
        self.source = source
        self.image_sizes = image_sizes
        self.base_url = base_url
        self.display = display
        self.findings: list[Finding] = []
        self.body_urls: set[str] = set()

    def error(self, line: int, message: str) -> None:
        """Record an error at ``line``."""
        self._add(Finding("error", self.display, line, message))

    def warning(self, line: int, message: str) -> None:
        """Record a warning at ``line``."""
        self._add(Finding("warning", self.display, line, message))

    def _add(self, finding: Finding) -> None:
        """Record a finding once."""
        if finding not in self.findings:
            self.findings.append(finding)

    # Front matter ------------------------------------------------------------------------

    def front_matter(self) -> None:
        """Subject length and the preheader."""
        subject = self.source.front["subject"]
        line = self.source.line_of("subject")
        if len(subject) < SUBJECT_MIN:
            self.warning(
                line, f"subject is {len(subject)} characters; write at least {SUBJECT_MIN}"
            )
        elif len(subject) > SUBJECT_MAX:
            self.warning(
                line, f"subject is {len(subject)} characters; inboxes cut it after {SUBJECT_MAX}"
            )
        if not self.source.front.get("preheader"):
            self.warning(1, "no preheader: inboxes will show the first words of the email instead")

    # Body --------------------------------------------------------------------------------

    def body(self) -> None:
        """Links, images, heading levels, removed markup and markers, block by block."""
        previous_level = 1  # the template shows the subject as the h1
        for block in blocks(self.source):
            root = _parse_fragment(block.html)
            for element in root.iter():
                if not isinstance(element.tag, str):
                    continue
                if element.tag == "a":
                    self.link(block, element)
                elif element.tag == "img":
                    self.image(block, element)
                elif re.fullmatch(r"h[1-6]", element.tag):
                    level = int(element.tag[1])
                    if level > previous_level + 1:
                        self.warning(
                            block.first,
                            f"heading level skipped: h{previous_level} is followed by h{level}",
                        )
                    previous_level = level
                self.removed_markup(block, element)
        self.markers()
        self.regions()

    def link(self, block: Block, element: lxml.html.HtmlElement) -> None:
        """Check one link of the body: its URL and its text."""
        href = (element.get("href") or "").strip()
        line = self.line_of(href, block)
        self.url(href, line, "link")
        text = " ".join(element.text_content().split())
        has_image = any(img.get("alt") for img in element.iter("img"))
        if not text and not has_image:
            self.warning(line, f"link to {href or '(nothing)'} has no text")
        elif text.casefold().strip(" .!:»›") in VAGUE_LINK_TEXT:
            self.warning(line, f"link text {text!r} says nothing about where it leads")

    def image(self, block: Block, element: lxml.html.HtmlElement) -> None:
        """Check one image of the body: its alt text and its URL."""
        src = (element.get("src") or "").strip()
        line = self.line_of(src, block)
        if not (element.get("alt") or "").strip():
            self.error(line, f"image {src!r} has no alt text")
        self.url(src, line, "image")
        self.image_size(markdown.absolute_url(self.base_url, src), line)

    def image_size(self, url: str, line: int) -> None:
        """Warn about an image whose size is known and over ``MAX_IMAGE_BYTES``."""
        size = self.image_sizes.get(url, 0)
        if size > MAX_IMAGE_BYTES:
            self.warning(
                line,
                f"image {url} is {size / 1024:.0f} KB; keep images under "
                f"{MAX_IMAGE_BYTES // 1024} KB (slow on phones)",
            )

    def url(self, url: str, line: int, what: str) -> None:
        """Check one URL written in the body."""
        if not url or url.startswith("#") or MARKER.fullmatch(url):
            return
        absolute = markdown.absolute_url(self.base_url, url)
        self.body_urls.add(absolute)
        scheme = urlsplit(url).scheme.lower() if _splittable(url) else ""
        if not scheme and BARE_DOMAIN.match(url):
            self.error(
                line,
                f"relative {what} {url!r} cannot be made absolute: it looks like a web "
                f"address without https://",
            )
            return
        if _is_local(absolute):
            where = " (relative, against NEWSLETTER_BASE_URL)" if not scheme else ""
            self.error(line, f"{what} to localhost{where}: {absolute}")
        elif scheme == "http" or (not scheme and absolute.startswith("http://")):
            self.warning(line, f"{what} uses http://, not https://: {absolute}")

    def removed_markup(self, block: Block, element: lxml.html.HtmlElement) -> None:
        """Warn about raw HTML that the sanitiser will drop, so the editor is not surprised."""
        if element.tag in markdown.DROPPED_WITH_CONTENT:
            self.warning(
                block.first, f"<{element.tag}> is removed from the email, with its content"
            )
        for name, value in element.attrib.items():
            if EVENT_ATTRIBUTE.match(name):
                self.warning(block.first, f"the {name} attribute is removed from the email")
            elif value.strip().lower().startswith(("javascript:", "vbscript:", "data:text")):
                self.warning(
                    block.first, f"the {name}={value[:30]!r} URL is removed from the email"
                )

    def markers(self) -> None:
        """TK markers and placeholders that no recipient value will fill."""
        subject_line = self.source.line_of("subject")
        texts = [(subject_line, self.source.front["subject"])]
        texts.append((self.source.line_of("preheader"), self.source.front.get("preheader") or ""))
        first = self.source.body_line
        texts += list(enumerate(self.source.lines[first - 1 :], start=first))
        for line, text in texts:
            if TK_MARKER.search(text):
                self.error(line, "'TK' marker left in the text: fill it in before sending")
            for match in FOREIGN_PLACEHOLDER.finditer(text):
                self.error(line, f"unresolved placeholder {match.group(0)!r}")
            for match in MARKER.finditer(text):
                if match.group(2) not in PLACEHOLDERS:
                    self.error(line, f"unresolved placeholder {match.group(0)!r}")

    def regions(self) -> None:
        """Region markers written in the body without a partner (rendering drops them)."""
        open_at: dict[str, list[int]] = {}
        first = self.source.body_line
        for line, text in enumerate(self.source.lines[first - 1 :], start=first):
            for match in MARKER.finditer(text):
                kind, name = match.groups()
                if kind == "IF":
                    open_at.setdefault(name, []).append(line)
                elif kind == "FI" and open_at.get(name):
                    open_at[name].pop()
                elif kind == "FI":
                    self.error(line, f"{match.group(0)!r} closes no region opened before it")
        for name, lines in open_at.items():
            for line in lines:
                self.error(line, f"{if_set(name)!r} opens a region that is never closed")

    def line_of(self, needle: str, block: Block) -> int:
        """The first line of ``block`` that contains ``needle`` (else the block's first)."""
        if needle:
            for number in range(block.first, block.last + 1):
                if needle in self.source.lines[number - 1]:
                    return number
        return block.first

    # Output ------------------------------------------------------------------------------

    def output(self, compiled: CompiledIssue) -> None:
        """Checks of the final email: size, unsubscribe link, template links and images."""
        html, _text = compiled.personalise(sample_values(self.base_url, compiled.lang))
        size = len(html.encode("utf-8"))
        if size > MAX_HTML_BYTES:
            self.error(1, f"the HTML is {size / 1024:.0f} KB; Gmail clips emails over 102 KB")
        root = lxml.html.document_fromstring(compiled.html)
        hrefs = [(a.get("href") or "").strip() for a in root.iter("a")]
        if slot("unsubscribe_url") not in hrefs or slot("unsubscribe_url") not in compiled.text:
            self.error(1, "no unsubscribe link: the template must link to the unsubscribe URL")
        reported = {finding.message for finding in self.findings}
        for name in sorted(compiled.slot_names - set(PLACEHOLDERS)):
            message = f"unresolved placeholder {slot(name)!r}"
            if message not in reported:  # else already found at its line in the body
                self.error(1, message)
        for element in root.iter("a", "img"):
            url = (element.get("href" if element.tag == "a" else "src") or "").strip()
            if url in self.body_urls:
                continue  # written in the body: already checked at its own line
            self.template_url(url, element.tag)
            if element.tag == "img" and not (element.get("alt") or "").strip():
                self.error(1, f"template image {element.get('src')!r} has no alt text")
            if element.tag == "img":
                self.image_size(url, 1)

    def template_url(self, url: str, tag: str) -> None:
        """Check a URL that the template or the sponsor registry put in the email."""
        if not url or url.startswith("#") or MARKER.fullmatch(url):
            return
        what = "link" if tag == "a" else "image"
        scheme = urlsplit(url).scheme.lower() if _splittable(url) else ""
        if scheme not in ("http", "https", "mailto", "tel"):
            self.error(1, f"template {what} {url!r} is relative and cannot be made absolute")
        elif _is_local(url):
            self.error(1, f"template {what} to localhost: {url}")
        elif scheme == "http":
            self.warning(1, f"template {what} uses http://, not https://: {url}")


def blocks(source: IssueSource) -> Iterator[Block]:
    """The body's paragraphs, headings, list items, table cells and raw HTML blocks."""
    offset = source.body_line
    renderer = markdown.markdown_parser().renderer
    options = markdown.markdown_parser().options
    span = (0, 1)
    for token in markdown.parse(source.body):
        if token.map is not None:
            span = (token.map[0], max(token.map[1] - 1, token.map[0]))
        first, last = span[0] + offset, span[1] + offset
        if token.type == "inline":
            html = renderer.renderInline(token.children or [], options, {})
            yield Block(first, last, html)
        elif token.type == "html_block":
            yield Block(first, last, token.content)
        elif token.type == "heading_open":
            yield Block(first, last, f"<{token.tag}></{token.tag}>")


def _parse_fragment(html: str) -> lxml.html.HtmlElement:
    """Parse an HTML fragment into a ``<div>``."""
    try:
        return lxml.html.fragment_fromstring(html, create_parent="div")
    except Exception:  # lxml refuses some fragments (e.g. only a comment): nothing to check
        return lxml.html.fragment_fromstring("<div></div>")


def _splittable(url: str) -> bool:
    """True when ``urlsplit`` accepts the URL (it refuses e.g. bad IPv6 hosts)."""
    try:
        urlsplit(url)
    except ValueError:
        return False
    return True


def _is_local(url: str) -> bool:
    """True when the URL points at this machine."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127.")
