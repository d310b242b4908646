"""The Gateways page (/gateways/): each gateway a person may see, with its application, online
state and last heartbeat, the configurations it serves that they can see, its queued and running
rotations, and how to run it (the command and the environment's names, never their values)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from rotation.models import Rotation
from tests.conftest import login, login_verified, make_configuration, make_pam_user, make_user
from tests.rotation.conftest import make_settings
from vault.models import Application, ApplicationFolder, Gateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(personas):
    """`default` serves "Team" (a configuration and a queued and a running rotation there, and
    a configuration in "Elsewhere" that names it too); `gw-other` serves "Elsewhere"."""
    other = Application.objects.create(name="Other App")
    ApplicationFolder.objects.create(application=other, folder=personas.other_folder)
    gw_other = Gateway.objects.create(name="gw-other", application=other)
    team_config = make_configuration(personas.folder, personas.gateway, title="Team config")
    hidden_config = make_configuration(
        personas.other_folder, personas.gateway, title="Elsewhere config"
    )
    make_configuration(personas.other_folder, gw_other, title="Other config")
    queued = make_pam_user(personas.folder, "QueuedUser", password="Queued-Passw0rd!")
    running = make_pam_user(personas.folder, "RunningUser", password="Running-Passw0rd!")
    hidden = make_pam_user(personas.other_folder, "HiddenUser", password="Hidden-Passw0rd!")
    for record, config in ((queued, team_config), (running, team_config), (hidden, hidden_config)):
        make_settings(record, config)
    Rotation.objects.create(pam_user=queued, configuration=team_config, gateway_name="default")
    Rotation.objects.create(
        pam_user=running,
        configuration=team_config,
        gateway_name="default",
        status=Rotation.RUNNING,
        started_at=timezone.now(),
    )
    Rotation.objects.create(pam_user=hidden, configuration=hidden_config, gateway_name="default")
    return personas


def page(client) -> str:
    response = client.get("/gateways/")
    assert response.status_code == 200
    return response.content.decode()


def gateway_section(html: str, name: str) -> str:
    match = re.search(rf'<section[^>]*data-gateway="{name}"[^>]*>(.*?)</section>', html, re.S)
    assert match, f"no section for the gateway {name}"
    return match.group(1)


def shown_gateways(html: str) -> set[str]:
    return set(re.findall(r'data-gateway="([^"]+)"', html))


def test_a_member_sees_the_gateway_serving_their_folder_and_what_it_does(world):
    html = page(login(world.editor))
    assert shown_gateways(html) == {"default"}
    section = gateway_section(html, "default")
    assert "Rotation App" in section
    assert "Team config" in section
    assert "Elsewhere config" not in section  # in a folder the editor is not a member of
    assert "QueuedUser" in section and "RunningUser" in section
    assert "HiddenUser" not in section
    counts = " ".join(re.sub(r"<[^>]+>", " ", section).split())
    assert "2 queued, 1 running" in counts  # every rotation on it, named or not


@pytest.mark.parametrize("persona", ["viewer", "manager"])
def test_other_members_see_the_same_gateway(world, persona):
    assert shown_gateways(page(login(getattr(world, persona)))) == {"default"}


def test_the_outsider_sees_only_the_gateway_of_their_own_folder(world):
    html = page(login(world.outsider))
    assert shown_gateways(html) == {"gw-other"}
    assert "Team config" not in html and "QueuedUser" not in html


def test_someone_who_may_see_no_gateway_is_told_why(world):
    html = page(login(make_user("nobody")))
    assert shown_gateways(html) == set()
    assert "No gateway serves a folder you are a member of" in html


def test_a_verified_superuser_sees_every_gateway_but_only_their_folders_contents(world):
    html = page(login_verified(world.superuser))
    assert shown_gateways(html) == {"default", "gw-other"}
    section = gateway_section(html, "default")
    assert "Team config" not in section and "QueuedUser" not in section
    text = " ".join(re.sub(r"<[^>]+>", " ", section).split())
    assert "2 configurations in folders you are not a member of" in text


def test_anonymous_is_sent_to_sign_in_and_a_post_is_refused(world):
    response = Client().get("/gateways/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert login(world.editor).post("/gateways/").status_code == 405


def test_online_offline_and_never_seen(world):
    now = timezone.now()
    Gateway.objects.filter(name="default").update(last_seen_at=now)
    section = gateway_section(page(login(world.editor)), "default")
    assert "online" in section and f'datetime="{now:%Y-%m-%dT%H:%M}' in section
    Gateway.objects.filter(name="default").update(last_seen_at=now - timedelta(hours=1))
    assert "offline" in gateway_section(page(login(world.editor)), "default")
    Gateway.objects.filter(name="default").update(last_seen_at=None)
    assert "never seen" in gateway_section(page(login(world.editor)), "default")


def test_how_to_run_it_names_the_command_and_the_environment_without_values(world):
    html = page(login(world.editor))
    section = gateway_section(html, "default")
    assert "python manage.py pam gateway run default" in section
    for name in ("DATABASE_URL", "REDIS_URL", "VAULT_ENCRYPTION_KEYS"):
        assert name in section
    for key in settings.VAULT_ENCRYPTION_KEYS:
        assert key not in html
    assert str(settings.DATABASES["default"]["NAME"]) not in html
    assert settings.SECRET_KEY not in html


def test_the_navigation_links_the_page(world):
    html = login(world.viewer).get("/").content.decode()
    assert re.search(r'<a href="/gateways/"[^>]*>Gateways</a>', html)
    current = page(login(world.viewer))
    assert re.search(r'<a href="/gateways/" aria-current="page">Gateways</a>', current)


def test_the_page_runs_as_many_queries_for_one_gateway_as_for_many(
    world, django_assert_max_num_queries
):
    client = login_verified(world.superuser)
    client.get("/gateways/")  # warm the session
    for n in range(10):
        Gateway.objects.create(name=f"gw-{n}", application=world.application)
    with django_assert_max_num_queries(12):
        client.get("/gateways/")
