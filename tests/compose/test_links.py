"""Counted links: which links of a compiled issue are replaced, and what is kept of each."""

from __future__ import annotations

import re
from pathlib import Path

from newsletter.compose.issue import compile_file
from newsletter.compose.links import is_counted, relink
from newsletter.compose.slots import slot
from newsletter.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HREF = re.compile(r'href="([^"]*)"')


def counted_url(number: int) -> str:
    return f"https://naujienos.example/c/7/{number}/signature"


def test_every_link_but_the_personal_ones_is_replaced_in_the_sample_issue(
    settings: Settings,
) -> None:
    issue = compile_file(ROOT / "issues" / "2026-12-remejai-ir-partneriai.md", settings)
    relinked = relink(issue.html, issue.text, counted_url)
    hrefs = HREF.findall(relinked.html)
    kept = [href for href in hrefs if not href.startswith("https://naujienos.example/c/7/")]
    # The masthead's view-in-browser link, then the footer's three.
    footer = ("unsubscribe_url", "preferences_url", "view_url")
    assert kept == [slot("view_url"), *map(slot, footer)]
    assert len(relinked.links) == len(hrefs) - len(kept) > 10
    teo = next(link for link in relinked.links if link.url == "https://www.teo.lt")
    assert teo.sponsor == "TEO LT, AB"
    assert teo.section == "Dėkojame rėmėjams ir partneriams"
    # The text part points to the same counted URLs; its footer links stay the person's own.
    assert f"<{counted_url(teo.number)}>" in relinked.text
    assert "https://www.teo.lt" not in relinked.text
    assert slot("unsubscribe_url") in relinked.text
    assert slot("preferences_url") in relinked.text


def test_a_personalised_link_mailto_and_anchors_are_never_replaced() -> None:
    personal = f"https://savivaldybe.example/?kas={slot('municipality')}"
    issue_html = (
        "<h2>Renginiai</h2>"
        f'<p><a href="{personal}">Jūsų savivaldybė</a> '
        '<a href="mailto:info@biblioteka.example">rašykite</a> <a href="#top">aukštyn</a> '
        '<a href="https://renginiai.example/?a=1&amp;b=2">Renginių kalendorius</a></p>'
        '<h3>Rėmėjai</h3><a href="https://www.teo.lt" data-sponsor="TEO LT, AB">'
        '<img src="https://x.example/teo.png" alt="TEO logotipas"></a>'
        '<p>Dar kartą: <a href="https://www.teo.lt">TEO</a></p>'
    )
    text = f"Jūsų: {personal}\nKalendorius: https://renginiai.example/?a=1&b=2.\n"
    relinked = relink(issue_html, text, counted_url)
    assert HREF.findall(relinked.html) == [
        personal,
        "mailto:info@biblioteka.example",
        "#top",
        counted_url(1),
        counted_url(2),
        counted_url(3),
    ]
    calendar, logo, again = relinked.links
    assert (calendar.url, calendar.text, calendar.section) == (
        "https://renginiai.example/?a=1&b=2",
        "Renginių kalendorius",
        "Renginiai",
    )
    assert (logo.text, logo.sponsor, logo.section) == ("TEO logotipas", "TEO LT, AB", "Rėmėjai")
    assert again.sponsor == "TEO LT, AB"  # the same address credits the same sponsor
    assert relinked.text == f"Jūsų: {personal}\nKalendorius: {counted_url(1)}.\n"
    assert not is_counted(personal)
    assert not is_counted("javascript:alert(1)")
