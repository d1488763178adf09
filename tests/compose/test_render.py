"""The rendering pipeline: Markdown to sanitised, responsive, inlined HTML and plain text."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from newsletter.compose.issue import compile_file
from newsletter.compose.render import CompiledIssue, sample_values
from newsletter.settings import Settings
from tests.compose.conftest import ROOT, WriteIssue, links, parse

BASE = "https://naujienos.bibliotekos-pazangai.example"


def compiled_sample(settings: Settings) -> CompiledIssue:
    return compile_file(ROOT / "issues" / "2026-12-remejai-ir-partneriai.md", settings)


def test_document_is_lithuanian_responsive_and_has_a_hidden_preheader(settings: Settings) -> None:
    compiled = compiled_sample(settings)
    root = parse(compiled.html)
    assert compiled.html.startswith("<!doctype html>")
    assert root.get("lang") == "lt"
    assert root.findtext(".//title") == "Dėkojame rėmėjams ir partneriams"
    hidden = [
        div
        for div in root.iter("div")
        if "display:none" in (div.get("style") or "").replace(" ", "")
    ]
    assert hidden and compiled.preheader in hidden[0].text_content()
    # Everything in the body sits in one main landmark, the preheader first in it.
    (main,) = root.body
    assert main.get("role") == "main"
    assert main.find_class("nl-preheader") == [hidden[0]]
    assert "max-width:600px" in compiled.html.replace(" ", "")
    styles = " ".join(style.text or "" for style in root.iter("style"))
    assert "@media only screen and (min-width:480px)" in styles.replace(": ", ":")
    assert "!important" in styles  # kept, or phones would not get the single column
    assert "prefers-color-scheme: dark" in styles
    metas = {meta.get("name"): meta.get("content") for meta in root.iter("meta")}
    assert metas["color-scheme"] == "light dark"


def test_css_is_inlined(settings: Settings) -> None:
    root = parse(compiled_sample(settings).html)
    heading = next(h for h in root.iter("h2") if "Parama" in h.text_content())
    assert "color:#123f3a" in heading.get("style", "").replace(" ", "")


def test_no_font_links_and_no_network_while_compiling(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, templates_copy: tuple[Path, Settings]
) -> None:
    folder, settings = templates_copy
    layout = folder / "layout.mjml.j2"
    # A template that asks for a web font: MJML writes a <link rel=stylesheet> for it.
    layout.write_text(
        layout.read_text(encoding="utf-8").replace(
            "<mj-head>",
            '<mj-head><mj-font name="Roboto" href="https://fonts.googleapis.com/css?family=Roboto" />'
            '<mj-attributes><mj-text font-family="Roboto, Arial" /></mj-attributes>',
        ),
        encoding="utf-8",
    )
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network is not allowed while compiling")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    compiled = compile_file(ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md", settings)
    assert attempts == []
    assert "fonts.googleapis.com" in compiled.html  # left for the mail client, not fetched


def test_default_templates_link_no_stylesheet(settings: Settings) -> None:
    html = compiled_sample(settings).html
    assert "<link" not in html
    assert "@import" not in html
    assert "fonts.googleapis.com" not in html


def test_script_event_handlers_javascript_iframes_and_forms_are_removed(
    settings: Settings, write_issue: WriteIssue
) -> None:
    body = (
        "Tekstas <script>alert('a')</script> ir <img src=x onerror=\"alert('b')\" alt=\"x\">\n\n"
        "[nuoroda](javascript:alert('c')) <a href=\"javascript:alert('d')\">kita</a>\n\n"
        '<iframe src="https://evil.example"></iframe>\n\n'
        '<form action="https://evil.example"><input name="p"></form>\n\n'
        '<p onclick="alert(\'e\')" style="position:fixed">pastraipa</p>\n'
    )
    compiled = compile_file(write_issue(body), settings)
    root = parse(compiled.html)
    assert not list(root.iter("script", "iframe", "form", "input"))
    for element in root.iter():
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            assert "javascript:" not in value.lower()
    assert "pastraipa" in compiled.html
    # markdown-it refuses the javascript: link and shows it as text: harmless, and visible.
    shown = root.text_content()
    assert "alert('a')" not in shown and "alert('b')" not in shown and "alert('e')" not in shown
    assert "[nuoroda](javascript:alert('c'))" in shown
    assert "kita" in [a.text for a in root.iter("a")]


def test_jinja_in_the_body_is_shown_literally(settings: Settings, write_issue: WriteIssue) -> None:
    body = "Šablonas {{ 7 * 7 }} ir {% for x in range(3) %}kartas{% endfor %} bei {{ config }}.\n"
    compiled = compile_file(write_issue(body), settings)
    html, text = compiled.personalise(sample_values(BASE))
    content = parse(html).text_content()
    assert "{{ 7 * 7 }}" in content
    assert "{% for x in range(3) %}kartas{% endfor %}" in content
    assert "49" not in content
    assert "{{ 7 * 7 }}" in text and "kartaskartas" not in text


def test_text_part_keeps_lithuanian_letters_and_lists_links(
    settings: Settings, write_issue: WriteIssue
) -> None:
    long_url = "https://bibliotekos-pazangai.example/" + "labai-ilgas-kelias/" * 8 + "?a=1&b=2"
    body = (
        "Ąžuolas, čiobrelis, ęsą, ėjo, įėjimas, šaltinis, ųsas, ūkis, žiema. "
        f"Žr. [ilgą nuorodą]({long_url}) ir [kitą](https://lrt.lt/naujienos).\n\n"
        + "Labai ilgas sakinys be pabaigos " * 12
        + f"{long_url}\n"
    )
    compiled = compile_file(write_issue(body), settings)
    _html, text = compiled.personalise(sample_values(BASE))
    assert "Ąžuolas, čiobrelis, ęsą, ėjo, įėjimas, šaltinis, ųsas, ūkis, žiema" in text
    number = re.search(r"ilgą nuorodą \[(\d+)\]", text)
    assert number
    assert f"\n[{number.group(1)}] {long_url}\n" in text
    for line in text.splitlines():
        if "labai-ilgas" in line:
            assert long_url in line, line  # the URL is on one line, never broken
    assert "Dėkojame rėmėjams ir partneriams" in text
    assert "Atsisakyti prenumeratos: https://" in text


def test_relative_links_and_images_become_absolute(
    settings: Settings, write_issue: WriteIssue
) -> None:
    body = "[Archyvas](/archive) ir ![Logotipas](static/logo.png) bei [žymė](#apacia)\n"
    compiled = compile_file(write_issue(body), settings)
    root = parse(compiled.html)
    assert links(root)["Archyvas"] == f"{BASE}/archive"
    assert links(root)["žymė"] == "#apacia"
    image = next(img for img in root.iter("img") if img.get("alt") == "Logotipas")
    assert image.get("src") == f"{BASE}/static/logo.png"
    assert f"{BASE}/archive" in compiled.text


def test_tables_and_strikethrough(settings: Settings, write_issue: WriteIssue) -> None:
    body = "| Veikla | Kiek |\n|:--|--:|\n| Renginiai | 10 |\n\n~~senas~~ naujas\n"
    root = parse(compile_file(write_issue(body), settings).html)
    cells = [td.text_content() for td in root.iter("td") if td.text_content() in ("10",)]
    assert cells == ["10"]
    right = next(td for td in root.iter("td") if td.text_content() == "10")
    assert "text-align:right" in right.get("style", "").replace(" ", "")
    assert [s.text for s in root.iter("s")] == ["senas"]


def test_english_issue_uses_english_template_words(
    settings: Settings, write_issue: WriteIssue
) -> None:
    front = "---\nsubject: Thank you, sponsors and partners\nlang: en\ndate: 2026-12-01\n---\n"
    compiled = compile_file(write_issue("Hello.\n", front=front), settings)
    html, text = compiled.personalise(sample_values(BASE, "en"))
    root = parse(html)
    assert root.get("lang") == "en"
    assert "Unsubscribe" in links(root)
    assert "Thank you to our sponsors and partners" in root.text_content()
    assert "1 December 2026" in root.text_content()
    assert "Atsisakyti" not in html and "Unsubscribe: https://" in text


def test_lithuanian_footer_carries_address_reason_and_three_links(settings: Settings) -> None:
    compiled = compiled_sample(settings)
    values = sample_values(BASE)
    html, _text = compiled.personalise(values)
    root = parse(html)
    found = links(root)
    assert found["Atsisakyti prenumeratos"] == values["unsubscribe_url"]
    assert found["Keisti nustatymus"] == values["preferences_url"]
    assert found["Žiūrėti naršyklėje"] == values["view_url"]
    content = root.text_content()
    assert settings.postal_address in content
    assert settings.organisation in content
    assert f"Šį laišką gavote, nes adresas {values['email']} įtrauktas" in content
    assert "2026 m. gruodžio 1 d." in content


def test_round_trip_through_a_dict_keeps_everything(settings: Settings) -> None:
    compiled = compiled_sample(settings)
    data = compiled.to_dict()
    assert all(isinstance(value, str) for value in data.values())
    again = CompiledIssue.from_dict(data)
    assert again == compiled
    values = sample_values(BASE)
    assert again.personalise(values) == compiled.personalise(values)
    assert compiled.slug == "2026-12-remejai-ir-partneriai"
    assert compiled.date == "2026-12-01"


def test_compiling_again_adds_no_log_handlers(settings: Settings) -> None:
    import cssutils

    compiled_sample(settings)
    handlers = len(cssutils.log._log.handlers)
    for _ in range(3):
        compiled_sample(settings)
    assert len(cssutils.log._log.handlers) == handlers
