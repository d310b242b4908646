"""GET /metrics: who may read it (a bearer token or an allowed network), and the text."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

# The classic text format (0.0.4), which every Prometheus version reads; names are plain ASCII.
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from metrics.collector import metrics_text


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _from_allowed_network(request: HttpRequest) -> bool:
    # REMOTE_ADDR only, as for sign-in lockouts (vault/settings.py): a client cannot choose
    # its own address with X-Forwarded-For.
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOWED_NETWORKS
    )


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """Why this request may not read the metrics (a 401 or 403 answer), or None if it may.
    Http404 when neither a token nor a network is configured: then /metrics does not exist."""
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        raise Http404
    if networks and _from_allowed_network(request):
        return None
    given = _bearer(request)
    if token and given is not None:
        if hmac.compare_digest(given.encode(), token.encode()):
            return None
        return HttpResponse(
            "The bearer token is not the metrics token.\n", status=403, content_type="text/plain"
        )
    if token:
        refused = HttpResponse(
            "Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401, content_type="text/plain"
        )
        refused["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return refused
    return HttpResponse(
        "This address is not in METRICS_ALLOWED_NETWORKS.\n", status=403, content_type="text/plain"
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    response = HttpResponse(metrics_text(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response
