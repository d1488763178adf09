"""The subscribers and lists commands, run through the real command line."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from newsletter.cli.core import main
from tests.audience import workbooks

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def run(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):  # type: ignore[no-untyped-def]
    """Run ``newsletter ARGS…`` against the test database; return (exit code, stdout, stderr)."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSLETTER_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-secret-key-0123456789abcdef")

    def invoke(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def _count(out: str, label: str) -> int:
    line = next(line for line in out.splitlines() if line.split()[:1] == [label])
    return int(line.split()[1])


def test_import_reports_counts_and_rejected_lines(run) -> None:  # type: ignore[no-untyped-def]
    path = str(FIXTURES / "header_injection.csv")
    code, out, err = run(
        "subscribers", "import", path, "--list", "savivaldybes", "--name", "Savivaldybės"
    )
    assert (code, err) == (0, "")
    assert "list savivaldybes (new list)" in out
    assert [
        _count(out, k) for k in ("added", "updated", "unchanged", "suppressed", "rejected")
    ] == [2, 0, 0, 0, 5]
    assert "line 3: control character (such as a line break) in name" in out
    code, out, _ = run("subscribers", "import", path, "--list", "savivaldybes")
    assert (_count(out, "added"), _count(out, "unchanged")) == (0, 2)
    code, out, _ = run("lists")
    assert code == 0 and "savivaldybes" in out and "Savivaldybės" in out


def test_dry_run_and_sync_are_reported(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("subscribers", "import", str(FIXTURES / "utf8_comma.csv"), "--list", "savivaldybes")
    one = tmp_path / "one.csv"
    one.write_text("El. paštas\njonas.petraitis@kaunas.example\n", encoding="utf-8")
    code, out, _ = run(
        "subscribers", "import", str(one), "--list", "savivaldybes", "--sync", "--dry-run"
    )
    assert code == 0 and _count(out, "removed") == 2 and "dry run: nothing was changed" in out
    assert "would leave: ona.zemaitiene@siauliai.example, ruta@druskininkai.example" in out, out
    code, out, _ = run("subscribers", "import", str(one), "--list", "savivaldybes", "--sync")
    assert _count(out, "removed") == 2 and "dry run" not in out


def test_bad_files_and_names_are_one_line_errors(run) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("subscribers", "import", str(FIXTURES / "undecodable.csv"), "--list", "x")
    assert code == 65 and "Traceback" not in err
    assert (
        err.strip().startswith("error: ") and "undecodable.csv:2: the file is neither UTF-8" in err
    )
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(
        "subscribers", "import", str(FIXTURES / "utf8_comma.csv"), "--list", "Bad Slug"
    )
    assert code == 65 and "list slug 'Bad Slug' must be" in err
    code, _, err = run("subscribers", "unsubscribe", "nobody@kaunas.example")
    assert (code, err.strip()) == (66, "error: no subscriber nobody@kaunas.example")
    code, _, err = run("subscribers", "export", "ne adresas")
    assert code == 65 and "invalid email address" in err


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Savivaldybės " * 20, "longer than 200 characters"),
        ("Sąrašas\nBcc: x", "control character"),
    ],
)
def test_a_bad_list_name_is_a_one_line_error(run, name: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = str(FIXTURES / "utf8_comma.csv")
    code, out, err = run("subscribers", "import", path, "--list", "savivaldybes", "--name", name)
    assert (code, out) == (65, "")
    assert err.startswith("error: list name ") and reason in err
    assert len(err.strip().splitlines()) == 1
    assert "no lists yet" in run("lists")[1]


def test_unsubscribe_export_and_erase(run) -> None:  # type: ignore[no-untyped-def]
    run("subscribers", "import", str(FIXTURES / "utf8_comma.csv"), "--list", "savivaldybes")
    code, out, _ = run(
        "subscribers", "unsubscribe", "JONAS.petraitis@kaunas.example", "--list", "savivaldybes"
    )
    assert (code, out.strip()) == (
        0,
        "jonas.petraitis@kaunas.example unsubscribed from list savivaldybes",
    )
    code, out, _ = run(
        "subscribers", "unsubscribe", "jonas.petraitis@kaunas.example", "--list", "savivaldybes"
    )
    assert "was already unsubscribed from list savivaldybes" in out
    code, _, err = run(
        "subscribers", "unsubscribe", "jonas.petraitis@kaunas.example", "--list", "nera"
    )
    assert (code, err.strip()) == (66, "error: no list 'nera'; lists: savivaldybes")
    code, out, _ = run("subscribers", "export", "jonas.petraitis@kaunas.example")
    exported = json.loads(out)
    assert exported["profile"]["name"] == "Jonas Petraitis"
    assert [e["kind"] for e in exported["consent_events"]] == ["import", "unsubscribe"]

    code, _, err = run("subscribers", "erase", "jonas.petraitis@kaunas.example", stdin="n\n")
    assert (code, err.strip()) == (130, "aborted")
    code, out, _ = run("subscribers", "erase", "jonas.petraitis@kaunas.example", stdin="y\n")
    assert code == 0 and "subscriber data deleted" in out
    code, out, _ = run("subscribers", "export", "jonas.petraitis@kaunas.example")
    assert json.loads(out)["profile"] is None
    code, out, _ = run("subscribers", "erase", "nobody@kaunas.example", "--yes")
    assert code == 0 and "no subscriber data was held" in out
    code, out, _ = run("subscribers", "unsubscribe", "ruta@druskininkai.example")
    assert out.strip() == "ruta@druskininkai.example unsubscribed from all lists"
    code, out, _ = run("lists")
    assert "│ 1 " in out  # one active member left


def test_lists_when_there_are_none(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("lists")
    assert code == 0 and "no lists yet" in out


def test_a_terminal_gets_a_progress_bar(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    from newsletter.cli import audience as commands

    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=100)
    monkeypatch.setattr(commands, "err_console", console)
    code, out, _ = run("subscribers", "import", str(FIXTURES / "utf8_comma.csv"), "--list", "x")
    assert code == 0 and "added" in out
    shown = terminal.getvalue()
    assert "reading the file" in shown or "adding memberships" in shown or "finishing" in shown
    assert "━" in shown  # the bar itself


def test_pathological_workbooks_import_fast_or_are_one_line_errors(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stretched = workbooks.stretched_used_range(tmp_path / "stretched.xlsx")
    code, out, _ = run("subscribers", "import", str(stretched), "--list", "x")
    assert code == 0 and _count(out, "added") == 3 and "stopped reading" not in out
    formatted = workbooks.with_sheet(tmp_path / "f.xlsx", workbooks.formatted_rows(1500, 10))
    code, out, _ = run("subscribers", "import", str(formatted), "--list", "x")
    assert code == 0 and _count(out, "unchanged") == 3
    assert (
        "stopped reading at line 1004, the last of 1,000 empty rows in a row; "
        "rows below it, if any, were not read"
    ) in out
    bomb = workbooks.zip_bomb(tmp_path / "bomb.xlsx", gigabytes=1)
    code, out, err = run("subscribers", "import", str(bomb), "--list", "x")
    assert (code, out) == (65, "")
    assert err == (
        f"error: {bomb}: the workbook unpacks to 1,000 MB, more than the 500 MB a list file "
        "may; delete formatted empty rows and columns beyond the list, or save it as CSV\n"
    )


def test_lists_show_bounced_counts_and_the_last_import(run, database_url: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from newsletter import db
    from newsletter.models import Subscriber

    run("subscribers", "import", str(FIXTURES / "utf8_comma.csv"), "--list", "savivaldybes")
    with db.transaction(database_url) as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == "jonas.petraitis@kaunas.example")
            .values(status="bounced")
        )
    code, out, _ = run("lists")
    lines = out.splitlines()
    names = [cell.strip() for cell in next(line for line in lines if "bounced" in line).split("┃")]
    cells = [cell.strip() for cell in next(line for line in lines if "│ sav" in line).split("│")]
    assert code == 0
    assert (cells[names.index("active")], cells[names.index("bounced")]) == ("2", "1")
    last = next(line for line in lines if line.startswith("savivaldybes: last import"))
    assert "by command line, utf8_comma.csv, sha256 " in last
    assert last.endswith(": 3 added, 0 updated, 0 unchanged, 0 suppressed, 0 removed, 0 rejected")


def test_lists_are_created_renamed_and_archived_from_the_command_line(run) -> None:  # type: ignore[no-untyped-def]
    assert run("lists", "create", "partneriai", "--name", "Partneriai", "--public")[0] == 0
    code, _, err = run("lists", "create", "partneriai", "--name", "Kiti")
    assert code == 65 and err.strip() == "error: slug: a list 'partneriai' exists already"
    assert run("lists", "rename", "partneriai", "Rėmėjai ir partneriai")[0] == 0
    assert run("lists", "archive", "partneriai")[0] == 0
    code, out, _ = run("lists")
    assert code == 0 and "Rėmėjai" in out and "(archived)" in out
    assert run("lists", "archive", "partneriai", "--undo")[0] == 0
    assert "(archived)" not in run("lists")[1]
    code, _, err = run("lists", "archive", "nera")
    assert code == 66 and err.strip() == "error: no list 'nera'"
