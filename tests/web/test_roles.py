"""Roles on real pages: what each role is shown, the admin page, and ending sessions."""

from __future__ import annotations

from starlette.testclient import TestClient

from newsletter import audit, db, users
from newsletter.dispatch import campaign
from newsletter.models import User
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.web.conftest import EDITOR_PASSWORD, log_in
from tests.web.issues import SLUG, write_issue
from tests.web.test_permissions import ACCOUNTS


def test_pages_show_only_the_actions_a_role_may_use(web_settings: Settings) -> None:
    write_issue(web_settings.issues_dir)
    with db.transaction(web_settings.database) as session:
        users.create_user(session, ACCOUNTS["sender"], EDITOR_PASSWORD, [users.SENDER])
    app = create_app(web_settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        log_in(client, ACCOUNTS["sender"])
        preview = client.get(f"/editor/issues/{SLUG}").text
        assert f"/editor/issues/{SLUG}/campaign" in preview
        for hidden in (f"/editor/issues/{SLUG}/edit", "/editor/lists", "/editor/admin/users"):
            assert hidden not in preview, hidden
        assert "/editor/issues/new" not in client.get("/editor/").text


def test_a_disabled_editors_live_session_is_refused_at_its_next_request(
    client: TestClient, web_settings: Settings, editor: str
) -> None:
    token = log_in(client)
    assert client.get("/editor/").status_code == 200
    with db.transaction(web_settings.database) as session:
        users.disable(session, editor)
    assert client.get("/editor/").status_code == 303
    assert client.post("/editor/lists/upload", headers={"x-csrf-token": token}).status_code == 401


def test_an_admin_invites_changes_roles_and_disables_from_the_page(
    client: TestClient, web_settings: Settings, editor: str
) -> None:
    token = log_in(client)
    invited = client.post(
        "/editor/admin/users",
        data={"email": ACCOUNTS["author"], "role": ["author"], "csrf_token": token},
    )
    assert invited.status_code == 200, invited.text
    assert 'id="password"' in invited.text  # generated, shown once
    with db.transaction(web_settings.database) as session:
        user = users.find_editor(session, ACCOUNTS["author"])
        assert users.roles_of(session, user.id) == {"author"}
        user_id = user.id
    changed = client.post(
        f"/editor/admin/users/{user_id}",
        data={"action": "roles", "role": ["author", "sender"], "csrf_token": token},
    )
    assert changed.status_code == 303
    disabled = client.post(
        f"/editor/admin/users/{user_id}", data={"action": "disable", "csrf_token": token}
    )
    assert disabled.status_code == 303
    with db.transaction(web_settings.database) as session:
        assert users.roles_of(session, user_id) == {"author", "sender"}
        assert session.get(User, user_id).disabled_at is not None
    myself = client.post(
        f"/editor/admin/users/{users_id(web_settings, editor)}",
        data={"action": "disable", "csrf_token": token},
    )
    assert myself.status_code == 409
    actions = [row["action"] for row in audit.entries(web_settings.database, audit.Filters())]
    assert actions[:3] == ["account.disable", "account.roles", "account.create"]
    assert audit.verify(web_settings.database).problem is None


def users_id(settings: Settings, email: str) -> int:
    """The id of the editor ``email``."""
    with db.transaction(settings.database) as session:
        return users.find_editor(session, email).id


def test_the_audit_page_filters_and_exports_neutralised_csv(
    client: TestClient, web_settings: Settings, editor: str
) -> None:
    log_in(client)
    audit.record(web_settings.database, "=cmd|' /C calc'!A0", "list.import", "list:x")
    page = client.get("/editor/audit?action=login")
    assert "login.succeeded" in page.text and "list:x" not in page.text
    exported = client.get("/editor/audit.csv?action=list")
    assert exported.status_code == 200
    lines = exported.text.splitlines()
    assert lines[0].startswith("seq,at,actor")
    assert len(lines) == 2 and ",'=cmd" in lines[1]


def test_an_author_sends_test_copies_to_editors_only(web_settings: Settings) -> None:
    write_issue(web_settings.issues_dir)
    with db.transaction(web_settings.database) as session:
        users.create_user(session, ACCOUNTS["author"], EDITOR_PASSWORD, [users.AUTHOR])
    app = create_app(web_settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        token = log_in(client, ACCOUNTS["author"])
        outside = client.post(
            f"/editor/issues/{SLUG}/test",
            data={"csrf_token": token, "address": "bandymas@example.org"},
        )
        assert outside.status_code == 400
        assert "bandomieji laiškai siunčiami tik redaktoriams" in outside.text
        assert campaign.all_campaigns(web_settings) == []
