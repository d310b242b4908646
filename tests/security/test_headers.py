"""Headers and cookies on every page: a Content-Security-Policy with nothing inline and no
other origin, frame and sniffing protection, the referrer policy, HSTS over HTTPS, HttpOnly
and SameSite cookies, and CSRF checks on every POST."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from tests.security.conftest import db_snapshot
from tests.security.test_access_matrix import EXPECT, PERSONAS, post_data, url_for

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
EDITOR = PERSONAS.index("editor")
GET_PAGES = sorted(name for name, m in EXPECT.items() if m["GET"].split()[EDITOR] == "200")
# The Secrets Manager endpoint is for SDKs, not browsers: no session authenticates there (a
# SigV4 signature over the body, host and time does), so there is nothing for CSRF to forge;
# tests/secretsapi covers its refusals and the access matrix a session's POST (400, unsigned).
CSRF_EXEMPT = {"secretsapi_endpoint"}
POST_URLS = sorted(
    name
    for name, m in EXPECT.items()
    if m["POST"].split()[EDITOR] != "405" and name not in CSRF_EXEMPT
)

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle=", re.I)
STYLE_ELEMENT = re.compile(r"<style[\s>]", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+=", re.I)
JS_URL = re.compile(r"(href|src|action)=\"\s*javascript:", re.I)


def assert_protective_headers(response, where: str) -> None:
    directives = dict(
        d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";")
    )
    assert directives == CSP, where
    assert response["X-Frame-Options"] == "DENY", where
    assert response["X-Content-Type-Options"] == "nosniff", where
    assert response["Referrer-Policy"] == "same-origin", where


def assert_nothing_inline(html: str, where: str) -> None:
    for pattern in (INLINE_SCRIPT, STYLE_ATTRIBUTE, STYLE_ELEMENT, EVENT_HANDLER, JS_URL):
        found = pattern.search(html)
        assert not found, f"{where}: {found.group(0)[:120] if found else ''}"


@pytest.mark.parametrize("name", GET_PAGES)
def test_every_page_sends_the_protective_headers_and_has_nothing_inline(vault_world, name):
    url = url_for(name, vault_world)
    response = vault_world.client("editor").get(url)
    assert response.status_code == 200
    assert_protective_headers(response, url)
    if response["Content-Type"].startswith("text/html"):
        assert_nothing_inline(response.content.decode(), url)


@pytest.mark.parametrize(
    "url", ["/login/", "/no-such-page/", "/records/no-such-uid/", "/admin/login/"]
)
def test_pages_for_anonymous_and_errors_send_the_headers_too(db, url):
    response = Client().get(url)
    assert_protective_headers(response, url)


def test_refusal_page_sends_the_headers(vault_world):
    url = url_for("record_edit", vault_world)
    response = vault_world.client("viewer").get(url)
    assert response.status_code == 403
    assert_protective_headers(response, url)
    assert_nothing_inline(response.content.decode(), url)


def test_admin_console_sends_the_headers(vault_world):
    response = vault_world.client("superuser").get("/admin/")
    assert response.status_code == 200
    assert_protective_headers(response, "/admin/")


def test_templates_have_no_inline_script_or_style():
    for path in sorted((ROOT / "templates").rglob("*.html")):
        assert_nothing_inline(path.read_text(), str(path.relative_to(ROOT)))


def test_pages_reference_no_other_origin():
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        found = re.search(r"(src|href)=\"(https?:)?//", text)
        assert not found, f"{path.relative_to(ROOT)}: {found.group(0)}"


def test_hsts_is_sent_over_https_in_production_settings(vault_world, settings):
    # The values production uses (test_deploy_check.py checks production sets them).
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    response = vault_world.client("editor").get("/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_login_sets_http_only_same_site_cookies(personas):
    client = Client()
    client.get("/login/")
    csrf = client.cookies["csrftoken"]
    assert csrf["httponly"] and csrf["samesite"] == "Lax"
    response = client.post("/login/", {"username": "editor", "password": PASSWORD})
    session = response.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"


def test_no_view_is_exempt_from_csrf():
    from django.urls import get_resolver, reverse

    exempt = {get_resolver().resolve(reverse(name)).func for name in CSRF_EXEMPT}
    for view in _callbacks(get_resolver().url_patterns):
        if view not in exempt:
            assert not getattr(view, "csrf_exempt", False), view


def _callbacks(patterns):
    for p in patterns:
        if hasattr(p, "url_patterns"):
            yield from _callbacks(p.url_patterns)
        else:
            yield p.callback


@pytest.mark.parametrize("name", POST_URLS)
def test_post_without_csrf_token_is_refused_and_changes_nothing(vault_world, name):
    url = url_for(name, vault_world)
    client = vault_world.client("editor")
    client.handler.enforce_csrf_checks = True
    before = db_snapshot()
    response = client.post(url, post_data(name, vault_world))
    assert response.status_code == 403, url
    assert b"CSRF" in response.content
    assert db_snapshot() == before
