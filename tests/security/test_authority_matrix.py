"""The authority matrix (issue 9): which configuration each persona may point at a record,
which gateways and applications each may name, and what each policy gates. It complements
test_access_matrix.py (every URL x every persona) with the objects a URL's form may name.

Configurations, by where they live (the record is always in "Team"):
  team      - in "Team", shared to the gateway's application (the ordinary case)
  foreign   - in "Elsewhere" (the outsider's folder), shared to the application too
  viewonly  - in "Readonly", where every persona but the outsider is a view-only member
  unshared  - in "Keys", where every persona can edit, but not shared to the application
Tokens per persona in PERSONAS order (outsider, viewer, editor, manager): "ok" = saved,
"404"/"403" = refused by folder access, "field" = a field error on the configuration.
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import override_settings

from rotation.models import RotationSettings
from tests.conftest import login, make_configuration, make_member, make_pam_user
from tests.security.conftest import db_snapshot, settings_form_data
from vault.models import ApplicationFolder, Gateway, SharedFolder

pytestmark = pytest.mark.django_db

PERSONAS = ("outsider", "viewer", "editor", "manager")

SETTINGS_EXPECT = {
    "team": "404 403 ok 403",
    "foreign": "404 403 field 403",
    "viewonly": "404 403 field 403",
    "unshared": "404 403 field 403",
}
# Gateways each persona's New PAM Configuration form lists in "Team" (the manager administers
# "Rotation App"; "gw-other" belongs to an application nobody here administers).
GATEWAYS_EXPECT = {
    "editor": {"default"},
    "manager": {"default", "gw-mine"},
}
APPLICATIONS_EXPECT = {
    "outsider": set(),
    "viewer": set(),
    "editor": set(),
    "manager": {"Mine", "Rotation App"},
}
# URL -> policy that gates it, for personas who pass the folder checks.
POLICY_GATED = {
    "rotate": "rotate",
    "rotate_all": "rotate",
    "rotation_settings": "configure_rotation",
    "record_reveal": "reveal",
    "folder_share": "manage_gateways",
}


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


class AuthorityWorld:
    def __init__(self, personas) -> None:
        from django.contrib.auth.models import User

        self.p = personas
        mine = personas.application.__class__.objects.create(name="Mine")
        mine.administrators.add(personas.manager)
        Gateway.objects.create(name="gw-mine", application=mine)
        other_app = personas.application.__class__.objects.create(name="Other App")
        Gateway.objects.create(name="gw-other", application=other_app)
        personas.application.administrators.add(personas.manager)
        readonly = SharedFolder.objects.create(name="Readonly")
        keys = SharedFolder.objects.create(name="Keys")
        for user in User.objects.exclude(username__in=["outsider", "root"]):
            make_member(readonly, user)
            make_member(keys, user, can_edit=True)
        for folder in (personas.other_folder, readonly):
            ApplicationFolder.objects.create(application=personas.application, folder=folder)
        gateway = personas.gateway
        self.configs = {
            "team": make_configuration(personas.folder, gateway, title="team"),
            "foreign": make_configuration(personas.other_folder, gateway, title="foreign"),
            "viewonly": make_configuration(readonly, gateway, title="viewonly"),
            "unshared": make_configuration(keys, gateway, title="unshared"),
        }
        self.record = make_pam_user(personas.folder, "svc-app")

    def user(self, persona: str):
        return getattr(self.p, persona)


@pytest.fixture
def aw(personas) -> AuthorityWorld:
    return AuthorityWorld(personas)


def _outcome(response) -> str:
    if response.status_code == 302:
        return "ok"
    if response.status_code == 200 and "configuration" in response.context["form"].errors:
        return "field"
    return str(response.status_code)


@pytest.mark.parametrize("kind", list(SETTINGS_EXPECT))
@pytest.mark.parametrize("persona", PERSONAS)
def test_configuration_choice_per_persona_and_folder(aw, persona, kind):
    expected = SETTINGS_EXPECT[kind].split()[PERSONAS.index(persona)]
    client = login(aw.user(persona))
    before = db_snapshot()
    response = client.post(
        f"/records/{aw.record.uid}/rotation/", settings_form_data(aw.configs[kind])
    )
    assert _outcome(response) == expected, f"{persona} choosing {kind}"
    if expected != "ok":
        assert db_snapshot() == before
        assert not RotationSettings.objects.filter(pam_user=aw.record).exists()


@pytest.mark.parametrize("persona", list(GATEWAYS_EXPECT))
def test_gateways_listed_per_persona(aw, persona):
    response = login(aw.user(persona)).get(f"/folders/{aw.p.folder.uid}/configurations/new/")
    listed = {g.name for g in response.context["form"].fields["gateway"].queryset}
    assert listed == GATEWAYS_EXPECT[persona]
    html = response.content.decode()
    assert "gw-other" not in html and "Other App" not in html


@pytest.mark.parametrize("persona", list(APPLICATIONS_EXPECT))
def test_applications_offered_for_sharing_per_persona(aw, persona):
    folder = SharedFolder.objects.create(name=f"{persona}'s")
    make_member(folder, aw.user(persona), can_share=True, manage_users=True)
    response = login(aw.user(persona)).get(f"/folders/{folder.uid}/members/")
    offered = {a.name for a in response.context["share_form"].fields["application"].queryset}
    assert offered == APPLICATIONS_EXPECT[persona]


def _policy_url(name: str, aw) -> str:
    uid = aw.p.folder.uid if name in ("rotate_all", "folder_share") else aw.record.uid
    return {
        "rotate": f"/records/{uid}/rotate/",
        "rotate_all": f"/folders/{uid}/rotate-all/",
        "rotation_settings": f"/records/{uid}/rotation/",
        "record_reveal": f"/records/{uid}/reveal/",
        "folder_share": f"/folders/{uid}/shares/",
    }[name]


@pytest.mark.parametrize("name", list(POLICY_GATED))
def test_each_policy_gate_refuses_without_and_admits_with_the_permission(aw, name):
    editor = aw.p.editor
    if name == "folder_share":
        # The share needs can_share and administration; the editor gets both here.
        aw.p.folder.members.filter(user=editor).update(can_share=True)
        aw.p.application.administrators.add(editor)
    url = _policy_url(name, aw)
    data = {"application": aw.p.application.uid, "editable": "on"}
    with override_settings(VAULT_ENFORCE_POLICIES=True):
        client = login(editor)
        before = db_snapshot()
        refused = client.post(url, data)
        assert refused.status_code == 403, name
        assert db_snapshot() == before
        group = Group.objects.create(name=f"may {name}")
        group.permissions.add(
            Permission.objects.get(content_type__app_label="vault", codename=POLICY_GATED[name])
        )
        editor.groups.add(group)
        admitted = login(editor).post(url, data)
        assert admitted.status_code != 403, name
