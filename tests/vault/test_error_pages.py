"""The product's own error pages (templates/vault/400, 403, 404, 500), as `make run` and production
show them with DEBUG off: never Django's debug page, and nothing that names the URL patterns."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.urls import get_resolver

from tests.conftest import login
from vault import views

pytestmark = pytest.mark.django_db

DEBUG_PAGE_MARKS = ("URLconf", "Django tried these URL patterns", "Traceback", "DEBUG = True")


def assert_product_page(html: str, heading: str) -> None:
    assert f"<h1>{heading}</h1>" in html
    assert "PAM Vault" in html and 'href="/"' in html
    for mark in DEBUG_PAGE_MARKS:
        assert mark not in html


@pytest.mark.parametrize(
    "status,handler",
    [
        (400, views.bad_request),
        (403, views.permission_denied),
        (404, views.page_not_found),
        (500, views.server_error),
    ],
)
def test_every_error_status_has_the_products_handler(status, handler):
    assert get_resolver().resolve_error_handler(status) is handler


def test_a_missing_page_is_the_products_404(personas, settings):
    settings.DEBUG = False
    response = login(personas.viewer).get("/no-such-page/")
    assert response.status_code == 404
    assert_product_page(response.content.decode(), "Not found")


def test_an_address_for_another_host_is_the_products_400(personas, settings):
    settings.DEBUG = False
    response = Client().get("/", HTTP_HOST="vault.evil.example")
    assert response.status_code == 400
    assert_product_page(response.content.decode(), "Bad request")


def test_a_stale_form_is_the_products_403_saying_what_to_do(personas, settings):
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "viewer", "password": "x"})
    assert response.status_code == 403
    html = response.content.decode()
    assert_product_page(html, "Not allowed")
    assert "reload the page" in html


def test_a_server_error_is_the_products_500():
    response = views.server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert_product_page(response.content.decode(), "Something went wrong")


def test_the_500_page_needs_no_database(django_assert_num_queries):
    # A 500 may come from the database itself: the page renders without asking it anything.
    with django_assert_num_queries(0):
        response = views.server_error(RequestFactory().get("/"))
    assert response.status_code == 500
