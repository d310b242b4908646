"""Who may see and change which webhooks: a folder's webhooks are its managers'
(`manage_users`, through vault/access.py; outsiders get 404), global ones superusers'."""

from __future__ import annotations

from django.http import Http404

from vault.access import folder_for_user, require_verified_superuser
from webhooks.models import Webhook, WebhookDelivery

NEED = "manage_users"


def require_global_manager(user) -> None:
    """Global webhooks: verified superusers only, for the list, the add and each webhook."""
    require_verified_superuser(user, "Global webhooks")


def webhook_for_user(user, uid: str) -> Webhook:
    webhook = Webhook.objects.select_related("folder").filter(uid=uid).first()
    if webhook is None:
        raise Http404("No such webhook.")
    if webhook.folder is None:
        require_global_manager(user)
    else:
        folder_for_user(user, webhook.folder.uid, NEED)
    return webhook


def delivery_for_user(user, uid: str, delivery_uid: str) -> WebhookDelivery:
    webhook = webhook_for_user(user, uid)
    delivery = webhook.deliveries.filter(uid=delivery_uid).first()
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery
