"""The folder page: records and configurations, paginated and searchable."""

from django.test import Client

from tests.conftest import login, make_configuration, make_pam_user
from vault.models import PamUser


def _url(personas, query: str = "") -> str:
    return f"/folders/{personas.folder.uid}/{query}"


def _bulk_users(folder, count: int) -> None:
    PamUser.objects.bulk_create(
        PamUser(
            folder=folder,
            title=f"User {n:04d}",
            login=f"user{n:04d}",
            distinguished_name=f"arn:aws:iam::123456789012:user/user{n:04d}",
        )
        for n in range(count)
    )


def test_editor_sees_records_configurations_and_create_links(personas):
    record = make_pam_user(personas.folder, "Alice")
    config = make_configuration(personas.folder, personas.gateway)
    html = login(personas.editor).get(_url(personas)).content.decode()
    assert f'href="/records/{record.uid}/"' in html
    assert f'href="/configurations/{config.uid}/"' in html
    assert f'href="/folders/{personas.folder.uid}/records/new/"' in html
    assert f'href="/folders/{personas.folder.uid}/configurations/new/"' in html


def test_viewer_sees_records_but_no_create_links(personas):
    record = make_pam_user(personas.folder, "Alice")
    html = login(personas.viewer).get(_url(personas)).content.decode()
    assert f'href="/records/{record.uid}/"' in html
    assert "/records/new/" not in html
    assert "/configurations/new/" not in html


def test_folder_page_links_to_members(personas):
    html = login(personas.viewer).get(_url(personas)).content.decode()
    assert f'href="/folders/{personas.folder.uid}/members/"' in html


def test_outsider_gets_404(personas):
    assert login(personas.outsider).get(_url(personas)).status_code == 404


def test_unknown_folder_uid_is_404(personas):
    assert login(personas.editor).get("/folders/no-such-folder/").status_code == 404


def test_anonymous_is_sent_to_login(personas):
    response = Client().get(_url(personas))
    assert response.status_code == 302
    assert response.url.startswith("/login/?next=")


def test_records_are_paginated_fifty_per_page(personas):
    _bulk_users(personas.folder, 120)
    client = login(personas.viewer)
    first = client.get(_url(personas)).context["page"]
    third = client.get(_url(personas, "?page=3")).context["page"]
    assert len(first.object_list) == 50
    assert first.paginator.num_pages == 3
    assert [r.title for r in third.object_list][0] == "User 0100"
    assert len(third.object_list) == 20


def test_a_page_number_out_of_range_shows_the_last_page(personas):
    _bulk_users(personas.folder, 60)
    response = login(personas.viewer).get(_url(personas, "?page=99"))
    assert response.context["page"].number == 2


def test_a_page_number_that_is_not_a_number_shows_the_first_page(personas):
    _bulk_users(personas.folder, 60)
    response = login(personas.viewer).get(_url(personas, "?page=abc"))
    assert response.context["page"].number == 1


def test_search_matches_title(personas):
    make_pam_user(personas.folder, "Alice", title="Production admin")
    make_pam_user(personas.folder, "Bob", title="Staging admin")
    page = login(personas.viewer).get(_url(personas, "?q=product")).context["page"]
    assert [r.login for r in page.object_list] == ["Alice"]


def test_search_matches_login(personas):
    make_pam_user(personas.folder, "Alice", title="One")
    make_pam_user(personas.folder, "Bob", title="Two")
    page = login(personas.viewer).get(_url(personas, "?q=bob")).context["page"]
    assert [r.login for r in page.object_list] == ["Bob"]


def test_search_keeps_the_query_in_the_pagination_links(personas):
    _bulk_users(personas.folder, 80)
    html = login(personas.viewer).get(_url(personas, "?q=User")).content.decode()
    assert "?q=User&amp;page=2" in html


def test_search_never_shows_records_of_other_folders(personas):
    make_pam_user(personas.other_folder, "Hidden")
    page = login(personas.viewer).get(_url(personas, "?q=Hidden")).context["page"]
    assert list(page.object_list) == []


def test_search_filters_configurations_by_title(personas):
    make_configuration(personas.folder, personas.gateway, title="Prod account")
    make_configuration(personas.folder, personas.gateway, title="Dev account")
    response = login(personas.viewer).get(_url(personas, "?q=prod"))
    assert [c.title for c in response.context["configurations"]] == ["Prod account"]


def test_folder_page_never_contains_a_password(personas):
    make_pam_user(personas.folder, "Alice", password="Folder-Secret-1")
    html = login(personas.editor).get(_url(personas)).content.decode()
    assert "Folder-Secret-1" not in html
