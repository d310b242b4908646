"""The webhook pages: who may do what, the secret shown once, refused URLs, the log."""

from __future__ import annotations

import re

import pytest
from standardwebhooks import Webhook as Verifier

from tests.conftest import login, login_verified
from vault.models import AuditEvent
from webhooks.models import Webhook, WebhookDelivery
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db

EVENTS = ["rotation.failed", "rotation.may_be_live"]


@pytest.fixture
def hook(personas, settings):
    settings.WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]
    webhook, _ = webhook_create(
        url="http://127.0.0.1:9/hook", events=EVENTS, folder=personas.folder
    )
    return webhook


def test_a_manager_adds_a_webhook_and_sees_its_secret_once(personas, settings):
    settings.WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]
    client = login(personas.manager)
    url = f"/folders/{personas.folder.uid}/webhooks/add/"
    response = client.post(url, {"url": "http://127.0.0.1:8123/x", "events": EVENTS})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', response.content.decode())[1]
    webhook = Webhook.objects.get()
    assert (webhook.folder, webhook.events, webhook.enabled) == (personas.folder, EVENTS, True)
    assert webhook.get_secret("secret") == secret
    assert secret not in webhook.secret_enc  # stored encrypted
    Verifier(secret)  # the form the library takes
    for page in (f"/folders/{personas.folder.uid}/webhooks/", f"/webhooks/{webhook.uid}/"):
        body = client.get(page).content.decode()
        assert "127.0.0.1:8123" in body and secret not in body
    assert AuditEvent.objects.filter(action="webhook.created", folder=personas.folder).exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8123/x",  # loopback, not allowed by the setting
        "https://127.0.0.1/x",
        "https://10.1.2.3/hook",  # private
        "https://169.254.169.254/latest/meta-data/",  # link-local (cloud metadata)
        "https://[::1]/x",
        "https://[64:ff9b::a9fe:a9fe]/x",  # NAT64 of 169.254.169.254
        "https://[2002:7f00:1::]/x",  # 6to4 of 127.0.0.1
        "http://93.184.216.34/x",  # public but plain http
        "https://user:pw@93.184.216.34/x",
        "ftp://93.184.216.34/x",
        "not a url",
        "",
    ],
)
def test_a_disallowed_url_is_refused_at_save_time(personas, url):
    client = login(personas.manager)
    response = client.post(
        f"/folders/{personas.folder.uid}/webhooks/add/", {"url": url, "events": EVENTS}
    )
    assert response.status_code == 400
    assert 'class="field-error"' in response.content.decode()
    assert not Webhook.objects.exists()


def test_a_public_https_address_is_allowed(personas):
    client = login(personas.manager)
    response = client.post(
        f"/folders/{personas.folder.uid}/webhooks/add/",
        {"url": "https://93.184.216.34/hook", "events": EVENTS},
    )
    assert response.status_code == 200 and Webhook.objects.count() == 1


def test_an_unknown_event_is_a_field_error(personas, settings):
    settings.WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]
    response = login(personas.manager).post(
        f"/folders/{personas.folder.uid}/webhooks/add/",
        {"url": "http://127.0.0.1:8123/x", "events": ["rotation.exploded"]},
    )
    assert response.status_code == 400 and not Webhook.objects.exists()


def test_switch_off_on_redeliver_and_delete(personas, hook):
    client = login(personas.manager)
    client.post(f"/webhooks/{hook.uid}/enabled/", {"enabled": "off"})
    hook.refresh_from_db()
    assert not hook.enabled
    client.post(f"/webhooks/{hook.uid}/enabled/", {"enabled": "on"})
    hook.refresh_from_db()
    assert hook.enabled
    event = AuditEvent.objects.create(action="rotation.on_demand.fail", folder=personas.folder)
    delivery = WebhookDelivery.objects.create(
        webhook=hook, event=event, event_type="rotation.failed", status="failed", attempts=12
    )
    page = client.get(f"/webhooks/{hook.uid}/").content.decode()
    assert delivery.message_id in page and "Failed" in page
    response = client.post(f"/webhooks/{hook.uid}/deliveries/{delivery.uid}/redeliver/")
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    redelivered = AuditEvent.objects.get(action="webhook.redelivered")
    assert (redelivered.actor, redelivered.details["delivery"]) == (personas.manager, delivery.uid)
    client.post(f"/webhooks/{hook.uid}/delete/")
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()


POSTS = ["enabled/", "delete/"]


@pytest.mark.parametrize("suffix", POSTS)
def test_post_views_refuse_get(personas, hook, suffix):
    assert login(personas.manager).get(f"/webhooks/{hook.uid}/{suffix}").status_code == 405


def test_add_views_refuse_get(personas):
    client = login(personas.manager)
    assert client.get(f"/folders/{personas.folder.uid}/webhooks/add/").status_code == 405
    assert login_verified(personas.superuser).get("/webhooks/add/").status_code == 405


@pytest.mark.parametrize(
    "persona,code", [("viewer", 403), ("editor", 403), ("outsider", 404), ("superuser", 404)]
)
def test_refused_personas_change_nothing(personas, hook, persona, code):
    client = login(getattr(personas, persona))
    event = AuditEvent.objects.create(action="rotation.on_demand.fail", folder=personas.folder)
    delivery = WebhookDelivery.objects.create(
        webhook=hook, event=event, event_type="rotation.failed", status="failed"
    )
    for url in (
        f"/webhooks/{hook.uid}/enabled/",
        f"/webhooks/{hook.uid}/delete/",
        f"/webhooks/{hook.uid}/deliveries/{delivery.uid}/redeliver/",
        f"/folders/{personas.folder.uid}/webhooks/add/",
    ):
        assert (
            client.post(url, {"url": "http://127.0.0.1:1/", "events": EVENTS}).status_code == code
        )
    assert client.get(f"/webhooks/{hook.uid}/").status_code == code
    hook.refresh_from_db()
    delivery.refresh_from_db()
    assert hook.enabled and delivery.status == "failed" and Webhook.objects.count() == 1


def test_global_webhooks_are_for_verified_superusers(personas, settings):
    settings.WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]
    data = {"url": "http://127.0.0.1:8123/x", "events": EVENTS}
    for persona in ("manager", "editor"):
        client = login(getattr(personas, persona))
        assert client.get("/webhooks/").status_code == 403
        assert client.post("/webhooks/add/", data).status_code == 403
    assert login(personas.superuser).post("/webhooks/add/", data).status_code == 403  # unverified
    assert not Webhook.objects.exists()
    client = login_verified(personas.superuser)
    assert client.post("/webhooks/add/", data).status_code == 200
    webhook = Webhook.objects.get()
    assert webhook.folder is None
    assert client.get(f"/webhooks/{webhook.uid}/").status_code == 200
    # Folder managers do not reach global webhooks.
    assert login(personas.manager).get(f"/webhooks/{webhook.uid}/").status_code == 403


def test_members_page_links_to_webhooks_for_managers(personas):
    url = f"/folders/{personas.folder.uid}/webhooks/"
    assert (
        url
        in login(personas.manager).get(f"/folders/{personas.folder.uid}/members/").content.decode()
    )
    assert (
        url
        not in login(personas.viewer)
        .get(f"/folders/{personas.folder.uid}/members/")
        .content.decode()
    )


@pytest.mark.parametrize("suffix", ["", "enabled/", "delete/"])
def test_a_global_webhook_is_out_of_reach_of_an_unverified_superuser(personas, settings, suffix):
    settings.WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]
    webhook, _ = webhook_create(url="http://127.0.0.1:8123/x", events=EVENTS, folder=None)
    client = login(personas.superuser)  # signed in, no two-factor code given this session
    url = f"/webhooks/{webhook.uid}/{suffix}"
    response = client.get(url) if not suffix else client.post(url, {"enabled": ""})
    assert response.status_code == 403
    webhook.refresh_from_db()
    assert webhook.enabled and Webhook.objects.count() == 1
