"""Templates are read only from inside the templates folder; a named issue file from anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from newsletter.cli.core import main
from newsletter.compose.issue import compile_file
from newsletter.errors import IssueError
from newsletter.settings import Settings
from tests.compose.conftest import FRONT, WriteIssue

SECRET = "SLAPTAS-TEKSTAS-UZ-APLANKO"


def _outside_set(folder: Path, tmp_path: Path) -> Path:
    """A copy of the template set outside the templates folder, its footer marked."""
    outside = tmp_path / "outside"
    shutil.copytree(folder, outside)
    footer = outside / "footer.mjml.j2"
    footer.write_text(footer.read_text("utf-8") + f"<mj-text>{SECRET}</mj-text>\n", "utf-8")
    return outside


def test_a_template_linked_out_of_the_templates_folder_is_one_line(
    cli_env: Path,
    write_issue: WriteIssue,
    templates_copy: tuple[Path, Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, settings = templates_copy
    outside = _outside_set(folder, tmp_path)
    footer = folder / "footer.mjml.j2"
    footer.unlink()
    footer.symlink_to(outside / "footer.mjml.j2")
    monkeypatch.setenv("NEWSLETTER_TEMPLATES_DIR", str(settings.templates_dir))
    assert main(["render", str(write_issue())]) == 65
    err = capsys.readouterr().err
    assert err == f"error: {footer}: is a link that leads outside {settings.templates_dir}\n"
    assert not list(cli_env.glob("out/*"))


def test_a_template_set_linked_out_of_the_templates_folder_is_refused(
    write_issue: WriteIssue, templates_copy: tuple[Path, Settings], tmp_path: Path
) -> None:
    folder, settings = templates_copy
    (settings.templates_dir / "svetimas").symlink_to(_outside_set(folder, tmp_path))
    issue = write_issue(front=FRONT.replace("---\n", "---\ntemplate: svetimas\n", 1))
    with pytest.raises(IssueError) as refused:
        compile_file(issue, settings)
    assert str(refused.value) == (
        f"{settings.templates_dir / 'svetimas'}: is a link that leads outside "
        f"{settings.templates_dir}"
    )


def test_links_within_the_templates_folder_are_followed(
    write_issue: WriteIssue, templates_copy: tuple[Path, Settings]
) -> None:
    folder, settings = templates_copy
    (settings.templates_dir / "kitas").symlink_to(folder)
    issue = write_issue(front=FRONT.replace("---\n", "---\ntemplate: kitas\n", 1))
    assert "Bandomasis numeris" in compile_file(issue, settings).html


@pytest.mark.parametrize("statement", ["include '{}'", "extends '{}'", "import '{}' as x"])
def test_a_template_cannot_reach_past_its_own_set(
    write_issue: WriteIssue, templates_copy: tuple[Path, Settings], statement: str
) -> None:
    folder, settings = templates_copy
    tag = "{% " + statement.format("../../../etc/hostname") + " %}\n"
    (folder / "content.mjml.j2").write_text(tag, "utf-8")
    with pytest.raises(IssueError, match=r"template \.\./\.\./\.\./etc/hostname is missing"):
        compile_file(write_issue(), settings)


def test_an_issue_named_on_the_command_line_is_read_wherever_it_is(
    write_issue: WriteIssue, settings: Settings, tmp_path: Path
) -> None:
    # The person at the shell chose the file (and could read it anyway); only the web
    # editor, which lists the issues folder for others, keeps to it (tests/web).
    target = write_issue("Tekstas iš kito aplanko.\n")
    alias = tmp_path / "nuoroda.md"
    alias.symlink_to(target)
    assert "Tekstas iš kito aplanko." in compile_file(alias, settings).html
