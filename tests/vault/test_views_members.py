"""The folder members page: any member sees it; members with manage_users change it; the folder
always keeps someone who can manage members."""

from django.contrib.messages import get_messages
from django.test import Client

from tests.conftest import login, make_user
from vault.models import AuditEvent, FolderMember

ALL = {"can_edit": "on", "can_share": "on", "manage_records": "on", "manage_users": "on"}


def _url(personas, tail: str = "") -> str:
    return f"/folders/{personas.folder.uid}/members/{tail}"


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _member(personas, username: str) -> FolderMember:
    return FolderMember.objects.get(folder=personas.folder, user__username=username)


# --- list ----------------------------------------------------------------------------------------


def test_viewer_sees_members_and_their_permissions_read_only(personas):
    html = login(personas.viewer).get(_url(personas)).content.decode()
    for name in ("editor", "viewer", "manager"):
        assert name in html
    assert "outsider" not in html
    assert "/members/add/" not in html
    assert "/remove/" not in html


def test_manager_sees_the_add_form_and_row_controls(personas):
    html = login(personas.manager).get(_url(personas)).content.decode()
    assert f'action="{_url(personas, "add/")}"' in html
    assert f'action="{_url(personas, "viewer/update/")}"' in html
    assert f'action="{_url(personas, "viewer/remove/")}"' in html


def test_every_checkbox_on_the_members_page_is_labelled(personas):
    html = login(personas.manager).get(_url(personas)).content.decode()
    for n in (1, 2, 3):
        for perm in ("can_edit", "can_share", "manage_records", "manage_users"):
            assert f'<label for="m{n}-{perm}"' in html


def test_outsider_gets_404(personas):
    assert login(personas.outsider).get(_url(personas)).status_code == 404


def test_anonymous_is_sent_to_login(personas):
    assert Client().get(_url(personas)).status_code == 302


# --- add -----------------------------------------------------------------------------------------


def test_manager_adds_a_member_with_chosen_permissions(personas):
    newcomer = make_user("newcomer")
    response = login(personas.manager).post(
        _url(personas, "add/"), {"username": "newcomer", "can_edit": "on"}
    )
    member = FolderMember.objects.get(folder=personas.folder, user=newcomer)
    assert response.url == _url(personas)
    assert member.permission_names() == ["can_edit"]
    assert _messages(response) == ["Added newcomer to “Team”."]


def test_adding_a_member_is_audited(personas):
    make_user("newcomer")
    login(personas.manager).post(_url(personas, "add/"), {"username": "newcomer"})
    event = AuditEvent.objects.get(action="member.added")
    assert event.details == {"user": "newcomer", "permissions": []}
    assert event.actor == personas.manager


def test_adding_an_unknown_username_is_a_field_error(personas):
    response = login(personas.manager).post(_url(personas, "add/"), {"username": "ghost"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "This person could not be added. Check the user name." in html
    assert "There is no user" not in html  # the vault's user list is not for members to probe
    assert 'value="ghost"' in html
    assert FolderMember.objects.filter(folder=personas.folder).count() == 3


def test_adding_an_existing_member_is_a_field_error(personas):
    response = login(personas.manager).post(_url(personas, "add/"), {"username": "viewer"})
    assert "viewer is already a member of this folder." in response.content.decode()
    assert FolderMember.objects.filter(folder=personas.folder).count() == 3


def test_add_rejects_get(personas):
    assert login(personas.manager).get(_url(personas, "add/")).status_code == 405


def test_editor_without_manage_users_cannot_add(personas):
    make_user("newcomer")
    response = login(personas.editor).post(_url(personas, "add/"), {"username": "newcomer"})
    assert response.status_code == 403
    assert not FolderMember.objects.filter(user__username="newcomer").exists()


def test_viewer_cannot_add(personas):
    make_user("newcomer")
    assert (
        login(personas.viewer).post(_url(personas, "add/"), {"username": "newcomer"}).status_code
        == 403
    )
    assert not FolderMember.objects.filter(user__username="newcomer").exists()


def test_outsider_cannot_add_themselves(personas):
    response = login(personas.outsider).post(
        _url(personas, "add/"), {"username": "outsider", **ALL}
    )
    assert response.status_code == 404
    assert not FolderMember.objects.filter(folder=personas.folder, user=personas.outsider).exists()


def test_anonymous_cannot_add(personas):
    make_user("newcomer")
    assert Client().post(_url(personas, "add/"), {"username": "newcomer"}).status_code == 302
    assert not FolderMember.objects.filter(user__username="newcomer").exists()


# --- update --------------------------------------------------------------------------------------


def test_manager_changes_a_members_permissions(personas):
    response = login(personas.manager).post(
        _url(personas, "viewer/update/"), {"can_edit": "on", "manage_records": "on"}
    )
    assert response.url == _url(personas)
    assert _member(personas, "viewer").permission_names() == ["can_edit", "manage_records"]
    assert _messages(response) == ["Saved the permissions of viewer."]
    assert AuditEvent.objects.filter(action="member.updated").exists()


def test_unchecking_everything_leaves_a_view_only_member(personas):
    login(personas.manager).post(_url(personas, "editor/update/"), {})
    assert _member(personas, "editor").permission_names() == []


def test_last_manager_cannot_drop_manage_users(personas):
    response = login(personas.manager).post(_url(personas, "manager/update/"), {"can_edit": "on"})
    member = _member(personas, "manager")
    assert member.manage_users is True and member.can_edit is False
    (message,) = _messages(response)
    assert "at least one member who can manage members" in message
    assert not AuditEvent.objects.filter(action="member.updated").exists()


def test_a_manager_may_drop_manage_users_when_another_manager_remains(personas):
    client = login(personas.manager)
    client.post(_url(personas, "viewer/update/"), {"manage_users": "on"})
    client.post(_url(personas, "manager/update/"), {})
    assert _member(personas, "manager").manage_users is False


def test_updating_someone_not_in_the_folder_is_404(personas):
    response = login(personas.manager).post(_url(personas, "outsider/update/"), ALL)
    assert response.status_code == 404


def test_update_rejects_get(personas):
    assert login(personas.manager).get(_url(personas, "viewer/update/")).status_code == 405


def test_viewer_cannot_grant_themselves_permissions(personas):
    response = login(personas.viewer).post(_url(personas, "viewer/update/"), ALL)
    assert response.status_code == 403
    assert _member(personas, "viewer").permission_names() == []


def test_outsider_cannot_update(personas):
    assert login(personas.outsider).post(_url(personas, "viewer/update/"), ALL).status_code == 404
    assert _member(personas, "viewer").permission_names() == []


def test_anonymous_cannot_update(personas):
    assert Client().post(_url(personas, "viewer/update/"), ALL).status_code == 302
    assert _member(personas, "viewer").permission_names() == []


# --- remove --------------------------------------------------------------------------------------


def test_manager_removes_a_member(personas):
    response = login(personas.manager).post(_url(personas, "viewer/remove/"))
    assert response.url == _url(personas)
    assert not FolderMember.objects.filter(folder=personas.folder, user=personas.viewer).exists()
    assert _messages(response) == ["Removed viewer from “Team”."]
    assert AuditEvent.objects.get(action="member.removed").details == {"user": "viewer"}


def test_removed_member_loses_access(personas):
    login(personas.manager).post(_url(personas, "viewer/remove/"))
    assert login(personas.viewer).get(f"/folders/{personas.folder.uid}/").status_code == 404


def test_last_manager_cannot_be_removed(personas):
    response = login(personas.manager).post(_url(personas, "manager/remove/"))
    assert FolderMember.objects.filter(folder=personas.folder, user=personas.manager).exists()
    (message,) = _messages(response)
    assert message.startswith("manager was not removed.")


def test_a_manager_leaving_when_another_remains_goes_home(personas):
    client = login(personas.manager)
    client.post(_url(personas, "editor/update/"), {"manage_users": "on"})
    response = client.post(_url(personas, "manager/remove/"))
    assert response.url == "/"
    assert not FolderMember.objects.filter(folder=personas.folder, user=personas.manager).exists()


def test_remove_rejects_get(personas):
    assert login(personas.manager).get(_url(personas, "viewer/remove/")).status_code == 405


def test_editor_cannot_remove(personas):
    assert login(personas.editor).post(_url(personas, "viewer/remove/")).status_code == 403
    assert FolderMember.objects.filter(folder=personas.folder).count() == 3


def test_viewer_cannot_remove(personas):
    assert login(personas.viewer).post(_url(personas, "manager/remove/")).status_code == 403
    assert FolderMember.objects.filter(folder=personas.folder).count() == 3


def test_outsider_cannot_remove(personas):
    assert login(personas.outsider).post(_url(personas, "viewer/remove/")).status_code == 404
    assert FolderMember.objects.filter(folder=personas.folder).count() == 3


def test_anonymous_cannot_remove(personas):
    assert Client().post(_url(personas, "viewer/remove/")).status_code == 302
    assert FolderMember.objects.filter(folder=personas.folder).count() == 3


def test_editor_without_manage_users_sees_the_list_read_only(personas):
    response = login(personas.editor).get(_url(personas))
    assert response.status_code == 200
    assert "/members/add/" not in response.content.decode()
