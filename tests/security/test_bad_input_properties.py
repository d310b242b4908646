"""Property-based tests (hypothesis): random, oversized, unicode, control-character and
injection-shaped input to every form and to `pam import` gives field errors or a clean
refusal, never a server error, and an invalid submission writes nothing."""

from __future__ import annotations

import json
import string
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rotation.passwords import AWS_SYMBOLS
from tests.conftest import PASSWORD
from tests.security.conftest import db_snapshot
from vault.cli import call_pam

pytestmark = pytest.mark.django_db

EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# For the tests that make many requests per example.
FEWER = settings(EXAMPLES, max_examples=12)

INJECTIONS = [
    "'; DROP TABLE vault_pamuser; --",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "\x00",
    "abc\x00def",
    "%00",
    "{{ 7|add:7 }}{% debug %}",
    "${jndi:ldap://example/a}",
    "\u202eevil\u202c",
    "\ufeff",
    "\r\n\t\x0b\x0c",
    "\x1b[31m",
    "🔑" * 50,
    "A" * 5000,
    " ",
    "",
    "null",
    "-1",
    "1e309",
    "NaN",
]


def nasty() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(INJECTIONS),
        st.text(max_size=300),
        st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=50),
        st.text(min_size=2000, max_size=20000, alphabet="xyz\x00<>'\""),
    )


def maybe(valid: str) -> st.SearchStrategy[str]:
    """Usually something nasty, sometimes the valid value, so that validation goes deep."""
    return st.one_of(st.just(valid), nasty())


def form_data(fields: dict[str, str]) -> st.SearchStrategy[dict]:
    """Each field valid or nasty; some fields left out altogether."""
    return st.fixed_dictionaries(
        {},
        optional={name: maybe(valid) for name, valid in fields.items()},
    ).map(lambda d: d)


def json_values() -> st.SearchStrategy:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        nasty(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(nasty(), inner, max_size=4)
        ),
        max_leaves=12,
    )


def assert_clean(response, allowed=(200, 302), where: str = "") -> None:
    assert response.status_code in allowed, f"{where}: {response.status_code}"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"Traceback" not in body


def submit(client, url: str, data: dict, allowed=(200, 302)) -> None:
    """POST; a 200 is the form again with errors, and then nothing may have changed (a 429
    sign-in lockout writes its audit event)."""
    before = db_snapshot()
    response = client.post(url, data)
    assert_clean(response, allowed, url)
    if response.status_code == 200:
        assert db_snapshot() == before, f"an invalid submission to {url} wrote something"


# --- vault forms -------------------------------------------------------------------------------

RECORD = {
    "title": "Random record",
    "login": "RandomUser",
    "distinguished_name": "arn:aws:iam::123456789012:user/RandomUser",
    "password": "Random-Passw0rd!",
}
CONFIGURATION = {
    "title": "Random configuration",
    "environment": "aws",
    "gateway": "default",
    "new_gateway": "",
    "aws_id": "AWS-Random",
    "access_key_id": "AKIARANDOM",
    "access_secret_key": "random-secret-key",
    "region_names": "us-east-1, eu-west-2",
    "endpoint_url": "",
    "default_rotation_schedule": '{"type": "ON_DEMAND"}',
}


@EXAMPLES
@given(data=form_data(RECORD))
def test_record_create_form(vault_world, data):
    client = vault_world.client("editor")
    submit(client, f"/folders/{vault_world.folder.uid}/records/new/", data)


@EXAMPLES
@given(data=form_data(RECORD))
def test_record_edit_form(vault_world, data):
    client = vault_world.client("editor")
    submit(client, f"/records/{vault_world.record.uid}/edit/", data)


# The schedule widget's fields (vault/schedule_widget.py), each valid for some type.
SCHEDULE_WIDGET = {
    "tz": "Europe/Berlin",
    "time": "03:00",
    "once_at": "2031-05-01T09:00",
    "interval_count": "2",
    "weekday": "FRIDAY",
    "month_day": "31",
    "occurrence": "LAST",
    "month": "FEBRUARY",
    "cron": "0 0 3 ? * MON-FRI",
}
# Left out (None): the JSON alone, as scripts written for the earlier form post it.
schedule_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "ON_DEMAND",
            "RUN_ONCE",
            "DAILY",
            "WEEKLY",
            "MONTHLY_BY_DAY",
            "MONTHLY_BY_WEEKDAY",
            "YEARLY",
            "CRON",
            "JSON",
        ]
    ),
    nasty(),
)

schedules = st.one_of(
    maybe('{"type": "DAILY", "time": "03:00", "tz": "Europe/Berlin", "intervalCount": 2}'),
    json_values().map(json.dumps),
    st.fixed_dictionaries({"type": maybe("WEEKLY"), "time": maybe("25:99")}).map(json.dumps),
)


@EXAMPLES
@given(
    data=form_data({**CONFIGURATION, **SCHEDULE_WIDGET}), schedule=schedules, kind=schedule_types
)
def test_configuration_create_form(vault_world, data, schedule, kind):
    data["default_rotation_schedule"] = schedule
    if kind is not None:
        data["schedule_type"] = kind
    client = vault_world.client("editor")
    submit(client, f"/folders/{vault_world.folder.uid}/configurations/new/", data)


@EXAMPLES
@given(
    data=form_data({**CONFIGURATION, **SCHEDULE_WIDGET}), schedule=schedules, kind=schedule_types
)
def test_configuration_edit_form(vault_world, data, schedule, kind):
    data["default_rotation_schedule"] = schedule
    if kind is not None:
        data["schedule_type"] = kind
    client = vault_world.client("editor")
    submit(client, f"/configurations/{vault_world.config.uid}/edit/", data)


@EXAMPLES
@given(name=nasty())
def test_folder_form(vault_world, name):
    submit(vault_world.client("editor"), "/folders/new/", {"name": name})


PERMISSIONS = ("can_edit", "can_share", "manage_records", "manage_users")


@EXAMPLES
@given(
    data=form_data({"username": "outsider", **{p: "on" for p in PERMISSIONS}}),
)
def test_member_add_form(vault_world, data):
    submit(vault_world.client("manager"), f"/folders/{vault_world.folder.uid}/members/add/", data)


@EXAMPLES
@given(data=form_data({p: "on" for p in PERMISSIONS}), username=maybe("viewer"))
def test_member_update_form(vault_world, data, username):
    client = vault_world.client("manager")
    url = f"/folders/{vault_world.folder.uid}/members/{quote(username, safe='')}/update/"
    # 400: a NUL in the address; 404: no such member (or no such URL).
    submit(client, url, data, allowed=(302, 400, 404))


ADDRESSES = [
    "/folders/{}/",
    "/folders/{}/members/",
    "/records/{}/",
    "/records/{}/rotation/status/",
    "/configurations/{}/",
    "/folders/{}/rotate-all/{}/",
    "/records/{}/versions/{}/reveal/",
    "/records/{}/rotations/{}/resolve/",
]


@FEWER
@given(uid=nasty(), other=nasty(), query=nasty())
def test_random_uids_and_queries_in_addresses(vault_world, uid, other, query):
    client = vault_world.client("editor")
    before = db_snapshot()
    for address in ADDRESSES:
        url = address.format(quote(uid, safe=""), quote(other, safe=""))
        for method in (client.get, client.post):
            response = method(url, {"q": query}) if method == client.get else method(url)
            # 404 for a uid that is not there, 405 for a method the view does not take.
            assert_clean(response, (200, 400, 404, 405), url)
    assert db_snapshot() == before


@pytest.mark.parametrize(
    "url",
    [
        "/records/%00/",
        "/folders/{folder}/members/%00/update/",
        "/folders/{folder}/?q=%00",
        "/audit/?q=a%00b",
        "/admin/vault/pamuser/?q=%00",
    ],
)
def test_a_nul_in_the_address_is_a_bad_request(vault_world, url):
    url = url.format(folder=vault_world.folder.uid)
    for persona in ("editor", "superuser"):
        response = (
            vault_world.client(persona).post(url)
            if "update" in url
            else (vault_world.client(persona).get(url))
        )
        assert response.status_code == 400, url


ROTATION = {
    "method": "iam_user",
    "configuration": "",  # filled in with the world's configuration
    "schedule_type": "MONTHLY_BY_WEEKDAY",
    "tz": "America/New_York",
    "time": "23:59",
    "interval_count": "3",
    "weekday": "FRIDAY",
    "month_day": "31",
    "occurrence": "LAST",
    "month": "FEBRUARY",
    "cron": "0 0 * * *",
    "once_at": "2031-05-01T09:00",
    "length": "64",
    "min_upper": "10",
    "min_lower": "10",
    "min_digits": "10",
    "min_symbols": "10",
    "symbols": AWS_SYMBOLS,
    "enabled": "on",
}


@EXAMPLES
@given(data=form_data(ROTATION), config_uid=st.booleans())
def test_rotation_settings_form(vault_world, data, config_uid):
    if config_uid and "configuration" in data:
        data["configuration"] = vault_world.config.uid
    client = vault_world.client("editor")
    submit(client, f"/records/{vault_world.record.uid}/rotation/", data)


@pytest.mark.parametrize(
    ("persona", "url", "field"),
    [
        ("editor", "/records/{record}/rotation/", "configuration"),
        ("editor", "/folders/{folder}/configurations/new/", "gateway"),
        ("editor", "/folders/{folder}/configurations/new/", "new_gateway_application"),
        ("manager", "/folders/{folder}/shares/", "application"),
    ],
)
def test_a_nul_in_a_choice_of_object_is_a_field_error(vault_world, persona, url, field):
    """PostgreSQL refuses NUL in text: a choice looked up by its key must refuse it first."""
    url = url.format(record=vault_world.record.uid, folder=vault_world.folder.uid)
    vault_world.folder.members.filter(user=vault_world.personas.manager).update(can_share=True)
    # A new gateway's application is read only when no existing gateway is chosen.
    data = {**ROTATION, **CONFIGURATION, "new_gateway": "fresh", "gateway": "", field: "a\x00b"}
    client = vault_world.client(persona)
    before = db_snapshot()
    # The sharing form answers a refusal on the members page it came from (302).
    response = client.post(url, data)
    assert_clean(response, (200, 302), url)
    assert db_snapshot() == before


@EXAMPLES
@given(keep=maybe("current"))
def test_rotation_resolve_choice(vault_world, keep):
    url = f"/records/{vault_world.record.uid}/rotations/{vault_world.rotation.uid}/resolve/"
    # "current" first answers the confirmation page (200), which changes nothing.
    submit(vault_world.client("editor"), url, {"keep": keep}, allowed=(200, 302))


# --- sign-in and account forms -----------------------------------------------------------------


@EXAMPLES
@given(data=form_data({"username": "editor", "password": PASSWORD, "next": "/"}))
def test_login_form(vault_world, data):
    from django.test import Client

    # 429: after five wrong passwords for one username the lockout page answers.
    submit(Client(raise_request_exception=False), "/login/", data, allowed=(200, 302, 429))


@EXAMPLES
@given(data=form_data({"password": PASSWORD, "next": "/"}))
def test_confirm_password_form(vault_world, data):
    client = vault_world.client("viewer")
    submit(client, "/account/confirm/", data, allowed=(200, 302, 429))


@FEWER
@given(code=nasty(), next_url=nasty())
def test_two_factor_code_forms(vault_world, code, next_url):
    from tests.conftest import login

    editor = vault_world.client("editor")
    editor.get("/account/2fa/setup/")
    submit(editor, "/account/2fa/setup/", {"code": code, "next": next_url})
    superuser = login(vault_world.personas.superuser)  # has a device, not verified here
    superuser.raise_request_exception = False
    submit(superuser, "/account/2fa/verify/", {"code": code, "next": next_url})


# --- query strings -----------------------------------------------------------------------------

AUDIT = {
    "action": "password.revealed",
    "actor": "editor",
    "folder": "Team",
    "since": "2026-01-01",
    "until": "2026-12-31",
    "q": "TestUser",
    "page": "2",
}


@FEWER
@given(params=form_data(AUDIT))
def test_audit_filters_and_search_queries(vault_world, params):
    client = vault_world.client("manager")
    before = db_snapshot()
    for url in ("/audit/", "/audit/export.csv", f"/folders/{vault_world.folder.uid}/", "/"):
        response = client.get(url, params)
        assert_clean(response, (200, 400), url)
    assert db_snapshot() == before


# --- pam import --------------------------------------------------------------------------------

USER_ENTRY = {
    "title": "Imported",
    "folder": "Team",
    "login": "Imported",
    "distinguished_name": "arn:aws:iam::123456789012:user/Imported",
    "password": "Imported-Passw0rd!",
}
CONFIG_ENTRY = {
    "title": "Imported configuration",
    "folder": "Team",
    "gateway": "default",
    "access_key_id": "AKIAIMPORT",
    "access_secret_key": "import-secret",
    "region_names": ["us-east-1"],
}


def entry(valid: dict) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {},
        optional={
            **{k: st.one_of(st.just(v), json_values()) for k, v in valid.items()},
            "rotation": json_values(),
        },
    )


documents = st.one_of(
    json_values(),
    st.fixed_dictionaries(
        {},
        optional={
            "folders": st.one_of(
                json_values(), st.lists(st.fixed_dictionaries({"name": maybe("Team")}))
            ),
            "gateways": st.lists(st.fixed_dictionaries({"name": maybe("gw-1")}), max_size=2),
            "configurations": st.lists(entry(CONFIG_ENTRY), max_size=2),
            "users": st.lists(entry(USER_ENTRY), max_size=3),
            "applications": json_values(),
        },
    ),
)


@EXAMPLES
@given(document=documents)
def test_pam_import_of_random_documents(vault_world, tmp_path_factory, document):
    path = tmp_path_factory.mktemp("import") / "doc.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    before = db_snapshot()
    code, out, err = call_pam("import", str(path))
    assert "Traceback" not in out + err
    assert "--traceback" not in err, err  # an unexpected exception, not a validation error
    if code == 0:
        assert json.loads(out).keys() >= {"folders", "users"}
        return
    assert code == 1
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("pam: error: ") for line in lines), err
    assert db_snapshot() == before, "a refused import wrote something"


@EXAMPLES
@given(text=st.text(max_size=500) | st.binary(max_size=500).map(lambda b: b.decode("latin-1")))
def test_pam_import_of_random_text(vault_world, tmp_path_factory, text):
    path = tmp_path_factory.mktemp("import") / "doc.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    before = db_snapshot()
    code, out, err = call_pam("import", str(path))
    assert "Traceback" not in out + err
    if code != 0:
        assert err.startswith("pam: error: ")
        assert db_snapshot() == before


@pytest.mark.parametrize(
    "document,path",
    [
        ({"folders": [{"name": "Team\x00"}]}, "folders[0].name"),
        ({"users": [{**USER_ENTRY, "title": "a\x00b"}]}, "users[0].title"),
        ({"configurations": [{**CONFIG_ENTRY, "aws_id": "\x00"}]}, "configurations[0].aws_id"),
        ({"users": [{**USER_ENTRY, "rotation": {"x\x00": 1}}]}, "users[0].rotation.x\\x00"),
    ],
)
def test_pam_import_refuses_nul_characters_by_json_path(vault_world, tmp_path, document, path):
    file = tmp_path / "nul.json"
    file.write_text(json.dumps(document), encoding="utf-8")
    before = db_snapshot()
    code, out, err = call_pam("import", str(file))
    assert code == 1
    assert err == f"pam: error: {path}: must not contain a NUL character (\\u0000)\n"
    assert db_snapshot() == before


def test_pam_import_errors_quoting_control_characters_stay_one_line_each(vault_world, tmp_path):
    file = tmp_path / "keys.json"
    file.write_text(json.dumps({"users": [{**USER_ENTRY, "bad\r\nkey\x1b[31m": 1}]}))
    code, out, err = call_pam("import", str(file))
    assert code == 1
    assert err.splitlines() == [
        "pam: error: users[0].bad\\r\\nkey\\x1b[31m: unknown key "
        "(expected: title, folder, login, password, distinguished_name, notes, managed, "
        "access_key_id, access_secret_key, password_history, rotation)"
    ]


def test_printable_injection_values_are_stored_as_text_not_run(vault_world):
    """The one value that is valid everywhere: a title. It round-trips as inert text."""
    title = "<script>alert(1)</script> '; DROP TABLE vault_pamuser; -- ../../etc/passwd"
    client = vault_world.client("editor")
    data = {**RECORD, "title": title}
    response = client.post(f"/folders/{vault_world.folder.uid}/records/new/", data, follow=True)
    html = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert set(string.ascii_letters) and response.status_code == 200
