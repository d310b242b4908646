"""Accounts from the web: changing your own password on the account page, and the superusers'
People page (create, deactivate and reactivate, reset passwords, lift sign-in lockouts)."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import PASSWORD, login, login_verified, make_member, make_user
from tests.security.conftest import db_snapshot
from vault.models import AuditEvent, SharedFolder

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Sturdy-Vault-Key-93!"
ADDRESS = "10.9.8.7"
POST_VIEWS = ("create", "deactivate", "reactivate", "password", "unlock")


def _can_sign_in(username: str, password: str) -> bool:
    """The stored hash accepts `password` (sign-ins through the page are tested with axes)."""
    return User.objects.get(username=username).check_password(password)


def _signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def _audit(action: str) -> AuditEvent:
    return AuditEvent.objects.get(action=action)


def _no_secret_in_audit(*secrets: str) -> None:
    for event in AuditEvent.objects.all():
        text = repr(event.details) + event.object_repr
        for secret in secrets:
            assert secret not in text


def _people_url(action: str, username: str = "viewer") -> str:
    if action == "create":
        return "/account/people/new/"
    return f"/account/people/{username}/{action}/"


def _login_page(username: str, password: str, client: Client | None = None):
    client = client or Client()
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ADDRESS)


# --- your own password ---------------------------------------------------------------------------


def _change(client: Client, current: str = PASSWORD, new: str = NEW_PASSWORD, again=None):
    return client.post(
        "/account/password/",
        {"current_password": current, "new_password1": new, "new_password2": again or new},
    )


def test_account_page_has_the_password_form(personas):
    html = login(personas.viewer).get("/account/").content.decode()
    assert 'action="/account/password/"' in html
    for name in ("current_password", "new_password1", "new_password2"):
        assert f'name="{name}"' in html
    assert 'autocomplete="current-password"' in html and 'autocomplete="new-password"' in html


def test_changing_your_password_keeps_this_session_and_ends_the_others(personas):
    client, other = login(personas.viewer), login(personas.viewer)
    response = _change(client)
    assert response.status_code == 302 and response.url == "/account/"
    assert _signed_in(client)
    assert not _signed_in(other)
    assert _can_sign_in("viewer", NEW_PASSWORD)
    assert not _can_sign_in("viewer", PASSWORD)
    event = _audit("account.password_changed")
    assert event.actor == personas.viewer and event.details == {"username": "viewer"}
    _no_secret_in_audit(NEW_PASSWORD, PASSWORD)


@pytest.mark.parametrize(
    "current,new,again,field,error",
    [
        ("not-my-password", NEW_PASSWORD, None, "current_password", "not your current password"),
        (PASSWORD, NEW_PASSWORD, "Something-Else-93!", "new_password2", "two passwords differ"),
        (PASSWORD, "short", None, "new_password1", "too short"),
        (PASSWORD, "password123", None, "new_password1", "too common"),
        (PASSWORD, "viewer12!", None, "new_password1", "too similar"),
        (PASSWORD, "", None, "new_password1", "required"),
        (PASSWORD, "Null\x00Byte-Key-93!", None, "new_password1", "Null characters"),
    ],
)
def test_bad_password_change_is_a_field_error_and_changes_nothing(
    personas, current, new, again, field, error
):
    client = login(personas.viewer)
    before = User.objects.get(username="viewer").password
    response = _change(client, current, new, again)
    assert response.status_code == 200
    form = response.context["password_form"]
    assert error in " ".join(form.errors[field])
    assert User.objects.get(username="viewer").password == before
    assert not AuditEvent.objects.filter(action="account.password_changed").exists()
    html = response.content.decode()
    # A typed password is never echoed.
    # Typed passwords are never echoed back (an empty one has nothing to echo).
    assert not [v for v in (new, current) if v and f'value="{v}"' in html]


def test_wrong_current_passwords_count_towards_the_sign_in_lockout(personas):
    client = login(personas.viewer)
    for _ in range(4):
        assert _change(client, current="wrong").status_code == 200
    locked = _change(client, current="wrong")
    assert locked.status_code == 429
    assert "locked for 15 minutes" in locked.content.decode()
    # Locked: even the right current password is refused now, and nothing changes.
    assert _change(client).status_code == 429
    assert _can_sign_in("viewer", PASSWORD)
    assert not AuditEvent.objects.filter(action="account.password_changed").exists()


# --- the People page: who may ----------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["outsider", "viewer", "editor", "manager"])
def test_people_page_and_actions_are_refused_to_everyone_but_superusers(personas, persona):
    client = login(getattr(personas, persona))
    before = db_snapshot()
    assert client.get("/account/people/").status_code == 403
    for action in POST_VIEWS:
        assert client.post(_people_url(action), {"username": "x"}).status_code == 403, action
    assert db_snapshot() == before


def test_people_actions_reject_get(personas):
    client = login_verified(personas.superuser)
    for action in POST_VIEWS:
        assert client.get(_people_url(action)).status_code == 405, action
    assert client.post("/account/people/").status_code == 405


def test_anonymous_is_sent_to_sign_in(personas):
    requests = [("get", "/account/people/"), *(("post", _people_url(a)) for a in POST_VIEWS)]
    for method, url in requests:
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and response.url.startswith("/login/"), url


def test_unverified_superuser_is_sent_to_set_up_two_factor_first(personas):
    client = login(personas.superuser)  # no device: as the admin console, set one up first
    before = db_snapshot()
    response = client.get("/account/people/")
    assert response.status_code == 302
    assert response.url.startswith("/account/2fa/setup/?next=%2Faccount%2Fpeople%2F")
    for action in POST_VIEWS:
        response = client.post(_people_url(action))
        assert response.url.startswith("/account/2fa/setup/"), action
    assert db_snapshot() == before


def test_superuser_with_a_device_gives_a_code_first(personas):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=personas.superuser, name="Authenticator app", confirmed=True)
    client = login(personas.superuser)  # signed in, code not given yet
    before = db_snapshot()
    response = client.post(_people_url("deactivate"))
    assert response.status_code == 302 and response.url.startswith("/account/2fa/verify/")
    assert User.objects.get(username="viewer").is_active
    assert db_snapshot() == before


def test_verified_superuser_sees_everyone_and_the_nav_link(personas):
    client = login_verified(personas.superuser)
    html = client.get("/account/people/").content.decode()
    for user in User.objects.all():
        assert f'id="person-{user.username}"' in html
    assert '<a href="/account/people/" aria-current="page">People</a>' in html
    assert "/account/people/" not in login(personas.editor).get("/").content.decode()


# --- create ---------------------------------------------------------------------------------------


def test_create_with_a_temporary_password_shows_it_once_and_it_signs_in(personas):
    client = login_verified(personas.superuser)
    response = client.post("/account/people/new/", {"username": "newcomer", "temporary": "on"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    password = re.search(r'id="temporary-password">([^<]+)<', response.content.decode())[1]
    assert len(password) >= 20
    assert _can_sign_in("newcomer", password)
    newcomer = User.objects.get(username="newcomer")
    assert newcomer.is_active and not newcomer.is_superuser and not newcomer.is_staff
    event = _audit("person.created")
    assert event.actor == personas.superuser
    assert event.details == {"username": "newcomer", "temporary_password": True}
    _no_secret_in_audit(password)
    assert password not in client.get("/account/people/").content.decode()


def test_create_with_a_chosen_password(personas):
    client = login_verified(personas.superuser)
    response = client.post(
        "/account/people/new/",
        {"username": "chosen", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response.url == "/account/people/"
    assert _can_sign_in("chosen", NEW_PASSWORD)
    assert _audit("person.created").details["temporary_password"] is False


@pytest.mark.parametrize(
    "data,field,error",
    [
        ({"username": "viewer", "temporary": "on"}, "username", "already has"),
        ({"username": "VIEWER", "temporary": "on"}, "username", "already has"),
        ({"username": "bad name!", "temporary": "on"}, "username", "valid username"),
        ({"username": "", "temporary": "on"}, "username", "required"),
        ({"username": "x" * 151, "temporary": "on"}, "username", "at most 150"),
        ({"username": "nul\x00l", "temporary": "on"}, "username", "Null characters"),
        ({"username": "someone"}, "new_password1", "Enter the new password"),
        (
            {"username": "someone", "temporary": "on", "new_password1": NEW_PASSWORD},
            "new_password1",
            "untick",
        ),
        (
            {"username": "someone", "new_password1": "short", "new_password2": "short"},
            "new_password1",
            "too short",
        ),
        (
            {"username": "someone", "new_password1": NEW_PASSWORD, "new_password2": "other"},
            "new_password2",
            "differ",
        ),
    ],
)
def test_bad_create_is_a_field_error_and_changes_nothing(personas, data, field, error):
    client = login_verified(personas.superuser)
    before = db_snapshot()
    response = client.post("/account/people/new/", data)
    assert response.status_code == 200
    assert error in " ".join(response.context["create_form"].errors[field])
    assert db_snapshot() == before


# --- deactivate and reactivate --------------------------------------------------------------------


def test_deactivate_ends_their_sessions_and_signing_in(personas):
    theirs = login(personas.viewer)
    assert _signed_in(theirs)
    client = login_verified(personas.superuser)
    response = client.post(_people_url("deactivate"))
    assert response.status_code == 302 and response.url == "/account/people/"
    assert not User.objects.get(username="viewer").is_active
    assert not _signed_in(theirs)
    assert _login_page("viewer", PASSWORD).status_code == 200  # the sign-in page again
    event = _audit("person.deactivated")
    assert event.actor == personas.superuser and event.details == {"username": "viewer"}
    assert event.object_repr == "viewer"

    assert client.post(_people_url("reactivate")).status_code == 302
    assert User.objects.get(username="viewer").is_active
    assert _login_page("viewer", PASSWORD).status_code == 302
    assert _audit("person.reactivated").details == {"username": "viewer"}


def test_deactivating_yourself_is_refused_and_changes_nothing(personas):
    client = login_verified(personas.superuser)
    before = db_snapshot()
    response = client.post(_people_url("deactivate", "root"), follow=True)
    assert "You cannot deactivate yourself." in response.content.decode()
    assert User.objects.get(username="root").is_active
    assert db_snapshot() == before
    assert 'action="/account/people/root/deactivate/"' not in response.content.decode()


def test_unknown_username_is_404(personas):
    client = login_verified(personas.superuser)
    before = db_snapshot()
    for action in ("deactivate", "reactivate", "password", "unlock"):
        assert client.post(_people_url(action, "nobody")).status_code == 404
    assert db_snapshot() == before


# --- reset password -------------------------------------------------------------------------------


def _reset_data(person, **fields) -> dict:
    return {f"reset-{person.pk}-{name}": value for name, value in fields.items()}


def test_reset_to_a_temporary_password_shows_it_once_and_ends_their_sessions(personas):
    theirs = login(personas.viewer)
    client = login_verified(personas.superuser)
    response = client.post(_people_url("password"), _reset_data(personas.viewer, temporary="on"))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    password = re.search(r'id="temporary-password">([^<]+)<', response.content.decode())[1]
    assert _can_sign_in("viewer", password)
    assert not _can_sign_in("viewer", PASSWORD)
    assert not _signed_in(theirs)
    event = _audit("person.password_reset")
    assert event.details == {"username": "viewer", "temporary_password": True}
    _no_secret_in_audit(password)


def test_reset_to_a_chosen_password(personas):
    client = login_verified(personas.superuser)
    data = _reset_data(personas.viewer, new_password1=NEW_PASSWORD, new_password2=NEW_PASSWORD)
    response = client.post(_people_url("password"), data)
    assert response.status_code == 302
    assert _can_sign_in("viewer", NEW_PASSWORD)
    assert _audit("person.password_reset").details["temporary_password"] is False


def test_bad_reset_is_a_field_error_on_that_person_and_changes_nothing(personas):
    client = login_verified(personas.superuser)
    before = db_snapshot()
    data = _reset_data(personas.viewer, new_password1="viewer1", new_password2="viewer1")
    response = client.post(_people_url("password"), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<details class="person-reset" open>', html)
    assert "too short" in html
    assert "viewer1" not in html.replace('id="person-viewer"', "")
    assert db_snapshot() == before


def test_resetting_your_own_password_keeps_you_signed_in(personas):
    client = login_verified(personas.superuser)
    data = _reset_data(personas.superuser, new_password1=NEW_PASSWORD, new_password2=NEW_PASSWORD)
    assert client.post(_people_url("password", "root"), data).status_code == 302
    assert client.get("/account/people/").status_code == 200


# --- lockouts (django-axes, for real) ---------------------------------------------------------------


def test_unlock_lifts_a_real_lockout_from_the_login_page(personas):
    for _ in range(5):
        response = _login_page("editor", "wrong-password")
    assert response.status_code == 429
    assert _login_page("editor", PASSWORD).status_code == 429  # locked, right password or not

    client = login_verified(personas.superuser)
    html = client.get("/account/people/").content.decode()
    editor_row = html.split('id="person-editor"')[1].split("</li>")[0]
    assert "Sign-in locked" in editor_row
    assert 'action="/account/people/editor/unlock/"' in editor_row
    viewer_row = html.split('id="person-viewer"')[1].split("</li>")[0]
    assert "unlock" not in viewer_row

    response = client.post(_people_url("unlock", "editor"))
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="editor").exists()
    event = _audit("person.unlocked")
    assert event.actor == personas.superuser
    assert event.details == {"username": "editor", "attempts_removed": 1}

    signed = Client()
    assert _login_page("editor", PASSWORD, signed).status_code == 302
    assert _signed_in(signed)


def test_unlock_leaves_other_usernames_locked(personas):
    for username in ("editor", "viewer"):
        for _ in range(5):
            _login_page(username, "wrong-password")
    login_verified(personas.superuser).post(_people_url("unlock", "editor"))
    assert _login_page("editor", PASSWORD).status_code == 302
    assert _login_page("viewer", PASSWORD).status_code == 429


# --- suggestions when adding a member ---------------------------------------------------------------


def _suggested(html: str) -> set[str]:
    found = re.search(r'<datalist id="member-suggestions">(.*?)</datalist>', html, re.S)
    return set(re.findall(r'<option value="([^"]+)">', found[1])) if found else set()


def test_adding_a_member_suggests_only_people_who_share_a_folder_with_you(personas):
    side = SharedFolder.objects.create(name="Side")
    colleague, gone = make_user("colleague"), make_user("gone", is_active=False)
    make_user("stranger")  # shares no folder with the manager
    make_member(side, personas.manager, manage_users=True)
    for user in (colleague, gone, personas.viewer):
        make_member(side, user)

    html = login(personas.manager).get(f"/folders/{personas.folder.uid}/members/").content.decode()

    # Not the stranger, nor the outsider (another folder), nor Team's members (the viewer),
    # nor a deactivated person.
    assert _suggested(html) == {"colleague"}
    assert 'list="member-suggestions"' in html


def test_no_suggestions_for_those_who_cannot_add_members(personas):
    side = SharedFolder.objects.create(name="Side")
    make_member(side, personas.viewer)
    make_member(side, make_user("colleague"))
    html = login(personas.viewer).get(f"/folders/{personas.folder.uid}/members/").content.decode()
    assert "<datalist" not in html and "colleague" not in html


def test_a_suggested_person_can_be_added(personas):
    side = SharedFolder.objects.create(name="Side")
    make_member(side, personas.manager, manage_users=True)
    make_member(side, make_user("colleague"))
    client = login(personas.manager)
    response = client.post(
        f"/folders/{personas.folder.uid}/members/add/", {"username": "colleague"}
    )
    assert response.status_code == 302
    html = client.get(f"/folders/{personas.folder.uid}/members/").content.decode()
    assert "colleague" not in _suggested(html)
