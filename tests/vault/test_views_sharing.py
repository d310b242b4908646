"""Sharing a folder to an application (the `can_share` permission)."""

import pytest

from tests.conftest import login, make_member, make_user
from vault.models import Application, ApplicationFolder, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def sharer(personas):
    user = make_user("sharer")
    make_member(personas.folder, user, can_share=True)
    return user


@pytest.fixture
def other_app(db):
    return Application.objects.create(name="Other App")


def _share_url(personas) -> str:
    return f"/folders/{personas.folder.uid}/shares/"


def test_members_page_lists_the_applications_the_folder_is_shared_to(personas):
    page = login(personas.viewer).get(f"/folders/{personas.folder.uid}/members/")
    assert "Rotation App" in page.content.decode()
    assert "Stop sharing" not in page.content.decode()


def test_a_member_with_can_share_shares_the_folder(personas, sharer, other_app):
    other_app.administrators.add(sharer)  # a share needs authority over both sides
    response = login(sharer).post(
        _share_url(personas), {"application": other_app.uid, "editable": "on"}
    )
    assert response.status_code == 302
    share = ApplicationFolder.objects.get(application=other_app, folder=personas.folder)
    assert share.editable
    assert AuditEvent.objects.filter(action="folder.shared", actor=sharer).exists()


def test_sharing_read_only_is_kept(personas, sharer, other_app):
    other_app.administrators.add(sharer)
    login(sharer).post(_share_url(personas), {"application": other_app.uid})
    assert not ApplicationFolder.objects.get(application=other_app).editable


def test_an_unknown_application_changes_nothing(personas, sharer):
    login(sharer).post(_share_url(personas), {"application": "no-such-app", "editable": "on"})
    assert ApplicationFolder.objects.count() == 1


def test_a_member_with_can_share_stops_sharing(personas, sharer):
    url = f"/folders/{personas.folder.uid}/shares/{personas.application.uid}/remove/"
    assert login(sharer).post(url).status_code == 302
    assert not ApplicationFolder.objects.exists()
    assert AuditEvent.objects.filter(action="folder.unshared").exists()


@pytest.mark.parametrize("persona", ["viewer", "editor", "manager"])
def test_members_without_can_share_are_refused(personas, other_app, persona):
    response = login(getattr(personas, persona)).post(
        _share_url(personas), {"application": other_app.uid, "editable": "on"}
    )
    assert response.status_code == 403
    assert ApplicationFolder.objects.count() == 1


def test_outsider_gets_404(personas, other_app):
    response = login(personas.outsider).post(_share_url(personas), {"application": other_app.uid})
    assert response.status_code == 404


def test_share_rejects_get(personas, sharer):
    assert login(sharer).get(_share_url(personas)).status_code == 405
