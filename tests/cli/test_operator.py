"""The command line as a named operator: roles of accounts, approvals, and the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter import audit, db, users
from newsletter.cli.core import main
from newsletter.dispatch import campaign
from newsletter.settings import Settings
from tests.conftest import ROOT

ISSUE = ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The command line on a fresh SQLite file and data folder; returns the database URL."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
    monkeypatch.setenv("NEWSLETTER_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NEWSLETTER_ISSUES_DIR", str(ROOT / "issues"))
    monkeypatch.setenv("NEWSLETTER_TEMPLATES_DIR", str(ROOT / "templates" / "email"))
    monkeypatch.setenv("NEWSLETTER_SPONSORS_FILE", str(ROOT / "sponsors.yaml"))
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-secret-key-0123456789abcdef")
    db.migrate(url)
    yield url
    db.dispose(url)


def as_operator(monkeypatch: pytest.MonkeyPatch, name: str, *argv: str) -> int:
    monkeypatch.setenv("NEWSLETTER_OPERATOR", name)
    return main(list(argv))


def test_roles_from_the_command_line(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("click.prompt", lambda *a, **k: "labai-slaptas-123")
    email = "ona@bibliotekos-pazangai.example"
    assert as_operator(monkeypatch, "admin", "users", "add", email, "--role", "author") == 0
    assert "roles: author" in capsys.readouterr().out
    assert as_operator(monkeypatch, "admin", "users", "roles", email, "--add", "sender") == 0
    assert as_operator(monkeypatch, "admin", "users", "roles", email, "--add", "boss") == 65
    with db.transaction(cli_env) as session:
        assert users.roles_of(session, users.find_editor(session, email).id) == {
            "author",
            "sender",
        }
    entries = audit.entries(cli_env, audit.Filters(actor="cli:admin"))
    assert [e["action"] for e in entries] == ["account.roles", "account.create"]


def test_an_operator_cannot_approve_their_own_campaign(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSLETTER_APPROVALS", "1")
    lists = ROOT / "subscribers" / "bibliotekos.csv"
    assert as_operator(monkeypatch, "ona", "subscribers", "import", str(lists), "--list", "b") == 0
    assert as_operator(monkeypatch, "ona", "send", str(ISSUE), "--list", "b") == 0
    [created] = campaign.all_campaigns(Settings.from_env())
    assert (created.status, created.created_by) == ("awaiting", "cli:ona")
    capsys.readouterr()
    assert as_operator(monkeypatch, "ona", "campaign", "approve", str(created.campaign_id)) == 77
    assert "author of a campaign cannot approve it" in capsys.readouterr().err
    assert as_operator(monkeypatch, "jonas", "campaign", "approve", str(created.campaign_id)) == 0
    assert as_operator(monkeypatch, "jonas", "campaign", "start", str(created.campaign_id)) == 0
    assert campaign.progress(Settings.from_env(), created.campaign_id).status == "done"
    actions = [(e["actor"], e["action"]) for e in audit.entries(cli_env, audit.Filters())]
    assert actions[::-1] == [
        ("cli:ona", "list.import"),
        ("cli:ona", "campaign.create"),
        ("cli:jonas", "campaign.approve"),
        ("cli:jonas", "campaign.start"),
    ]
