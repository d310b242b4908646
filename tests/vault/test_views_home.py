"""Home page (my folders with counts) and the New folder form."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from tests.conftest import login, make_configuration, make_pam_user
from vault.forms import FOLDER_NAME_TAKEN
from vault.models import AuditEvent, FolderMember, SharedFolder


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_home_lists_only_my_folders(personas):
    html = login(personas.editor).get("/").content.decode()
    assert "Team" in html
    assert "Elsewhere" not in html


def test_home_shows_record_and_configuration_counts(personas):
    for n in range(3):
        make_pam_user(personas.folder, f"User{n}")
    make_configuration(personas.folder, personas.gateway)
    response = login(personas.viewer).get("/")
    (membership,) = response.context["memberships"]
    assert (membership.record_count, membership.configuration_count) == (3, 1)


def test_home_counts_zero_for_an_empty_folder(personas):
    (membership,) = login(personas.outsider).get("/").context["memberships"]
    assert membership.record_count == 0


def test_home_links_each_folder_by_uid(personas):
    html = login(personas.viewer).get("/").content.decode()
    assert f'href="/folders/{personas.folder.uid}/"' in html


def test_home_redirects_anonymous_to_login(db):
    response = Client().get("/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_new_folder_makes_the_creator_a_member_with_every_permission(personas):
    response = login(personas.viewer).post("/folders/new/", {"name": "Ops"})
    folder = SharedFolder.objects.get(name="Ops")
    assert response.status_code == 302
    assert response.url == f"/folders/{folder.uid}/"
    member = FolderMember.objects.get(folder=folder, user=personas.viewer)
    assert member.permission_names() == list(FolderMember.PERMISSIONS)


def test_new_folder_is_audited_and_confirmed(personas):
    response = login(personas.viewer).post("/folders/new/", {"name": "Ops"})
    assert AuditEvent.objects.filter(action="folder.created", object_repr="Ops").exists()
    assert _messages(response) == ["Created the folder “Ops”."]


# "Elsewhere" is a folder the viewer is not a member of: the same words, whoever's folder it is.
@pytest.mark.parametrize("name", ["Team", "team", "Elsewhere"])
def test_new_folder_with_a_taken_name_is_a_field_error(personas, name):
    response = login(personas.viewer).post("/folders/new/", {"name": name})
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == [FOLDER_NAME_TAKEN]
    assert FOLDER_NAME_TAKEN in response.content.decode()
    assert SharedFolder.objects.count() == 2


def test_new_folder_with_a_blank_name_is_a_field_error(personas):
    response = login(personas.viewer).post("/folders/new/", {"name": "  "})
    assert response.context["form"].errors["name"]
    assert SharedFolder.objects.count() == 2


def test_new_folder_rejects_get(personas):
    assert login(personas.viewer).get("/folders/new/").status_code == 405


def test_new_folder_by_anonymous_redirects_and_creates_nothing(db):
    response = Client().post("/folders/new/", {"name": "Ops"})
    assert response.status_code == 302
    assert not SharedFolder.objects.filter(name="Ops").exists()
