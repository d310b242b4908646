"""Search across every folder a person is a member of (the navigation's search box): by
title or login, paginated, and nothing from a folder they cannot see."""

from __future__ import annotations

import re

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import login, make_member, make_pam_user
from vault.models import PamUser, SharedFolder


def _titles(html: str) -> list[str]:
    return re.findall(r'<a href="/records/[^"]+/">([^<]+)</a>', html)


def test_finds_by_title_and_login_across_the_persons_folders(personas):
    second = SharedFolder.objects.create(name="Second")
    make_member(second, personas.viewer)
    make_pam_user(personas.folder, "deploy-bot", title="Deploy robot")
    make_pam_user(second, "ci-deploy", title="CI account")
    make_pam_user(personas.folder, "alice", title="Alice")
    html = login(personas.viewer).get("/search/?q=DEPLOY").content.decode()
    assert _titles(html) == ["CI account", "Deploy robot"]
    assert "Team" in html and "Second" in html  # each result names its folder
    assert f'href="/folders/{second.uid}/"' in html


def test_outsider_sees_nothing_of_other_folders(personas):
    make_pam_user(personas.folder, "secret-admin", title="Secret admin")
    make_pam_user(personas.other_folder, "outsider-own", title="Own admin")
    html = login(personas.outsider).get("/search/?q=admin").content.decode()
    assert _titles(html) == ["Own admin"]
    assert "Secret admin" not in html and "secret-admin" not in html
    assert personas.folder.uid not in html
    assert "1 record" in html  # the count is of their folders only


def test_empty_and_no_match(personas):
    client = login(personas.viewer)
    assert "Type a title or a login" in client.get("/search/").content.decode()
    html = client.get("/search/?q=nothing-like-this").content.decode()
    assert "No record in your folders matches “nothing-like-this”." in html


def test_paginated_with_the_query_kept(personas):
    PamUser.objects.bulk_create(
        PamUser(
            folder=personas.folder,
            title=f"svc {n:03d}",
            login=f"svc{n:03d}",
            distinguished_name=f"arn:aws:iam::123456789012:user/svc{n:03d}",
        )
        for n in range(120)
    )
    client = login(personas.viewer)
    first = client.get("/search/?q=svc").content.decode()
    assert len(_titles(first)) == 50 and "Page 1 of 3" in first
    assert 'href="?q=svc&amp;page=2"' in first
    last = client.get("/search/?q=svc&page=3").content.decode()
    assert _titles(last) == [f"svc {n:03d}" for n in range(100, 120)]


def test_query_count_does_not_grow_with_folders_or_records(personas):
    client = login(personas.viewer)
    client.get("/")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/search/?q=user&page=2").status_code == 200
        return len(ctx.captured_queries)

    def add(folder, count):
        PamUser.objects.bulk_create(
            PamUser(
                folder=folder,
                title=f"user {folder.pk} {n:04d}",
                login=f"user{n:04d}",
                distinguished_name=f"arn:aws:iam::123456789012:user/user{n:04d}",
            )
            for n in range(count)
        )

    add(personas.folder, 60)
    small = queries()
    for n in range(5):
        folder = SharedFolder.objects.create(name=f"More {n}")
        make_member(folder, personas.viewer)
        add(folder, 200)
    assert queries() == small


def test_search_box_in_the_navigation(personas):
    html = login(personas.viewer).get("/").content.decode()
    assert 'action="/search/"' in html and 'name="q"' in html


def test_anonymous_is_sent_to_login(personas):
    response = Client().get("/search/?q=a")
    assert response.status_code == 302 and response.url.startswith("/login/")
