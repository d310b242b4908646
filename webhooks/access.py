"""Who may see and change which webhooks: a folder's webhooks are its managers'
(`manage_users`, through vault/access.py; outsiders get 404), global ones superusers'."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from vault.access import folder_for_user
from webhooks.models import Webhook, WebhookDelivery

NEED = "manage_users"


def require_global_manager(user) -> None:
    if not (user.is_authenticated and user.is_active and user.is_superuser):
        raise PermissionDenied("Global webhooks are for superusers.")


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
