"""The secrets API's one endpoint: AWS's JSON 1.1 protocol, as AWS SDKs speak it.

`POST /aws/secretsmanager/` (the exact endpoint_url clients are given; botocore posts to the
endpoint URL's own path) with `X-Amz-Target: secretsmanager.<Action>`, a JSON body and a SigV4
signature. No session, CSRF or two-factor rule applies: the signature is the authentication
(secretsapi/authentication.py), and the view is CSRF-exempt. Errors are AWS's
`{"__type": code, "message": text}` with AWS's HTTP status, so SDKs raise their usual
exceptions (boto3: `client.exceptions.ResourceNotFoundException`, or ClientError with the code).

Every request is audited: `secretsapi.read` (GetSecretValue; BatchGetSecretValue once per
record read, each about its record so it is in the record's folder's trail),
`secretsapi.described`, `secretsapi.listed`, or `secretsapi.refused` with the reason (bad
input, and failures on the server's side, reason "server error", too). Refusals
of requests not signed by a usable credential (unknown key id, bad signature, revoked, expired,
network, throttled) are audited at most REFUSAL_AUDITS_PER_MINUTE times a minute per source
address, so a flood of forged requests cannot fill the audit trail.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import nullcontext
from urllib.parse import quote, urlsplit

from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from secretsapi import sigv4
from secretsapi.actions import ACTIONS, NOT_FOUND_MESSAGE
from secretsapi.authentication import Caller, Refused, authenticate
from secretsapi.errors import (
    INTERNAL,
    SERIALIZATION,
    UNKNOWN_OPERATION,
    ApiError,
)
from vault.audit import audit_record, client_ip

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
ACCEPTED_CONTENT_TYPES = {CONTENT_TYPE, "application/x-amz-json-1.0", "application/json"}
TARGET_PREFIX = "secretsmanager."
REFUSAL_AUDITS_PER_MINUTE = 30
# RFC 3986's path characters: what a client sends unencoded, for servers that hand over only
# the decoded path (Django's development and live servers; gunicorn gives RAW_URI).
PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _respond(body: dict, status: int = 200, *, code: str = "") -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    response["x-amzn-RequestId"] = str(uuid.uuid4())
    if code:
        response["x-amzn-ErrorType"] = code
    return response


def _error(exc: ApiError) -> HttpResponse:
    return _respond({"__type": exc.code, "message": exc.message}, exc.status, code=exc.code)


def _raw_path(request: HttpRequest) -> str:
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if raw:
        # An absolute-form request line ("POST http://host/path HTTP/1.1") names the path too.
        return urlsplit(raw).path if "://" in raw else raw.partition("?")[0]
    return quote(request.path, safe=PATH_SAFE)


def _headers(request: HttpRequest) -> dict[str, str]:
    headers = {}
    for key, value in request.META.items():
        if key.startswith("HTTP_"):
            headers[key[5:].lower().replace("_", "-")] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value != "":
            headers[key.lower().replace("_", "-")] = value
    return headers


def received(request: HttpRequest) -> sigv4.ReceivedRequest:
    return sigv4.ReceivedRequest(
        method=request.method or "",
        path=_raw_path(request),
        query=request.META.get("QUERY_STRING", ""),
        headers=_headers(request),
        body=request.body,
    )


def refusal_window() -> int:
    """The minute the refusal-audit counters count in."""
    return int(time.time() // 60)


def _storable(text: str, most: int) -> str:
    """`text` cut to `most` characters, with what a JSON column cannot hold on every database
    (NUL, lone surrogates) written as escapes: audit details quote what a caller sent."""
    cut = text[:most].encode("utf-8", "backslashreplace").decode("utf-8")
    return cut.replace("\x00", "\\x00")


def _audit_refusal(request: HttpRequest, refusal: Refused) -> None:
    ip = client_ip(request)
    key = f"secretsapi:refusals:{ip}:{refusal_window()}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:
        count = 1
    if count > REFUSAL_AUDITS_PER_MINUTE:
        return
    credential = refusal.credential
    details = {
        "reason": refusal.reason,
        "error": refusal.code,
        "access_key_id": _storable(refusal.access_key_id, 40),
    }
    if credential is not None:
        details["application"] = credential.application_name
    if count == REFUSAL_AUDITS_PER_MINUTE:
        details["note"] = "further refusals from this address this minute are not audited"
    audit_record("secretsapi.refused", actor_kind="system", request=request, details=details)


def _audit_action_refusal(request: HttpRequest, caller: Caller, exc: ApiError, params) -> None:
    secret_id = params.get("SecretId") if isinstance(params, dict) else None
    details = {
        "reason": "not found" if exc.message == NOT_FOUND_MESSAGE else "bad request",
        "error": exc.code,
        "application": caller.credential.application_name,
        "access_key_id": caller.credential.access_key_id,
    }
    if isinstance(secret_id, str):
        details["secret_id"] = _storable(secret_id, 200)
    audit_record("secretsapi.refused", actor_kind="system", request=request, details=details)


def _operation(request: HttpRequest) -> str:
    target = request.headers.get("X-Amz-Target", "")
    action = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
    if action not in ACTIONS:
        raise ApiError(
            UNKNOWN_OPERATION,
            f"Unknown operation '{target[:100]}'; this endpoint serves "
            + ", ".join(f"{TARGET_PREFIX}{a}" for a in ACTIONS)
            + ".",
        )
    return action


def _params(request: HttpRequest) -> dict:
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_CONTENT_TYPES:
        raise ApiError(SERIALIZATION, f"Content-Type must be {CONTENT_TYPE}.")
    if not request.body:
        return {}
    try:
        params = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise ApiError(SERIALIZATION, "The request body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise ApiError(SERIALIZATION, "The request body must be a JSON object.")
    return params


@csrf_exempt
def endpoint(request: HttpRequest) -> HttpResponse:
    """The Secrets Manager endpoint: authenticate, run one action, audit it."""
    if request.method != "POST":
        response = _error(
            ApiError(UNKNOWN_OPERATION, "The Secrets Manager API takes POST requests.", 405)
        )
        response["Allow"] = "POST"
        return response
    try:
        return _handle(request)
    except RequestDataTooBig:
        return _error(ApiError(SERIALIZATION, "The request body is too large."))
    except Exception:  # never a traceback page: an SDK expects AWS's error shape
        logger.exception("secrets API request failed")
        _audit_failure(request)
        return _error(ApiError(INTERNAL, "An error occurred on the server side.", 500))


def _audit_failure(request: HttpRequest, caller: Caller | None = None) -> None:
    """Audit a request that failed on the server's side (a bug, a database gone away) as a
    refusal, so a read that did not happen is still seen. The failure may be the database's,
    so this write may fail too: that is logged, and the caller still gets AWS's 500."""
    details = {"reason": "server error", "error": INTERNAL}
    if caller is not None:
        details["application"] = caller.credential.application_name
        details["access_key_id"] = caller.credential.access_key_id
    try:
        with transaction.atomic():
            audit_record(
                "secretsapi.refused", actor_kind="system", request=request, details=details
            )
    except Exception:
        logger.exception("could not audit the failed secrets API request")


def _handle(request: HttpRequest) -> HttpResponse:
    try:
        caller = authenticate(received(request), client_ip(request))
    except Refused as refusal:
        _audit_refusal(request, refusal)
        return _error(refusal)
    params: object = None
    try:
        action = _operation(request)
        params = _params(request)
        outcome = ACTIONS[action](caller, params)
    except ApiError as exc:
        _audit_action_refusal(request, caller, exc, params)
        return _error(exc)
    except Exception:  # a bug: AWS's 500, audited with the caller's credential
        logger.exception("secrets API action failed")
        _audit_failure(request, caller)
        return _error(ApiError(INTERNAL, "An error occurred on the server side.", 500))
    events = outcome.audit_events()
    # A batch's events are written in one transaction (one commit); one event needs none.
    with transaction.atomic() if len(events) > 1 else nullcontext():
        for record, details in events:
            audit_record(
                outcome.audit_action,
                actor_kind="system",
                obj=record,
                request=request,
                details=details,
            )
    return _respond(outcome.body)
