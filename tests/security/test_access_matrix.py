"""Every URL of the project, every persona, every method: the answer is the one written in
EXPECT below, and a refused request changes nothing in the database.

The URL list comes from Django's resolver, so a new view without a line in EXPECT fails
`test_every_url_has_written_expectations`. The admin console (namespace "admin") has one rule
for all its URLs: only a superuser with a verified two-factor session gets in.

Tokens, one per persona in PERSONAS order (anonymous, outsider, viewer, editor, manager,
superuser): L = redirect to the login page; 302 = any other redirect; a number = that status.
The editor has can_edit + manage_records in "Team", the manager manage_users + manage_records,
the viewer nothing beyond viewing; the outsider is a member of another folder only; the
superuser is in no folder (and has a verified two-factor session).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import PASSWORD
from tests.security.conftest import PERSONAS, db_snapshot
from vault.models import PamUser

pytestmark = pytest.mark.django_db

# Refusals: 404 outsiders (and superusers, who are not members), 403 members lacking a permission.
EXPECT: dict[str, dict[str, str]] = {
    # --- sign-in and account
    "login": {"GET": "200 200 200 200 200 200", "POST": "200 200 200 200 200 200"},
    "logout": {"GET": "405 405 405 405 405 405", "POST": "302 302 302 302 302 302"},
    "account": {"GET": "L 200 200 200 200 200", "POST": "L 405 405 405 405 405"},
    "account_confirm": {"GET": "L 200 200 200 200 200", "POST": "L 302 302 302 302 302"},
    "account_time_zone": {"GET": "L 405 405 405 405 405", "POST": "L 302 302 302 302 302"},
    # Personas have no device (setup shows the QR code; verify sends them to set-up); the
    # superuser has one and a verified session.
    # A POST without a set-up started by a GET is sent back to start one.
    "twofactor_setup": {"GET": "L 200 200 200 200 302", "POST": "L 302 302 302 302 302"},
    "twofactor_verify": {"GET": "L 302 302 302 302 302", "POST": "L 302 302 302 302 302"},
    "twofactor_recovery_codes": {
        "GET": "L 405 405 405 405 405",
        "POST": "L 302 302 302 302 200",
    },
    "twofactor_disable": {"GET": "L 405 405 405 405 405", "POST": "L 302 302 302 302 302"},
    # Your own password: everyone signed in (the current password is theirs, PASSWORD).
    "account_password": {"GET": "L 405 405 405 405 405", "POST": "L 302 302 302 302 302"},
    # Your notifications, per folder you edit or manage (the form names the folder): the viewer
    # only views it (403), the outsider and the superuser are not in it (404).
    "notification_prefs": {"GET": "L 200 200 200 200 200", "POST": "L 404 403 302 302 404"},
    # --- people: superusers only (with a verified two-factor session; tests/vault/test_people.py
    # sends an unverified one to give a code)
    "people": {"GET": "L 403 403 403 403 200", "POST": "L 405 405 405 405 405"},
    "person_create": {"GET": "L 405 405 405 405 405", "POST": "L 403 403 403 403 302"},
    "person_deactivate": {"GET": "L 405 405 405 405 405", "POST": "L 403 403 403 403 302"},
    "person_reactivate": {"GET": "L 405 405 405 405 405", "POST": "L 403 403 403 403 302"},
    "person_password": {"GET": "L 405 405 405 405 405", "POST": "L 403 403 403 403 302"},
    "person_unlock": {"GET": "L 405 405 405 405 405", "POST": "L 403 403 403 403 302"},
    # --- folders and members
    "home": {"GET": "L 200 200 200 200 200", "POST": "L 200 200 200 200 200"},
    "folder_create": {"GET": "L 405 405 405 405 405", "POST": "L 302 302 302 302 302"},
    "folder_detail": {"GET": "L 404 200 200 200 404", "POST": "L 404 200 200 200 404"},
    "members": {"GET": "L 404 200 200 200 404", "POST": "L 404 200 200 200 404"},
    # Rename needs Manage members; delete also Add and remove records (vault/access.py
    # FOLDER_RENAME_NEEDS, FOLDER_DELETE_NEEDS): the manager only.
    "folder_rename": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 302 404"},
    "folder_delete": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 302 404"},
    # Search across your own folders: everyone signed in (outsiders find only their own).
    "search": {"GET": "L 200 200 200 200 200", "POST": "L 200 200 200 200 200"},
    "member_add": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 302 404"},
    "member_update": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 302 404"},
    "member_remove": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 302 404"},
    # No persona has can_share.
    "folder_share": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 403 404"},
    "folder_unshare": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 403 404"},
    # --- PAM Users
    "record_create": {"GET": "L 404 403 200 200 404", "POST": "L 404 403 302 302 404"},
    "record_detail": {"GET": "L 404 200 200 200 404", "POST": "L 404 200 200 200 404"},
    # A reveal redirects to the record page, which shows it once; a GET of a reveal address
    # is a page (405) saying how to reveal, for those who may open the record.
    "record_reveal": {"GET": "L 404 405 405 405 404", "POST": "L 404 302 302 302 404"},
    "record_reveal_access_key": {
        "GET": "L 404 405 405 405 404",
        "POST": "L 404 302 302 302 404",
    },
    "version_reveal": {"GET": "L 404 403 405 403 404", "POST": "L 404 403 302 403 404"},
    "record_edit": {"GET": "L 404 403 200 403 404", "POST": "L 404 403 302 403 404"},
    "record_delete": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 302 302 404"},
    # --- PAM Configurations
    "configuration_create": {"GET": "L 404 403 200 200 404", "POST": "L 404 403 302 302 404"},
    "configuration_detail": {"GET": "L 404 200 200 200 404", "POST": "L 404 200 200 200 404"},
    "configuration_edit": {"GET": "L 404 403 200 403 404", "POST": "L 404 403 302 403 404"},
    "configuration_delete": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 302 302 404"},
    "configuration_test": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 302 403 404"},
    # The latest Test connection, polled by the configuration page: who may see the page.
    "configuration_test_status": {
        "GET": "L 404 200 200 200 404",
        "POST": "L 405 405 405 405 405",
    },
    # --- rotation
    "rotation_settings": {"GET": "L 404 403 200 403 404", "POST": "L 404 403 302 403 404"},
    "rotate": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 302 403 404"},
    "rotation_status": {"GET": "L 404 200 200 200 404", "POST": "L 405 405 405 405 405"},
    "rotation_resolve": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 302 403 404"},
    # The record form's password generator (JSON, nothing stored): who may use the form.
    "record_generate_password": {
        "GET": "L 405 405 405 405 405",
        "POST": "L 404 403 200 403 404",
    },
    "folder_generate_password": {
        "GET": "L 405 405 405 405 405",
        "POST": "L 404 403 200 200 404",
    },
    # The world's rotation has ended: the editor is told so (302), nothing changes.
    "rotation_cancel": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 302 403 404"},
    # GET is the confirmation (how many will be rotated and skipped); a POST confirming that
    # number requests the rotations.
    "rotate_all": {"GET": "L 404 403 200 403 404", "POST": "L 404 403 302 403 404"},
    "rotate_all_progress": {"GET": "L 404 200 200 200 404", "POST": "L 405 405 405 405 405"},
    "rotate_all_status": {"GET": "L 404 200 200 200 404", "POST": "L 405 405 405 405 405"},
    # Discover IAM users: who may use the configuration (Edit records on its folder) and, when
    # policies are enforced, has "discover" (tests/rotation/test_discovery_views.py).
    "discovery_start": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 302 403 404"},
    "discovery_latest": {"GET": "L 404 403 200 403 404", "POST": "L 405 405 405 405 405"},
    "discovery_job": {"GET": "L 404 403 200 403 404", "POST": "L 405 405 405 405 405"},
    "discovery_status": {"GET": "L 404 403 200 403 404", "POST": "L 405 405 405 405 405"},
    "discovery_import": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 302 403 404"},
    # --- audit log: superusers see everything, members who manage users see their folders
    # (the outsider manages the other folder), everyone else is refused.
    "audit": {"GET": "L 200 403 403 200 200", "POST": "L 405 405 405 405 405"},
    "audit_csv": {"GET": "L 200 403 403 200 200", "POST": "L 405 405 405 405 405"},
    # --- gateways: everyone signed in gets the page, listing what they may see
    # (tests/rotation/test_views_gateways.py and tests/vault/test_access_gateways.py: who sees
    # which gateway, and less).
    "gateways": {"GET": "L 200 200 200 200 200", "POST": "L 405 405 405 405 405"},
    # --- single sign-on and metrics: off in this matrix (no OIDC client, no METRICS_TOKEN
    # nor network), so not served to anyone; tests/vault/test_oidc.py and tests/metrics cover
    # them switched on.
    "oidc_authentication_init": {
        "GET": "404 404 404 404 404 404",
        "POST": "404 404 404 404 404 404",
    },
    "oidc_authentication_callback": {
        "GET": "404 404 404 404 404 404",
        "POST": "404 404 404 404 404 404",
    },
    "metrics": {"GET": "404 404 404 404 404 404", "POST": "405 405 405 405 405 405"},
    # --- webhooks: a folder's are its managers' (manage_users), global ones verified
    # superusers'; adding one shows its secret once (200).
    "folder_webhooks": {"GET": "L 404 403 403 200 404", "POST": "L 405 405 405 405 405"},
    "folder_webhook_add": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 200 404"},
    "global_webhooks": {"GET": "L 403 403 403 403 200", "POST": "L 405 405 405 405 405"},
    "global_webhook_add": {"GET": "L 405 405 405 405 405", "POST": "L 403 403 403 403 200"},
    "webhook_detail": {"GET": "L 404 403 403 200 404", "POST": "L 405 405 405 405 405"},
    "webhook_enabled": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 302 404"},
    "webhook_delete": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 302 404"},
    "webhook_redeliver": {"GET": "L 405 405 405 405 405", "POST": "L 404 403 403 302 404"},
    # --- an application's client credentials (secrets API): its administrators' only, and no
    # persona administers "Rotation App" (superusers neither, unless named one): 404 for all.
    # tests/secretsapi/test_manage_views.py covers an administrator.
    "app_credentials": {"GET": "L 404 404 404 404 404", "POST": "L 405 405 405 405 405"},
    "app_credential_create": {"GET": "L 405 405 405 405 405", "POST": "L 404 404 404 404 404"},
    "app_credential_revoke": {"GET": "L 405 405 405 405 405", "POST": "L 404 404 404 404 404"},
    # The Secrets Manager endpoint: a session is no credential; only SigV4 signatures are
    # (400 MissingAuthenticationTokenException, audited). tests/secretsapi covers signed calls.
    "secretsapi_endpoint": {
        "GET": "405 405 405 405 405 405",
        "POST": "400 400 400 400 400 400",
    },
}
ADMIN_NAMESPACE = "admin"
NON_STAFF = ("anonymous", "outsider", "viewer", "editor", "manager")
REFUSED = {"L", "403", "404", "405"}


# --- the project's URLs -----------------------------------------------------------------------


def _walk(patterns, prefix: str = "", namespace: str | None = None):
    for p in patterns:
        if isinstance(p, URLResolver):
            inner = ":".join(filter(None, [namespace, p.namespace])) or None
            yield from _walk(p.url_patterns, prefix + str(p.pattern), inner)
        elif isinstance(p, URLPattern):
            yield namespace, p.name, prefix + str(p.pattern)


def project_urls() -> list[tuple[str | None, str | None, str]]:
    return list(_walk(get_resolver().url_patterns))


def app_url_names() -> list[str]:
    return [name or route for ns, name, route in project_urls() if ns != ADMIN_NAMESPACE]


def admin_url_names() -> list[str]:
    return [name or "<catch-all>" for ns, name, route in project_urls() if ns == ADMIN_NAMESPACE]


def _route(name: str) -> str:
    return next(route for ns, n, route in project_urls() if n == name and ns is None)


def url_for(name: str, world) -> str:
    """The URL of `name` with the world's real uids (picked by the route's first segment)."""
    route = _route(name)
    kinds = {
        "folders": world.folder.uid,
        "records": world.record.uid,
        "configurations": world.config.uid,
    }
    values = {
        "version_uid": world.version.uid,
        "rotation_uid": world.rotation.uid,
        "batch_uid": world.batch.uid,
        "app_uid": world.personas.application.uid,
        "username": world.personas.viewer.username,
    }
    if "webhook_uid" in route:
        values.update(_webhook_values(world))
    if "access_key_id" in route:
        values["access_key_id"] = _credential_key(world)
    if "job_uid" in route:
        values["job_uid"] = _discovery_job(world)
    kwargs = {}
    for arg in re.findall(r"<(?:\w+:)?(\w+)>", route):
        if arg == "uid":
            kwargs[arg] = kinds[route.split("/")[0]]
        else:
            assert arg in values, f"{name}: no test value for URL argument {arg!r}; add one"
            kwargs[arg] = values[arg]
    return reverse(name, kwargs=kwargs)


def _webhook_values(world) -> dict:
    """The world's folder webhook and one delivery in its log (made on first use)."""
    from webhooks.models import Webhook, WebhookDelivery

    webhook = Webhook.objects.filter(folder=world.folder).first()
    if webhook is None:
        webhook = Webhook.objects.create(
            folder=world.folder, url="https://93.184.216.34/hook", events=["rotation.failed"]
        )
        WebhookDelivery.objects.create(webhook=webhook, event_type="rotation.failed")
    return {"webhook_uid": webhook.uid, "delivery_uid": webhook.deliveries.get().uid}


def _discovery_job(world) -> str:
    """A finished discovery of the world's configuration with one user (made on first use)."""
    from rotation.models import DiscoveredUser, DiscoveryJob

    job = DiscoveryJob.objects.filter(configuration=world.config).first()
    if job is None:
        job = DiscoveryJob.objects.create(
            configuration=world.config, gateway_name="default", status=DiscoveryJob.SUCCEEDED
        )
        DiscoveredUser.objects.create(
            job=job, user_name="discovered", arn="arn:aws:iam::123456789012:user/discovered"
        )
    return job.uid


def _credential_key(world) -> str:
    """The access key id of a client credential of the personas' application (made on first
    use, by the operator)."""
    from secretsapi.credentials import credential_create
    from secretsapi.models import ClientCredential

    credential = ClientCredential.objects.filter(application=world.personas.application).first()
    if credential is None:
        credential, _ = credential_create(
            application=world.personas.application, actor=None, actor_kind="cli"
        )
    return credential.access_key_id


def post_data(name: str, world) -> dict:
    """What the persona who may do it would submit: valid, so a refusal is the only reason
    a forged request changes nothing."""
    record, config = world.record, world.config
    configuration = {
        "title": "Forged configuration",
        "environment": "aws",
        "gateway": world.personas.gateway.name,
        "aws_id": "AWS-Forged",
        "access_key_id": "AKIAFORGED",
        "access_secret_key": "forged-secret-key",
        "region_names": "us-east-1",
        "endpoint_url": config.endpoint_url,
        "default_rotation_schedule": '{"type": "ON_DEMAND"}',
    }
    data = {
        "login": {"username": "nobody", "password": "wrong"},
        "account_confirm": {"password": PASSWORD},
        "account_time_zone": {"time_zone": "Europe/Berlin"},
        "account_password": {
            "current_password": PASSWORD,
            "new_password1": "Sturdy-Vault-Key-93!",
            "new_password2": "Sturdy-Vault-Key-93!",
        },
        "person_create": {
            "username": "forged-person",
            "new_password1": "Sturdy-Vault-Key-93!",
            "new_password2": "Sturdy-Vault-Key-93!",
        },
        # The reset form's fields carry the person's prefix (the viewer is the URL's username).
        "person_password": {
            f"reset-{world.personas.viewer.pk}-new_password1": "Sturdy-Vault-Key-93!",
            f"reset-{world.personas.viewer.pk}-new_password2": "Sturdy-Vault-Key-93!",
        },
        # The world's record is the one Rotate all would rotate.
        "rotate_all": {"confirm": "1"},
        "twofactor_setup": {"code": "not-a-code"},
        "twofactor_verify": {"code": "123456"},
        "folder_create": {"name": "Forged folder"},
        "notification_prefs": {
            "folder": world.folder.uid,
            f"{world.folder.uid}-rotation_failed": "on",
            f"{world.folder.uid}-gateway_offline_minutes": "10",
            f"{world.folder.uid}-delivery": "digest",
        },
        "folder_rename": {"name": "Forged name"},
        "folder_delete": {"confirm_name": world.folder.name},
        "search": {"q": record.login},
        "record_create": {
            "title": "Forged",
            "login": "Forged",
            "distinguished_name": "arn:aws:iam::123456789012:user/Forged",
            "password": "Forged-Passw0rd!",
        },
        "record_edit": {
            "title": "Forged title",
            "login": record.login,
            "distinguished_name": record.distinguished_name,
            "password": "Forged-Passw0rd!",
        },
        "configuration_create": configuration,
        "configuration_edit": {**configuration, "title": "Forged title"},
        "member_add": {"username": "outsider", "can_edit": "on", "manage_users": "on"},
        "member_update": {"can_edit": "on", "manage_users": "on"},
        "folder_share": {"application": "", "editable": "on"},
        "rotation_resolve": {"keep": "pending"},
        "folder_webhook_add": {"url": "https://93.184.216.34/hook", "events": "rotation.failed"},
        "global_webhook_add": {"url": "https://93.184.216.34/hook", "events": "rotation.failed"},
        "webhook_enabled": {"enabled": "off"},
        "app_credential_create": {"name": "Forged", "allowed_networks": "10.0.0.0/8"},
        "discovery_import": {"folder": world.folder.uid, "mode": "selected", "user": "discovered"},
        "rotation_settings": {
            "method": "iam_user",
            "configuration": config.uid,
            "schedule_type": "DAILY",
            "tz": "UTC",
            "time": "03:00",
            "interval_count": "1",
            "weekday": "MONDAY",
            "month_day": "1",
            "occurrence": "FIRST",
            "month": "JANUARY",
            "cron": "",
            "length": "40",
            "min_upper": "3",
            "min_lower": "3",
            "min_digits": "3",
            "min_symbols": "3",
            "symbols": "!@#$%^&*()_+-=[]{}|'",
            "enabled": "on",
        },
    }
    return data.get(name, {})


def _cases():
    for name in app_url_names():
        for method in ("GET", "POST"):
            for persona in PERSONAS:
                yield pytest.param(name, method, persona, id=f"{name}-{method}-{persona}")


def _to_login_page(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(
        f"{reverse('login')}?next="
    )


def _matches(token: str, response) -> bool:
    if token == "L":
        return _to_login_page(response)
    if token == "302":
        return response.status_code == 302 and not _to_login_page(response)
    return response.status_code == int(token)


# --- the tests --------------------------------------------------------------------------------


def test_every_url_has_written_expectations():
    names = app_url_names()
    missing = sorted(set(names) - set(EXPECT))
    assert not missing, f"URL patterns without an entry in EXPECT: {missing}"
    stale = sorted(set(EXPECT) - set(names))
    assert not stale, f"EXPECT names URLs that no longer exist: {stale}"
    namespaces = {ns for ns, name, route in project_urls()}
    assert namespaces <= {None, ADMIN_NAMESPACE}, f"a namespace without a rule: {namespaces}"
    for name, methods in EXPECT.items():
        assert set(methods) == {"GET", "POST"}, name
        for tokens in methods.values():
            assert len(tokens.split()) == len(PERSONAS), name


def test_every_url_pattern_has_a_name():
    unnamed = [route for ns, name, route in project_urls() if ns is None and not name]
    assert not unnamed


@pytest.fixture
def matrix_world(personas):
    from tests.security.conftest import VaultWorld

    # Test connection only records a request for the gateway: no AWS needed here.
    return VaultWorld(personas)


@pytest.mark.parametrize("name,method,persona", list(_cases()))
def test_url_answers_each_persona_as_written(matrix_world, name, method, persona):
    world = matrix_world
    token = EXPECT[name][method].split()[PERSONAS.index(persona)]
    url = url_for(name, world)
    client = world.client(persona)
    before = db_snapshot()
    if method == "GET":
        response = client.get(url)
    else:
        response = client.post(url, post_data(name, world))
    where = f"{persona} {method} {url}"
    location = response.get("Location", "")
    assert _matches(token, response), (
        f"{where}: expected {token}, got {response.status_code} {location}"
    )
    if token in REFUSED or method == "GET":
        # A refused request, and any GET, writes nothing.
        assert db_snapshot() == before, f"{where} changed the database"


# --- the admin console ------------------------------------------------------------------------


def admin_url(name: str, world) -> str:
    """A URL for each admin pattern, with an existing object where the pattern takes one."""
    if name == "<catch-all>":
        return "/admin/no-such-page/"
    route = next(r for ns, n, r in project_urls() if ns == ADMIN_NAMESPACE and n == name)
    args = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route)
    kwargs = {}
    for arg in (a or b for a, b in args):
        if arg == "app_label":
            kwargs[arg] = "vault"
        elif arg == "content_type_id":
            kwargs[arg] = ContentType.objects.get_for_model(PamUser).pk
        elif arg in ("object_id", "id", "pk"):
            if "content_type_id" in route:
                kwargs[arg] = world.record.pk
                continue
            app_label, model_name = _admin_model(name)
            model = ContentType.objects.get(app_label=app_label, model=model_name).model_class()
            first = model.objects.order_by("pk").first()
            kwargs[arg] = first.pk if first else 1
        else:
            raise AssertionError(f"admin URL {name}: no test value for {arg!r}; add one")
    return reverse(f"{ADMIN_NAMESPACE}:{name}", kwargs=kwargs)


def _admin_model(name: str) -> tuple[str, str]:
    from django.contrib import admin

    for model in admin.site._registry:
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(prefix):
            return model._meta.app_label, model._meta.model_name
    raise AssertionError(f"admin URL {name} names no registered model")


def _to_login(name: str, response) -> bool:
    location = response.get("Location", "")
    if name == "logout":
        # Django's admin_view sends a logout without permission to the index (then login).
        return response.status_code == 302 and location == reverse("admin:index")
    return response.status_code == 302 and (
        location.startswith(reverse("admin:login")) or location.startswith(reverse("login"))
    )


@pytest.mark.parametrize("name", admin_url_names())
def test_admin_url_sends_non_staff_to_login_and_changes_nothing(vault_world, name):
    url = admin_url(name, vault_world)
    clients = {persona: vault_world.client(persona) for persona in NON_STAFF}
    before = db_snapshot()
    for persona, client in clients.items():
        for method in ("get", "post"):
            response = getattr(client, method)(url, {})
            assert _to_login(name, response), f"{persona} {method} {url}: {response.status_code}"
    assert db_snapshot() == before, f"a non-staff request to {url} changed the database"


@pytest.mark.parametrize("name", admin_url_names())
def test_admin_url_never_fails_for_the_verified_superuser(vault_world, name):
    response = vault_world.client("superuser").get(admin_url(name, vault_world))
    assert response.status_code < 500


def test_verified_superuser_opens_the_admin_console(vault_world):
    assert vault_world.client("superuser").get("/admin/").status_code == 200
