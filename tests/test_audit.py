"""The audit log's hash chain: intact, altered, removed, and appended to concurrently."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, select, update

from newsletter import audit, db
from newsletter.cli.core import main
from newsletter.models import AuditEntry
from newsletter.settings import Settings

WRITERS = 4
APPENDS_EACH = 15


def fill(url: str, count: int = 5) -> None:
    """``count`` entries of different kinds."""
    for number in range(count):
        audit.record(
            url,
            f"redaktore{number}@bibliotekos-pazangai.example",
            "campaign.start",
            f"campaign:{number}",
            client="127.0.0.1",
            detail={"n": number, "žodis": "ąčęėįšųūž"},
        )


def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", settings.database)
    monkeypatch.setenv("NEWSLETTER_DATA_DIR", str(settings.data_dir))
    return main(list(argv))


def test_an_untouched_chain_is_intact(
    db_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(db_settings.database)
    verdict = audit.verify(db_settings.database)
    assert verdict.problem is None
    assert verdict.entries == 5
    assert run_cli(db_settings, monkeypatch, "audit", "verify") == 0
    assert capsys.readouterr().out.startswith("5 entries, chain intact")


def test_changing_one_row_makes_verify_fail_and_name_it(
    db_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(db_settings.database)
    with db.transaction(db_settings.database) as session:
        third = session.scalar(select(AuditEntry.id).where(AuditEntry.seq == 3))
        session.execute(
            update(AuditEntry).where(AuditEntry.id == third).values(actor="kazkas@kitur.example")
        )
    assert run_cli(db_settings, monkeypatch, "audit", "verify") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"audit entry 3 (id {third}) was altered: its hash does not match its content"]


def test_recomputing_the_changed_rows_hash_breaks_the_next_link(db_settings: Settings) -> None:
    fill(db_settings.database)
    with db.transaction(db_settings.database) as session:
        row = session.scalar(select(AuditEntry).where(AuditEntry.seq == 2))
        row.detail = {"n": 99}
        row.hash = audit.entry_hash(row)
    problem = audit.verify(db_settings.database).problem
    assert problem is not None and problem.startswith("audit entry 3 ")


def test_deleting_a_row_is_caught(db_settings: Settings) -> None:
    fill(db_settings.database)
    with db.transaction(db_settings.database) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    problem = audit.verify(db_settings.database).problem
    assert problem is not None and problem.startswith("audit entry 2 was removed")


def test_concurrent_appends_keep_one_chain(db_settings: Settings) -> None:
    url = db_settings.database
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for step in range(APPENDS_EACH):
                audit.record(url, f"writer-{number}", "issue.save", f"issue:{step}")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    verdict = audit.verify(url)
    assert verdict.problem is None
    assert verdict.entries == WRITERS * APPENDS_EACH


def test_the_command_line_records_its_operator(
    db_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_OPERATOR", "ona")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", db_settings.database)
    operator_settings = Settings.from_env()
    audit.record_cli(operator_settings, "list.import", "list:bibliotekos", added=3)
    [entry] = audit.entries(db_settings.database, audit.Filters())
    assert (entry["actor"], entry["client"], entry["action"]) == ("cli:ona", "cli", "list.import")


def test_the_csv_export_neutralises_formulas() -> None:
    rows = [
        {
            "seq": 1,
            "at": "2026-01-01T00:00:00.000000Z",
            "actor": "=HYPERLINK(1)",
            "client": "+1",
            "action": "-x",
            "object": "@y",
            "detail": "{}",
            "hash": "0" * 64,
        }
    ]
    line = audit.to_csv(rows).splitlines()[1]
    assert line.startswith("1,2026-01-01T00:00:00.000000Z,'=HYPERLINK(1),'+1,'-x,'@y,")
