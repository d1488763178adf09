"""A real import process killed or interrupted mid-way leaves the list as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.audience.lists import import_file
from tests.audience.factories import snapshot, write_csv

KEY = "test-secret-key-0123456789abcdef"

# Runs the real command line; once new subscribers are written and the memberships
# inserted (inside the open transaction) it says so and waits to be signalled.
SCRIPT = """
import sys, time
from newsletter.audience import lists
from newsletter.cli.core import main

insert_memberships = lists._insert_memberships

def insert_then_wait(*args, **kwargs):
    insert_memberships(*args, **kwargs)
    print("written", flush=True)
    time.sleep(60)

lists._insert_memberships = insert_then_wait
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_killed_import_process_changes_nothing(
    database_url: str, tmp_path: Path, signal_name: str
) -> None:
    old = write_csv(tmp_path / "old.csv", 200, start=3000)
    import_file(database_url, KEY.encode(), old, "savivaldybes")
    before = snapshot(database_url)
    new = write_csv(tmp_path / "new.csv", 3000)
    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": database_url,
        "NEWSLETTER_SECRET_KEY": KEY,
        "NEWSLETTER_DATA_DIR": str(tmp_path / "var"),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SCRIPT,
            "subscribers",
            "import",
            str(new),
            "--list",
            "savivaldybes",
            "--sync",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "written"
        process.send_signal(getattr(signal, signal_name))
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    if signal_name == "SIGINT":
        # Click turns the KeyboardInterrupt into Abort; either way: one line, exit 130.
        assert (process.returncode, stderr.strip()) == (130, "aborted")
    else:
        assert process.returncode == -signal.SIGKILL
    assert snapshot(database_url) == before
    report = import_file(database_url, KEY.encode(), new, "savivaldybes", sync=True)
    assert (report.added, report.removed) == (3000, 200)
