"""Webhooks: making, switching and removing them, fanning audit events out to them, and
delivering (signed per the Standard Webhooks specification) on the workers.

Two steps, both on the gateways' workers: the outbox consumer "webhooks" turns an audit event
into one WebhookDelivery per webhook that wants it (fast, database only), and the tick hook
"webhooks" sends due deliveries, each with its own retries and exponential backoff (the
outbox's schedule: 30 s doubling to at most 6 h) over WEBHOOK_MAX_ATTEMPTS attempts, within a
time budget per tick and with a short timeout, so a slow or dead receiver delays neither a
rotation nor another webhook for long. A 410 Gone turns the webhook off.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Signer

from events.outbox import outbox_backoff
from vault.audit import audit_record
from vault.models import AuditEvent, SharedFolder
from webhooks.models import EVENT_TYPES, Webhook, WebhookDelivery
from webhooks.outbound import webhook_url_problem
from webhooks.payloads import build_payload, event_types

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# A claimed delivery is hidden from other workers this long (longer than one attempt).
DELIVERY_LEASE = timedelta(minutes=2)
SEND_BATCH = 50
SEND_BUDGET_SECONDS = 20.0
USER_AGENT = "PAM-Vault-Webhooks/1"


class WebhookError(Exception):
    """Bad input to a webhook service; the message says what to fix."""


def new_secret() -> str:
    """A signing secret in the form the Standard Webhooks libraries take: whsec_<base64>."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def clean_events(names) -> list[str]:
    """The subscribed event names, in EVENT_TYPES order; WebhookError for an unknown one."""
    names = [n.strip() for n in names if n and n.strip()]
    unknown = sorted(set(names) - set(EVENT_TYPES))
    if unknown:
        raise WebhookError(
            f"unknown event {', '.join(unknown)}: choose from {', '.join(EVENT_TYPES)}"
        )
    if not names:
        raise WebhookError("choose at least one event")
    return [n for n in EVENT_TYPES if n in names]


def webhook_create(
    *,
    url: str,
    events,
    folder: SharedFolder | None,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> tuple[Webhook, str]:
    """Make a webhook; returns it and its secret (the only time the secret is given out)."""
    problem = webhook_url_problem(url)
    if problem:
        raise WebhookError(problem)
    events = clean_events(events)
    secret = new_secret()
    with transaction.atomic():
        webhook = Webhook(folder=folder, url=url, events=events, created_by=actor)
        webhook.save()  # the uid exists before the secret is bound to it
        webhook.set_secret("secret", secret)
        webhook.save(update_fields=["secret_enc"])
        _audit("webhook.created", webhook, actor, actor_kind, request, events=events)
    return webhook, secret


def webhook_set_enabled(
    *, webhook: Webhook, enabled: bool, actor=None, actor_kind: str = "user", request=None
) -> None:
    if webhook.enabled == enabled:
        return
    webhook.enabled, webhook.disabled_reason = enabled, ""
    with transaction.atomic():  # the change and its audit event together
        webhook.save(update_fields=["enabled", "disabled_reason"])
        action = "webhook.enabled" if enabled else "webhook.disabled"
        _audit(action, webhook, actor, actor_kind, request)


def webhook_delete(*, webhook: Webhook, actor=None, actor_kind: str = "user", request=None) -> None:
    with transaction.atomic():
        _audit("webhook.deleted", webhook, actor, actor_kind, request)
        webhook.delete()


def webhook_redeliver(
    *, delivery: WebhookDelivery, actor=None, actor_kind: str = "user", request=None
) -> None:
    """Send a delivery again, now (same body and webhook-id: receivers deduplicate on it),
    with a fresh set of attempts; audited, as it sends the event out again."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.PENDING, attempts=0, next_attempt_at=timezone.now()
        )
        _audit(
            "webhook.redelivered",
            delivery.webhook,
            actor,
            actor_kind,
            request,
            delivery=delivery.uid,
        )


def _audit(action: str, webhook: Webhook, actor, actor_kind, request, **details) -> None:
    audit_record(
        action,
        actor=actor,
        actor_kind=actor_kind,
        obj=webhook,
        folder=webhook.folder,
        request=request,
        details={"webhook": webhook.uid, "url": _origin_only(webhook.url), **details},
    )


def _origin_only(url: str) -> str:
    # A URL's path or query may carry a receiver's token: the audit trail keeps the origin.
    from vault.validators import endpoint_origin

    return endpoint_origin(url)


# --- fan-out: the outbox consumer "webhooks" ---------------------------------------------------


def webhooks_fan_out(event: AuditEvent) -> None:
    """One pending delivery per enabled webhook that wants `event` (idempotent: the outbox
    delivers at least once)."""
    names = event_types(event)
    if not names:
        return
    scope = Q(folder__isnull=True)
    if event.folder_id is not None:
        scope |= Q(folder_id=event.folder_id)
    candidates = Webhook.objects.filter(scope, enabled=True, created_at__lte=event.created_at)
    rows = []
    for webhook in candidates:
        if not set(names) & set(webhook.events):
            continue
        # A rotation is audited in the record's folder and again in its configuration's: a
        # global webhook gets it once, from the record's event.
        if (
            webhook.folder_id is None
            and event.object_type == "pamconfiguration"
            and (event.action.startswith("rotation."))
        ):
            continue
        rows.append(
            WebhookDelivery(
                webhook=webhook,
                event=event,
                event_type=names[0],
                payload=build_payload(event, names[0]),
                next_attempt_at=timezone.now(),
            )
        )
    if rows:
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)


# --- sending, on the workers: the tick hook "webhooks" -----------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead to an address the allow-list refuses: it counts as a failure.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def signed_request(delivery: WebhookDelivery, secret: str, *, now: datetime | None = None):
    """The POST of `delivery` with its Standard Webhooks headers."""
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
    moment = now or timezone.now()
    signature = Signer(secret).sign(msg_id=delivery.message_id, timestamp=moment, data=body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }
    return urllib.request.Request(
        delivery.webhook.url, data=body.encode(), headers=headers, method="POST"
    )


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """(HTTP status or None, error text without secrets or the URL)."""
    problem = webhook_url_problem(delivery.webhook.url)
    if problem:
        return None, "refused: the URL is no longer allowed (WEBHOOK_URL_ALLOWLIST)"
    try:
        request = signed_request(delivery, delivery.webhook.get_secret("secret"))
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            response.read(1024)
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"the receiver answered HTTP {exc.code}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return None, "timed out"
        return None, f"could not connect: {getattr(reason, 'strerror', None) or reason}"[:300]
    except TimeoutError:
        return None, "timed out"
    except Exception as exc:  # a delivery's failure is data, never a crashed worker
        logger.warning("webhook delivery %s failed", delivery.uid, exc_info=True)
        return None, f"{type(exc).__name__} (details in the gateway's log)"


def _claim(delivery: WebhookDelivery) -> bool:
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk,
        status=WebhookDelivery.PENDING,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
    ).update(attempts=F("attempts") + 1, next_attempt_at=timezone.now() + DELIVERY_LEASE)
    if claimed:
        delivery.attempts += 1
    return bool(claimed)


def _record(delivery: WebhookDelivery, **changes) -> bool:
    # Only while this worker's claim stands (a worker whose lease ran out writes nothing).
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.PENDING, attempts=delivery.attempts
        ).update(last_attempt_at=timezone.now(), **changes)
    )


def delivery_send(delivery: WebhookDelivery) -> str:
    """One attempt at a claimed delivery: "delivered", "retry", "failed" or "gone"."""
    code, error = _post(delivery)
    if code is not None and 200 <= code < 300:
        _record(
            delivery,
            status=WebhookDelivery.DELIVERED,
            response_code=code,
            last_error="",
            delivered_at=timezone.now(),
        )
        return "delivered"
    if code == 410:
        reason = f"The receiver answered 410 Gone on {timezone.now():%Y-%m-%d %H:%M} UTC."
        if _record(delivery, status=WebhookDelivery.FAILED, response_code=code, last_error=error):
            Webhook.objects.filter(pk=delivery.webhook_id).update(
                enabled=False, disabled_reason=reason
            )
            logger.warning("webhook %s turned off: 410 Gone", delivery.webhook.uid)
        return "gone"
    if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        _record(
            delivery,
            status=WebhookDelivery.FAILED,
            response_code=code,
            last_error=f"{error} (gave up after {delivery.attempts} attempts)"[:300],
        )
        return "failed"
    _record(
        delivery,
        response_code=code,
        last_error=error,
        next_attempt_at=timezone.now() + outbox_backoff(delivery.attempts),
    )
    return "retry"


def webhook_deliveries_send_due(
    *,
    now: datetime | None = None,
    limit: int = SEND_BATCH,
    budget_seconds: float = SEND_BUDGET_SECONDS,
) -> dict[str, int]:
    """Send the deliveries of enabled webhooks due at `now`, up to `limit` or the time
    budget. Returns counts by outcome."""
    now = now or timezone.now()
    started = time.monotonic()
    counts = {"delivered": 0, "retry": 0, "failed": 0, "gone": 0, "skipped": 0}
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.PENDING, next_attempt_at__lte=now, webhook__enabled=True
    ).select_related("webhook")
    for delivery in due.order_by("next_attempt_at", "id")[:limit]:
        if time.monotonic() - started > budget_seconds:
            break
        if not _claim(delivery):
            counts["skipped"] += 1
            continue
        counts[delivery_send(delivery)] += 1
    return counts
