"""Bad issue files: one line naming file:line and what is wrong, a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.cli.core import main
from newsletter.settings import Settings
from tests.compose.conftest import WriteIssue

GOOD = "subject: Bandomasis numeris apie bibliotekas\n"

CASES = [
    pytest.param("# Labas\n\nTekstas.\n", 1,
                 "missing front matter: the file must start with a '---' line", id="no-front-matter"),
    pytest.param(f"---\n{GOOD}# Labas\n", 1,
                 "front matter is not closed: add a '---' line after it", id="unclosed"),
    pytest.param(f"---\n{GOOD}preheader: [neuždarytas\n---\nTekstas.\n", 3,
                 "invalid YAML in front matter:", id="invalid-yaml"),
    pytest.param("---\n- vienas\n- du\n---\nTekstas.\n", 2,
                 "front matter must be 'key: value' lines", id="not-a-mapping"),
    pytest.param(f"---\n{GOOD}preheder: Trumpai\n---\nTekstas.\n", 3,
                 "unknown front-matter key 'preheder'; did you mean 'preheader'?", id="unknown-key"),
    pytest.param("---\npreheader: Trumpai\n---\nTekstas.\n", 1,
                 "missing required front-matter key 'subject'", id="missing-subject"),
    pytest.param("---\nsubject: ''\n---\nTekstas.\n", 2, "'subject' is empty", id="empty-subject"),
    pytest.param('---\nsubject: "Bandomasis\\e[31m numeris"\n---\nTekstas.\n', 2,
                 "'subject' contains the control character U+001B", id="control-character"),
    pytest.param(f"---\n{GOOD}sponsors: [main, swedbnk]\n---\nTekstas.\n", 3,
                 "unknown sponsor or tier 'swedbnk' in 'sponsors'; did you mean 'swedbank'?",
                 id="unknown-sponsor"),
    pytest.param(f"---\n{GOOD}---\nPirma.\nAntra \x1b[31m.\n", 5,
                 "control character U+001B in column 7: remove it", id="control-in-body"),
    pytest.param(f"---\n{GOOD}---\n\n   \n", 4,
                 "the issue has no body after the front matter", id="empty-body"),
    pytest.param(f"---\n{GOOD}lang: ru\n---\nTekstas.\n", 3,
                 "'lang' must be one of lt, en, not 'ru'", id="unknown-lang"),
    pytest.param(f"---\n{GOOD}date: gruodžio 1\n---\nTekstas.\n", 3,
                 "'date' must look like 2026-12-01, not 'gruodžio 1'", id="bad-date"),
    pytest.param(f"---\n{GOOD}date: 2026-13-01\n---\nTekstas.\n", 3,
                 "invalid value in front matter: month must be in 1..12", id="impossible-date"),
    pytest.param(f"---\n{GOOD}preheader: Trumpai\ndate: 2026-02-30\n---\nTekstas.\n", 4,
                 "invalid value in front matter: day is out of range for month",
                 id="impossible-day"),
    pytest.param(f"---\n{GOOD}template: naujas\n---\nTekstas.\n", 3,
                 "unknown template 'naujas'; available: default", id="unknown-template"),
    pytest.param(f"---\n{GOOD}{GOOD}---\nTekstas.\n", 3,
                 "key 'subject' appears twice in front matter", id="duplicate-key"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "message"), CASES)
def test_bad_issue_gives_one_line_with_file_and_line(
    cli_env: Path,
    write_issue: WriteIssue,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    message: str,
) -> None:
    path = write_issue(raw=text)
    assert main(["render", str(path)]) == 65
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: {path}:{line}: {message}"), lines[0]
    assert not (cli_env / "out").exists()


def test_file_that_is_not_utf8_names_the_line(
    cli_env: Path, write_issue: WriteIssue, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"---\n{GOOD}---\nPirma eilutė.\nAntra: ".encode() + "žiema\n".encode("cp1257")
    path = write_issue(raw=text)
    assert main(["render", str(path)]) == 65
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}:5: not UTF-8 text (save the file as UTF-8)"


def test_missing_file_is_one_line(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "nera.md"]) == 65
    assert capsys.readouterr().err.strip() == "error: nera.md: no such issue file"


def test_unreadable_file_is_one_line(
    cli_env: Path, write_issue: WriteIssue, capsys: pytest.CaptureFixture[str]
) -> None:
    inside_a_file = write_issue() / "kitas.md"  # any OSError, here "Not a directory"
    assert main(["render", str(inside_a_file)]) == 65
    assert (
        capsys.readouterr().err.strip()
        == f"error: {inside_a_file}: cannot be read: Not a directory"
    )


def test_lint_reports_a_bad_file_as_an_error_finding(
    cli_env: Path, write_issue: WriteIssue, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_issue(raw=f"---\n{GOOD}sponsors: [niekas]\n---\nTekstas.\n")
    assert main(["lint", str(path)]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"error {path}:3: unknown sponsor or tier 'niekas' in 'sponsors'")


def test_template_syntax_error_names_the_template_and_line(
    cli_env: Path,
    write_issue: WriteIssue,
    templates_copy: tuple[Path, Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, settings = templates_copy
    monkeypatch.setenv("NEWSLETTER_TEMPLATES_DIR", str(settings.templates_dir))
    footer = folder / "footer.mjml.j2"
    footer.write_text(footer.read_text(encoding="utf-8") + "{% if %}\n", encoding="utf-8")
    assert main(["render", str(write_issue())]) == 65
    err = capsys.readouterr().err.strip()
    lines = footer.read_text(encoding="utf-8").count("\n")
    assert err.startswith(f"error: {footer}:{lines}: template syntax:"), err


def test_templates_that_make_invalid_mjml_are_one_line(
    cli_env: Path,
    write_issue: WriteIssue,
    templates_copy: tuple[Path, Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, settings = templates_copy
    monkeypatch.setenv("NEWSLETTER_TEMPLATES_DIR", str(settings.templates_dir))
    content = folder / "content.mjml.j2"
    content.write_text("<mj-section><mj-column>\n", encoding="utf-8")
    assert main(["render", str(write_issue())]) == 65
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {folder}: the templates produce invalid MJML:"), err
    assert len(err.splitlines()) == 1
