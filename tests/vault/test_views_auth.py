"""Login and logout (Django's auth views, with a message after each)."""

from django.contrib.messages import get_messages
from django.test import Client

from tests.conftest import PASSWORD, login


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_login_page_labels_both_inputs(db):
    html = Client().get("/login/").content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html


def test_login_with_right_password_goes_home_with_a_message(personas):
    response = Client().post("/login/", {"username": "editor", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "Logged in as editor." in response.content.decode()


def test_login_with_wrong_password_shows_error_and_keeps_username(personas):
    response = Client().post("/login/", {"username": "editor", "password": "nope"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in html
    assert 'value="editor"' in html


def test_logout_ends_the_session_with_a_message(personas):
    client = login(personas.editor)
    response = client.post("/logout/", follow=True)
    assert "You are logged out." in response.content.decode()
    assert client.get("/").status_code == 302


def test_logout_rejects_get(personas):
    assert login(personas.editor).get("/logout/").status_code == 405


def test_signed_in_username_is_text_beside_the_log_out_button_not_inside_it(personas):
    import re

    html = login(personas.editor).get("/").content.decode()
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    (button,) = re.findall(r'<form method="post" action="/logout/".*?</form>', nav, re.S)
    assert re.search(r'<button type="submit" class="link">Log out</button>', button)
    assert "editor" not in button
    assert re.search(r'<span class="nav-user"[^>]*>.*?editor</span>', nav, re.S)
