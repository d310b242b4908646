"""Who may see which gateway (vault.access.gateways_visible_to), as the Gateways page lists them:
superusers with a verified two-factor session every one; others the gateways of applications
they administer and of applications that serve one of their folders."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from tests.conftest import make_user
from vault.access import gateways_visible_to
from vault.models import Application, ApplicationFolder, Gateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateways(personas):
    """`default` (Rotation App, serving "Team"), `gw-other` (Other App, serving "Elsewhere"),
    `gw-admin` (an application nobody shares a folder to, administered by `admin`) and
    `gw-orphan` (no application)."""
    other = Application.objects.create(name="Other App")
    ApplicationFolder.objects.create(application=other, folder=personas.other_folder)
    mine = Application.objects.create(name="Administered App")
    admin = make_user("admin")
    mine.administrators.add(admin)
    Gateway.objects.create(name="gw-other", application=other)
    Gateway.objects.create(name="gw-admin", application=mine)
    Gateway.objects.create(name="gw-orphan")
    return admin


def names(user) -> set[str]:
    return set(gateways_visible_to(user).values_list("name", flat=True))


@pytest.mark.parametrize("persona", ["viewer", "editor", "manager"])
def test_members_of_a_served_folder_see_its_gateways_only(personas, gateways, persona):
    assert names(getattr(personas, persona)) == {"default"}


def test_the_outsider_sees_the_gateways_serving_their_own_folder_only(personas, gateways):
    assert names(personas.outsider) == {"gw-other"}


def test_an_application_administrator_sees_its_gateways(personas, gateways):
    assert names(gateways) == {"gw-admin"}


def test_someone_in_no_folder_and_no_application_sees_none(personas, gateways):
    assert names(make_user("nobody")) == set()
    assert names(AnonymousUser()) == set()


def test_a_verified_superuser_sees_every_gateway(personas, gateways):
    personas.superuser.is_verified = lambda: True  # as OTPMiddleware sets it
    assert names(personas.superuser) == {"default", "gw-other", "gw-admin", "gw-orphan"}


def test_a_superuser_without_a_verified_session_sees_as_anyone_does(personas, gateways):
    personas.superuser.is_verified = lambda: False
    assert names(personas.superuser) == set()  # in no folder, administers nothing


def test_a_share_to_a_folder_you_left_shows_nothing(personas, gateways):
    personas.folder.members.filter(user=personas.viewer).delete()
    assert names(personas.viewer) == set()
