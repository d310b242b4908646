"""The webhook pages. Each view's first line resolves what it acts on through
webhooks/access.py (vault/access.py's folder rules), before anything else."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from vault.access import folder_for_user
from webhooks import services
from webhooks.access import NEED, delivery_for_user, require_global_manager, webhook_for_user
from webhooks.forms import WebhookForm
from webhooks.models import EVENT_TYPES, Webhook

DELIVERIES_SHOWN = 100


def _list_page(request, folder, form=None, status=200) -> HttpResponse:
    webhooks = Webhook.objects.filter(folder=folder).order_by("created_at", "id")
    context = {
        "folder": folder,
        "webhooks": webhooks,
        "form": form or WebhookForm(),
        "event_types": EVENT_TYPES,
    }
    return render(request, "webhooks/list.html", context, status=status)


def _add(request, folder) -> HttpResponse:
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            webhook, secret = services.webhook_create(
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                folder=folder,
                actor=request.user,
                request=request,
            )
        except services.WebhookError as exc:
            form.add_error("url", str(exc))
        else:
            response = render(
                request, "webhooks/created.html", {"webhook": webhook, "secret": secret}
            )
            response["Cache-Control"] = "no-store"  # the only place the secret is shown
            return response
    messages.error(request, "No webhook was added; see the errors below.")
    return _list_page(request, folder, form, status=400)


def _back(webhook: Webhook):
    return redirect("webhook_detail", webhook.uid)


@login_required
@require_GET
def folder_webhooks(request: HttpRequest, uid: str) -> HttpResponse:
    folder, _ = folder_for_user(request.user, uid, NEED)
    return _list_page(request, folder)


@login_required
@require_POST
@never_cache
def folder_webhook_add(request: HttpRequest, uid: str) -> HttpResponse:
    folder, _ = folder_for_user(request.user, uid, NEED)
    return _add(request, folder)


@login_required
@require_GET
def global_webhooks(request: HttpRequest) -> HttpResponse:
    require_global_manager(request.user)
    return _list_page(request, None)


@login_required
@require_POST
@never_cache
def global_webhook_add(request: HttpRequest) -> HttpResponse:
    require_global_manager(request.user)
    return _add(request, None)


@login_required
@require_GET
def webhook_detail(request: HttpRequest, webhook_uid: str) -> HttpResponse:
    webhook = webhook_for_user(request.user, webhook_uid)
    deliveries = webhook.deliveries.order_by("-created_at", "-id")[:DELIVERIES_SHOWN]
    context = {"webhook": webhook, "deliveries": deliveries, "event_types": EVENT_TYPES}
    return render(request, "webhooks/detail.html", context)


@login_required
@require_POST
def webhook_enabled(request: HttpRequest, webhook_uid: str) -> HttpResponse:
    webhook = webhook_for_user(request.user, webhook_uid)
    enabled = request.POST.get("enabled") == "on"
    services.webhook_set_enabled(
        webhook=webhook, enabled=enabled, actor=request.user, request=request
    )
    messages.success(request, f"The webhook is {'on' if enabled else 'off'}.")
    return _back(webhook)


@login_required
@require_POST
def webhook_delete(request: HttpRequest, webhook_uid: str) -> HttpResponse:
    webhook = webhook_for_user(request.user, webhook_uid)
    folder = webhook.folder
    services.webhook_delete(webhook=webhook, actor=request.user, request=request)
    messages.success(request, "The webhook was deleted with its delivery log.")
    return redirect("folder_webhooks", folder.uid) if folder else redirect("global_webhooks")


@login_required
@require_POST
def webhook_redeliver(request: HttpRequest, webhook_uid: str, delivery_uid: str) -> HttpResponse:
    delivery = delivery_for_user(request.user, webhook_uid, delivery_uid)
    services.webhook_redeliver(delivery=delivery, actor=request.user, request=request)
    note = "" if delivery.webhook.enabled else " It is sent once the webhook is turned on."
    messages.success(request, "The delivery will be sent again by the workers." + note)
    return _back(delivery.webhook)
