"""Preflight lint: each rule trips on its own fixture; the sample issues pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.cli.core import main
from newsletter.compose.lint import Finding, lint_file
from newsletter.compose.slots import end_if, if_set, slot
from newsletter.settings import Settings
from tests.compose.conftest import FRONT, ROOT, WriteIssue

SAMPLES = sorted((ROOT / "issues").glob("*.md"))
# FRONT is three lines and the closing '---': the body starts on line 5.
BODY_CASES = [
    pytest.param("![](https://example.lt/a.png)\n", "error", 5,
                 "image 'https://example.lt/a.png' has no alt text", id="image-without-alt"),
    pytest.param('Tekstas\n\n<img src="https://example.lt/b.png">\n', "error", 7,
                 "image 'https://example.lt/b.png' has no alt text", id="raw-image-without-alt"),
    pytest.param("Žr. [LRT](www.lrt.lt/naujienos)\n", "error", 5,
                 "relative link 'www.lrt.lt/naujienos' cannot be made absolute: it looks like "
                 "a web address without https://", id="bare-domain"),
    pytest.param("Žr.\n[vietinis](http://localhost:8000/a)\n", "error", 6,
                 "link to localhost: http://localhost:8000/a", id="localhost"),
    pytest.param("Žr. ![Schema](http://127.0.0.1/s.png)\n", "error", 5,
                 "image to localhost: http://127.0.0.1/s.png", id="localhost-image"),
    pytest.param("Sveiki, {{ vardas }}!\n", "error", 5,
                 "unresolved placeholder '{{ vardas }}'", id="jinja-placeholder"),
    pytest.param("Sveiki, *|FNAME|*!\n", "error", 5,
                 "unresolved placeholder '*|FNAME|*'", id="mailchimp-placeholder"),
    pytest.param(f"Sveiki, {slot('pareigos')}!\n", "error", 5,
                 f"unresolved placeholder '{slot('pareigos')}'", id="unknown-slot"),
    pytest.param(f"Pirma.\n\nSveiki{if_set('name')}, Jonai!\n", "error", 7,
                 f"{if_set('name')!r} opens a region that is never closed", id="unclosed-region"),
    pytest.param(f"Sveiki!{end_if('name')}\n", "error", 5,
                 f"{end_if('name')!r} closes no region opened before it", id="unopened-region"),
    pytest.param("Pirma.\n\nRenginys vyks TK mieste.\n", "error", 7,
                 "'TK' marker left in the text: fill it in before sending", id="tk"),
    pytest.param("Žr. [svetainę](http://example.lt)\n", "warning", 5,
                 "link uses http://, not https://: http://example.lt", id="http-link"),
    pytest.param("![Schema](http://example.lt/s.png)\n", "warning", 5,
                 "image uses http://, not https://: http://example.lt/s.png", id="http-image"),
    pytest.param("Žr. [](https://example.lt)\n", "warning", 5,
                 "link to https://example.lt has no text", id="empty-link-text"),
    pytest.param("[Spauskite čia](https://example.lt)\n", "warning", 5,
                 "link text 'Spauskite čia' says nothing about where it leads", id="spauskite-cia"),
    pytest.param("[click here](https://example.lt)\n", "warning", 5,
                 "link text 'click here' says nothing about where it leads", id="click-here"),
    pytest.param("## Dalis\n\n#### Smulkmena\n", "warning", 7,
                 "heading level skipped: h2 is followed by h4", id="skipped-heading"),
    pytest.param("Tekstas\n<script>alert(1)</script>\n", "warning", 6,
                 "<script> is removed from the email, with its content", id="script-removed"),
]  # fmt: skip


def finding_lines(findings: list[Finding]) -> list[str]:
    return [str(f) for f in findings]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_issues_lint_clean(path: Path, settings: Settings) -> None:
    assert lint_file(path, settings) == []


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_issues_have_no_errors_on_the_default_base_url(
    path: Path, settings: Settings
) -> None:
    local = settings.replace(base_url="http://127.0.0.1:8000")
    assert [f for f in lint_file(path, local) if f.severity == "error"] == []


@pytest.mark.parametrize(("body", "severity", "line", "message"), BODY_CASES)
def test_each_rule_trips_at_its_line(
    settings: Settings, write_issue: WriteIssue, body: str, severity: str, line: int, message: str
) -> None:
    path = write_issue(body)
    assert finding_lines(lint_file(path, settings)) == [f"{severity} {path}:{line}: {message}"]


def test_relative_link_against_a_localhost_base_url_is_an_error(
    settings: Settings, write_issue: WriteIssue
) -> None:
    path = write_issue("[Archyvas](/archive)\n")
    assert lint_file(path, settings) == []
    local = settings.replace(base_url="http://127.0.0.1:8000")
    assert finding_lines(lint_file(path, local)) == [
        f"error {path}:5: link to localhost (relative, against NEWSLETTER_BASE_URL): "
        "http://127.0.0.1:8000/archive"
    ]


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("Trumpa", "subject is 6 characters; write at least 10"),
        ("Labai " * 14, "subject is 83 characters; inboxes cut it after 78"),
    ],
)
def test_subject_length_warnings(
    settings: Settings, write_issue: WriteIssue, subject: str, message: str
) -> None:
    path = write_issue(front=f"---\npreheader: Trumpai\nsubject: {subject}\n---\n")
    assert finding_lines(lint_file(path, settings)) == [f"warning {path}:3: {message}"]


def test_missing_preheader_is_a_warning(settings: Settings, write_issue: WriteIssue) -> None:
    path = write_issue(front="---\nsubject: Bandomasis numeris apie bibliotekas\n---\n")
    assert finding_lines(lint_file(path, settings)) == [
        f"warning {path}:1: no preheader: inboxes will show the first words of the email instead"
    ]


def test_email_over_102_kb_is_an_error(settings: Settings, write_issue: WriteIssue) -> None:
    paragraph = "Bibliotekos keičiasi: " + "naujos paslaugos, kursai ir renginiai. " * 12
    path = write_issue("\n\n".join([paragraph] * 250) + "\n")
    findings = lint_file(path, settings)
    assert len(findings) == 1
    assert findings[0].severity == "error" and findings[0].line == 1
    assert findings[0].message.endswith("KB; Gmail clips emails over 102 KB")


def test_missing_unsubscribe_link_is_an_error(
    write_issue: WriteIssue, templates_copy: tuple[Path, Settings]
) -> None:
    folder, settings = templates_copy
    footer = folder / "footer.mjml.j2"
    text = footer.read_text(encoding="utf-8")
    footer.write_text(text.replace("{{ ph.unsubscribe_url }}", "https://example.lt"), "utf-8")
    path = write_issue()
    assert finding_lines(lint_file(path, settings)) == [
        f"error {path}:1: no unsubscribe link: the template must link to the unsubscribe URL"
    ]


def test_relative_link_in_a_template_is_an_error(
    write_issue: WriteIssue, templates_copy: tuple[Path, Settings]
) -> None:
    folder, settings = templates_copy
    header = folder / "header.mjml.j2"
    text = header.read_text(encoding="utf-8")
    header.write_text(text.replace("{{ organisation }}", '<a href="apie">Apie</a>', 1), "utf-8")
    path = write_issue()
    assert finding_lines(lint_file(path, settings)) == [
        f"error {path}:1: template link 'apie' is relative and cannot be made absolute"
    ]


def test_cli_prints_one_line_per_finding_and_exits_1_on_error(
    cli_env: Path, write_issue: WriteIssue, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_issue("## Dalis\n\n#### Smulkmena\n\n![](https://example.lt/a.png)\n")
    assert main(["lint", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"warning {path}:7: heading level skipped: h2 is followed by h4",
        f"error {path}:9: image 'https://example.lt/a.png' has no alt text",
    ]


def test_cli_json_and_exit_0_for_warnings_only(
    cli_env: Path, write_issue: WriteIssue, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_issue("[click here](https://example.lt)\n")
    assert main(["lint", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "severity": "warning",
            "file": str(path),
            "line": 5,
            "message": "link text 'click here' says nothing about where it leads",
        }
    ]


def test_cli_lints_the_samples_clean(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", *map(str, SAMPLES)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["lint", "--json", *map(str, SAMPLES)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_front_matter_keeps_its_lines(settings: Settings, write_issue: WriteIssue) -> None:
    path = write_issue("Tekstas.\n", front=FRONT.replace("preheader", "# pastaba\npreheader"))
    assert lint_file(path, settings) == []
