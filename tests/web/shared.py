"""One app, database and logged-in editor for a whole test module (its tests share them).

The library and sponsor tests need a migrated database and an editor; making those once
per module instead of per test saves about a second and a half each (migrations and the
password hash). Tests that share them must not depend on what the others left behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.settings import Secret, Settings
from newsletter.web import create_app
from tests.conftest import ROOT
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD, log_in


def module_settings(folder: Path, base_url: str) -> Settings:
    """Settings on a migrated SQLite file in ``folder``, with an editor, an empty issues
    folder and a copy of the repository's sponsors.yaml to edit."""
    url = f"sqlite:///{folder / 'web.db'}"
    db.migrate(url)
    with db.transaction(url) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
    (folder / "issues").mkdir()
    shutil.copy(ROOT / "sponsors.yaml", folder / "sponsors.yaml")
    return Settings(
        data_dir=folder / "var",
        issues_dir=folder / "issues",
        templates_dir=ROOT / "templates" / "email",
        sponsors_file=folder / "sponsors.yaml",
        base_url=base_url,
        secret_key=Secret("test-secret-key-0123456789abcdef"),
        database_url=url,
    )


@contextmanager
def logged_in_client(settings: Settings) -> Iterator[tuple[TestClient, str]]:
    """A client of the app over https, logged in as the editor, and its CSRF token."""
    app = create_app(settings, watch=False)
    try:
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
            yield client, log_in(client)
    finally:
        db.dispose(settings.database)
