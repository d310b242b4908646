"""What a Reveal showed, carried from the POST that revealed it to the record page that shows it
(post/redirect/get), once.

A reveal (vault/views.py) decrypts and audits, keeps what it revealed here and redirects to the
record page; that page takes it out and shows it. So the address bar holds the record page, not
the POST-only reveal address, and Back, Forward or a reload never resubmit a reveal: the value
is gone once shown, and the page is sent with `Cache-Control: no-store`.

The values never travel in an address, a message or a log line. They wait in the session (a
database row, or whatever SESSION_ENGINE keeps), encrypted with the vault's key ring
(vault/crypto.py) and bound to the person, the record and a random nonce; at most one reveal
waits at a time, for KEEP_SECONDS, and is deleted by the first page of its record that reads it,
or by any later read once it has expired.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime

from django.http import HttpRequest

from vault import crypto

SESSION_KEY = "vault_revealed"
# Long enough for the redirect that follows the reveal, short enough that a value the browser
# never came back for does not stay.
KEEP_SECONDS = 60
# What a record page may be given (its context keys); nothing else is kept.
SHOWN = (
    "revealed_password",
    "revealed_access_secret_key",
    "revealed_candidates",
    "revealed_version",
    "revealed_version_password",
)


def _aad(request: HttpRequest, record_uid: str, nonce: str) -> bytes:
    return f"revealed:{request.user.pk}:{record_uid}:{nonce}".encode()


def _jsonable(value):
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    raise TypeError(f"cannot keep a {type(value).__name__}")


def _from_json(obj: dict):
    if set(obj) == {"__datetime__"}:
        return datetime.fromisoformat(obj["__datetime__"])
    return obj


def keep(request: HttpRequest, record_uid: str, **shown) -> None:
    """Keep what a reveal of the record `record_uid` showed (context keys of the record page,
    SHOWN) for its record page to show once. Replaces any earlier reveal still waiting."""
    unknown = set(shown) - set(SHOWN)
    if unknown:
        raise ValueError(f"not a revealed value: {sorted(unknown)}")
    nonce = secrets.token_urlsafe(12)
    sealed = crypto.encrypt(
        json.dumps(shown, default=_jsonable), aad=_aad(request, record_uid, nonce)
    )
    request.session[SESSION_KEY] = {
        "record": record_uid,
        "nonce": nonce,
        "until": int(time.time()) + KEEP_SECONDS,
        "sealed": sealed,
    }


def take(request: HttpRequest, record_uid: str) -> dict:
    """What a reveal of `record_uid` kept for its page, removed from the session; {} when there
    is nothing (never revealed, already shown, expired, or for another record)."""
    held = request.session.get(SESSION_KEY)
    if held is None:
        return {}
    expired = not isinstance(held, dict) or not (
        isinstance(held.get("until"), int) and time.time() <= held["until"]
    )
    if expired:
        del request.session[SESSION_KEY]
        return {}
    if held.get("record") != record_uid:
        return {}  # another record's, still on its way to its page
    del request.session[SESSION_KEY]
    try:
        text = crypto.decrypt(
            str(held.get("sealed", "")), aad=_aad(request, record_uid, str(held.get("nonce")))
        )
        shown = json.loads(text, object_hook=_from_json)
    except (crypto.CryptoError, ValueError):
        return {}  # sealed under a key no longer in the ring, or not ours: show nothing
    return {key: value for key, value in shown.items() if key in SHOWN}


# --- A reveal that waits for the password to be confirmed ---------------------------------------
#
# A reveal asked for more than VAULT_REAUTH_MINUTES after the last password entry sends the
# person to the confirm page, which then brings them back to the record page. That page
# resumes the reveal they asked for (vault/views.py record_detail), so the password shows at
# once. Only what was asked is kept (the record and, for a history row, the version; no
# secret), for the person's session, for ASK_SECONDS, and it is taken by the first page of
# that record: a visit without confirming forgets it.

ASKED_KEY = "vault_reveal_asked"
# Time to type the password on the confirm page.
ASK_SECONDS = 300


def ask(request: HttpRequest, record_uid: str, version_uid: str | None = None) -> None:
    """Remember that the person asked to reveal `record_uid`'s password (or a history
    version's) and was sent to confirm their password first. Replaces an earlier one."""
    request.session[ASKED_KEY] = {
        "record": record_uid,
        "version": version_uid,
        "until": int(time.time()) + ASK_SECONDS,
    }


def take_asked(request: HttpRequest, record_uid: str) -> tuple[bool, str | None]:
    """(True, version uid or None) when a reveal of `record_uid` is waiting, removed from the
    session; (False, None) otherwise. Another record's waits for its own page."""
    held = request.session.get(ASKED_KEY)
    if held is None:
        return False, None
    if not isinstance(held, dict) or not (
        isinstance(held.get("until"), int) and time.time() <= held["until"]
    ):
        del request.session[ASKED_KEY]
        return False, None
    if held.get("record") != record_uid:
        return False, None
    del request.session[ASKED_KEY]
    version = held.get("version")
    return True, version if isinstance(version, str) else None
