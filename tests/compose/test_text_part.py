"""The plain-text part reads like a letter: no Markdown syntax, wrapped lines, a real signature."""

from __future__ import annotations

import re

import pytest

from newsletter.compose.issue import compile_file
from newsletter.compose.plaintext import heading, measure, wrap
from newsletter.compose.render import sample_values
from newsletter.compose.slots import slot
from newsletter.settings import Settings
from tests.compose.conftest import ROOT, WriteIssue

BASE = "https://naujienos.bibliotekos-pazangai.example"
SAMPLES = sorted((ROOT / "issues").glob("*.md"))
URL = re.compile(r"(https?://|mailto:)\S+")
MARKDOWN = ("##", "**", "__", "~~", "`", "\\", "][")


def recipient_text(settings: Settings, path) -> str:
    """The text part as a recipient with long values (within the room left for them) gets it."""
    values = sample_values(BASE) | {
        "name": "Aleksandra Kazlauskaitė",
        "municipality": "Vilniaus miesto savivaldybės administracija",
        "email": "aleksandra.kazlauskaite@savivaldybe.example",
    }
    return compile_file(path, settings).personalise(values)[1]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_issues_show_no_markdown_and_wrap_at_78_except_urls(
    settings: Settings, path
) -> None:
    text = recipient_text(settings, path)
    for mark in MARKDOWN:
        assert mark not in text, (mark, text)
    for line in text.splitlines():
        if not URL.search(line):
            assert len(line) <= 78, line


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_headings_are_underlined_and_the_signature_has_its_separator(
    settings: Settings, path
) -> None:
    compiled = compile_file(path, settings)
    lines = compiled.text.splitlines()
    assert lines[:2] == [compiled.subject, "=" * len(compiled.subject)]
    headings = re.findall(r"^## (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    assert headings
    for title in headings:
        at = lines.index(title)
        assert lines[at + 1] == "-" * len(title)
    assert lines.count("-- ") == 1  # RFC 3676 4.3: dash, dash, space
    assert "--" not in lines
    assert lines[lines.index("-- ") + 1] == settings.organisation


def test_a_long_quote_is_wrapped_with_its_mark_on_every_line(settings: Settings) -> None:
    text = compile_file(ROOT / "issues" / "2026-12-remejai-ir-partneriai.md", settings).text
    quote = [line for line in text.splitlines() if line.startswith(">")]
    assert len(quote) == 3
    assert all(line.startswith("> ") and len(line) <= 72 for line in quote)
    assert " ".join(line[2:] for line in quote).startswith("Verslo partnerių geranoriškumas")


def test_lists_tables_and_emphasis_in_an_editors_body(
    settings: Settings, write_issue: WriteIssue
) -> None:
    body = (
        "### Trečio lygio antraštė\n\n"
        "Tekstas su **paryškinimu**, _pabrėžimu_, ~~senu~~ ir `kodu`.\n\n"
        "- Punktas, kuris yra toks ilgas, kad netelpa vienoje eilutėje ir turi būti "
        "perkeltas į kitą eilutę su įtrauka\n"
        "- Antras\n\n"
        "| Veikla | Kiek |\n|:--|--:|\n| Renginiai | 10 |\n| Naujienlaiškiai | 15 |\n"
    )
    text = compile_file(write_issue(body), settings).text
    lines = text.splitlines()
    assert "Tekstas su paryškinimu, pabrėžimu, senu ir kodu." in lines
    assert lines[lines.index("Trečio lygio antraštė") + 1] == "-" * len("Trečio lygio antraštė")
    item = lines.index(next(line for line in lines if line.startswith("- Punktas")))
    assert len(lines[item]) <= 72 and lines[item + 1].startswith("  ")
    assert lines[item + 2] == "- Antras"
    table = lines[lines.index("Veikla          | Kiek") :][:4]
    assert table == [
        "Veikla          | Kiek",
        "-" * 22,
        "Renginiai       |   10",
        "Naujienlaiškiai |   15",
    ]


def test_placeholders_survive_wrapping_and_count_as_their_typical_width(
    settings: Settings, write_issue: WriteIssue
) -> None:
    body = ("Sveiki, " + slot("name") + "! ") * 6 + "\n"
    compiled = compile_file(write_issue(body), settings)
    assert compiled.text.count(slot("name")) >= 7  # six in the body, one in the footer
    _html, text = compiled.personalise({"name": "Ona Onaitė-Petraitienė"})
    greeting = [line for line in text.splitlines() if line.startswith("Sveiki")]
    assert len(greeting) > 1 and all(len(line) <= 78 for line in greeting)


def test_wrap_never_breaks_a_url_and_keeps_the_hanging_indent() -> None:
    url = "https://bibliotekos-pazangai.example/" + "kelias/" * 12
    lines = wrap(f"- Pavadinimas su nuoroda <{url}> ir dar keli žodžiai po jos", 72, "  ")
    assert lines == [
        "- Pavadinimas su nuoroda",
        f"  <{url}>",
        "  ir dar keli žodžiai po jos",
    ]
    assert measure(slot("email")) == 40 and measure(slot("view_url") + ".") == 65
    assert heading("Antraštė", "=") == ["Antraštė", "========"]
