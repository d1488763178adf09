"""Issue files written from the browser: names, front matter, guarded atomic saves."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.compose.issue import read_issue
from newsletter.web import issue_files

DATE = dt.date(2026, 12, 1)


def test_the_slug_transliterates_lithuanian_letters_after_the_date() -> None:
    subject = "Ąžuolų ČĘĖ įšŲŪž: žiemos šventės bibliotekose!"
    assert issue_files.base_slug(subject, DATE) == (
        "2026-12-01-azuolu-cee-isuuz-ziemos-sventes-bibliotekose"
    )


def test_a_subject_without_letters_gives_the_date_alone() -> None:
    assert issue_files.base_slug("!!! ??? ", DATE) == "2026-12-01"


def test_a_taken_name_gets_a_suffix_and_nothing_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "2026-12-01-zinios.md").write_text("pirmas\n", encoding="utf-8")
    second = issue_files.create(tmp_path, "2026-12-01-zinios", "antras\n")
    third = issue_files.create(tmp_path, "2026-12-01-zinios", "trečias\n")
    assert [second.name, third.name] == ["2026-12-01-zinios-2.md", "2026-12-01-zinios-3.md"]
    assert (tmp_path / "2026-12-01-zinios.md").read_text(encoding="utf-8") == "pirmas\n"
    assert third.read_text(encoding="utf-8") == "trečias\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2026-12-01-zinios-2.md",
        "2026-12-01-zinios-3.md",
        "2026-12-01-zinios.md",
    ]


def test_the_front_matter_reads_back_as_the_form_gave_it(tmp_path: Path) -> None:
    subject = 'Tema: su dvitaškiu, "kabutėmis" ir # ženklu'
    text = issue_files.front_matter(subject, "Įžanga", DATE, "en", ["main"]) + "Tekstas\n"
    path = tmp_path / "x.md"
    path.write_text(text, encoding="utf-8")
    source = read_issue(path)
    assert source.front == {
        "subject": subject,
        "preheader": "Įžanga",
        "date": DATE,
        "lang": "en",
        "template": "default",
        "sponsors": ["main"],
    }


def test_a_save_replaces_the_version_it_was_loaded_from(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text("senas\n", encoding="utf-8")
    replaced = issue_files.save(path, "naujas\n", issue_files.digest("senas\n"))
    assert path.read_text(encoding="utf-8") == "naujas\n"
    assert replaced == "senas\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.md"]  # no temporary file left


def test_a_save_against_a_changed_file_is_refused_with_its_text(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text("kito redaktoriaus\n", encoding="utf-8")
    with pytest.raises(issue_files.SaveConflict) as refused:
        issue_files.save(path, "mano\n", issue_files.digest("senas\n"))
    assert refused.value.current == "kito redaktoriaus\n"
    assert path.read_text(encoding="utf-8") == "kito redaktoriaus\n"


def test_a_link_inside_the_folder_keeps_pointing_at_the_saved_file(tmp_path: Path) -> None:
    target = tmp_path / "tikras.md"
    target.write_text("senas\n", encoding="utf-8")
    link = tmp_path / "nuoroda.md"
    link.symlink_to(target.name)
    issue_files.save(link, "naujas\n", issue_files.digest("senas\n"))
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "naujas\n"


def test_form_line_breaks_become_the_files() -> None:
    assert issue_files.normalise("a\r\nb\r\n\r\n") == "a\nb\n"
