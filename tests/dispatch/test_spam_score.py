"""Sent messages as SpamAssassin scores them: nothing in our own markup may cost points.

Debian's ``spamassassin`` (installed by ``.ci/run``) with ``-L``: local rules only, no
DNS or network tests, so the score depends on the message alone. The rules ship in the
package (/usr/share/spamassassin); ``sa-update`` is never needed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter import db
from newsletter.cli.core import main
from newsletter.settings import Settings
from tests.conftest import ROOT
from tests.dispatch.support import add_people
from tests.support.services import unavailable
from tests.support.smtp import SmtpSink

SAMPLES = sorted((ROOT / "issues").glob("*.md"))
STATUS = re.compile(
    r"^X-Spam-Status: \w+, score=(-?[\d.]+) .*?tests=(.*?)\s+autolearn=", re.M | re.S
)
RULE = re.compile(r"^\s*(-?\d+\.\d+) ([A-Z0-9_]+)\s", re.M)


def spamassassin() -> str:
    """The spamassassin command; skip (fail under CI) when it is not installed."""
    found = shutil.which("spamassassin")
    if found is None:
        unavailable("spamassassin is not installed (apt-get install -y spamassassin)")
    return str(found)


def score(message: bytes, home: Path) -> tuple[float, dict[str, float]]:
    """SpamAssassin's score of ``message`` and the points of each rule that matched."""
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [spamassassin(), "-L", "-t", "-p", str(home / "user_prefs")],
        input=message,
        capture_output=True,
        check=True,
        timeout=120,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    report = done.stdout.decode("utf-8", "replace")
    status = STATUS.search(report)
    assert status, report[:2000]
    details = report[report.index("Content analysis details") :]
    return float(status.group(1)), {rule: float(points) for points, rule in RULE.findall(details)}


@pytest.mark.parametrize("issue", SAMPLES, ids=lambda path: path.stem)
def test_a_sent_sample_issue_scores_nothing(
    issue: Path,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spamassassin()
    url = f"sqlite:///{tmp_path / 'spam.db'}"
    db.migrate(url)
    add_people(url, 1, ["savivaldybes"])
    with SmtpSink() as sink:
        env = {
            "DATABASE_URL": url,
            "DATA_DIR": settings.data_dir,
            "SECRET_KEY": settings.secret_key.reveal(),
            "BASE_URL": settings.base_url,
            "TEMPLATES_DIR": settings.templates_dir,
            "SPONSORS_FILE": settings.sponsors_file,
            "ISSUES_DIR": settings.issues_dir,
            "SMTP_URL": sink.url,
        }
        for name, value in env.items():
            monkeypatch.setenv(f"NEWSLETTER_{name}", str(value))
        assert main(["send", str(issue), "--list", "savivaldybes"]) == 0, capsys.readouterr()
        (received,) = sink.wait_for(1)
    db.dispose(url)
    points, rules = score(received.data, tmp_path / "home")
    costly = {rule: value for rule, value in rules.items() if value > 0}
    assert "HTML_FONT_LOW_CONTRAST" not in rules
    assert (points, costly) == (0.0, {}), rules
