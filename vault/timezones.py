"""Each person's time zone: the zone every page shows times in.

Their saved choice (the account page) when they made one, else their browser's (the `tz`
cookie that static/js/timezone.js sets from the browser's own zone), else UTC. The choice is
kept in the session at sign-in and when saved, so pages read no extra row for it. Stored times
stay in UTC; JSON and the CLI keep ISO 8601 with their offset.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import lru_cache

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

COOKIE = "tz"
SESSION_KEY = "vault_time_zone"
DEFAULT = "UTC"


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_zone(name: object) -> str | None:
    """`name` when it is an IANA time zone this machine knows, else None."""
    if isinstance(name, str) and name in _known_zones():
        return name
    return None


def person_time_zone(request: HttpRequest) -> str:
    """The zone this request's pages show times in."""
    session = getattr(request, "session", None)
    chosen = valid_zone(session.get(SESSION_KEY)) if session is not None else None
    return chosen or valid_zone(request.COOKIES.get(COOKIE)) or DEFAULT


def remember_time_zone(request: HttpRequest, name: str) -> None:
    """Keep a person's chosen zone for this session's pages ("" forgets it: the browser's)."""
    if valid_zone(name):
        request.session[SESSION_KEY] = name
    else:
        request.session.pop(SESSION_KEY, None)


class PersonTimeZoneMiddleware:
    """Activates the person's zone for the request: templates and timezone.localtime() show
    times in it."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timezone.activate(zoneinfo.ZoneInfo(person_time_zone(request)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


@lru_cache(maxsize=1)
def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone this machine knows, sorted, as form choices: a schedule may name any
    (Commander writes Etc/UTC, GMT, EST5EDT...), and a stored one is shown as it is."""
    return [(zone, zone) for zone in sorted(_known_zones())]


def place_zone_choices() -> list[tuple[str, str]]:
    """The zones named after a place (Area/City), and UTC: what a person picks for pages."""
    return [(zone, label) for zone, label in time_zone_choices() if "/" in zone or zone == "UTC"]


def load_time_zone_on_sign_in(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """user_logged_in: the person's saved choice, kept in the new session (one read, here
    only)."""
    from vault.models import Preference

    if request is None or not hasattr(request, "session"):
        return
    chosen = Preference.objects.filter(user=user).values_list("time_zone", flat=True).first()
    remember_time_zone(request, chosen or "")
