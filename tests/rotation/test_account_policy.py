"""What the AWS account's password policy asks, as the configuration's last Test connection saw
it (rotation/connection.py): the settings form says it and refuses a shorter length, and the
record's rotation panel shows the complexity a rotation actually generates."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from rotation.connection import known_policy, policy_from_text, policy_text
from rotation.models import ConnectionTest
from rotation.passwords import AccountPolicy
from tests.conftest import login, make_configuration
from tests.rotation.conftest import make_settings
from tests.rotation.test_forms import _form

pytestmark = pytest.mark.django_db

# A length of 12 with minimums that fit it.
SHORT = {"length": "12", "min_upper": "2", "min_lower": "2", "min_digits": "2", "min_symbols": "2"}

DEMO_POLICY = AccountPolicy(
    minimum_length=20,
    require_upper=True,
    require_lower=True,
    require_digits=True,
    require_symbols=True,
)


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def seen_by_a_test(
    config, account_policy: AccountPolicy | None, *, ago: int = 60, **kw
) -> ConnectionTest:
    when = timezone.now() - timedelta(seconds=ago)
    fields = {
        "status": ConnectionTest.SUCCEEDED,
        "account_id": "123456789012",
        "policy": policy_text(account_policy),
        "created_at": when,
        "finished_at": when,
        **kw,
    }
    return ConnectionTest.objects.create(configuration=config, gateway_name="default", **fields)


def _fact(html: str, term: str) -> str:
    match = re.search(rf"<dt>{re.escape(term)}</dt><dd>(.*?)</dd>", html, re.S)
    assert match, f"no {term!r} in the rotation panel"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


# --- reading the policy back from the last test --------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        None,
        AccountPolicy(),
        AccountPolicy(minimum_length=8),
        DEMO_POLICY,
        AccountPolicy(minimum_length=14, require_digits=True),
        AccountPolicy(minimum_length=9, require_upper=True, require_symbols=True),
    ],
)
def test_the_policy_test_connection_shows_reads_back_as_the_same_policy(policy):
    assert policy_from_text(policy_text(policy)) == (policy or AccountPolicy())


@pytest.mark.parametrize("text", ["", "whatever", "minimum length x", "minimum length 20; eats"])
def test_text_that_is_not_a_policy_reads_as_unknown(text):
    assert policy_from_text(text) is None


def test_nothing_is_known_before_a_test_succeeds(config):
    assert known_policy(config) is None
    seen_by_a_test(config, None, status=ConnectionTest.FAILED, policy="")
    assert known_policy(config) is None


def test_the_latest_successful_test_is_what_is_known(config):
    seen_by_a_test(config, AccountPolicy(minimum_length=10), ago=600)
    latest = seen_by_a_test(config, DEMO_POLICY, ago=300)
    seen_by_a_test(config, None, ago=60, status=ConnectionTest.FAILED, policy="")  # says nothing
    known = known_policy(config)
    assert known.policy == DEMO_POLICY
    assert known.tested_at == latest.finished_at


# --- the settings form ---------------------------------------------------------------------------


def test_a_length_below_the_accounts_minimum_is_refused_saying_what_it_requires(
    personas, record, config
):
    seen_by_a_test(config, DEMO_POLICY)
    form = _form(personas, record, config, **SHORT)
    assert not form.is_valid()
    (error,) = form.errors["length"]
    assert "requires at least 20 characters" in error
    assert config.title in error and "Test connection" in error


def test_the_accounts_minimum_length_itself_is_accepted(personas, record, config):
    seen_by_a_test(config, DEMO_POLICY)
    form = _form(personas, record, config, length="20")
    assert form.is_valid(), form.errors


def test_any_length_is_accepted_while_the_policy_is_unknown(personas, record, config):
    form = _form(personas, record, config, **SHORT)
    assert form.is_valid(), form.errors


def test_the_settings_page_says_what_the_account_requires(personas, record, config):
    seen_by_a_test(config, DEMO_POLICY)
    make_settings(record, config)
    html = login(personas.editor).get(f"/records/{record.uid}/rotation/").content.decode()
    note = re.search(r'id="account-policy"[^>]*>(.*?)</', html, re.S).group(1)
    assert "minimum length 20; requires upper-case, lower-case, digits, symbols" in note
    assert config.title in note


def test_the_settings_page_says_when_the_requirement_is_not_known(personas, record, config):
    make_settings(record, config)
    html = login(personas.editor).get(f"/records/{record.uid}/rotation/").content.decode()
    note = re.search(r'id="account-policy"[^>]*>(.*?)</', html, re.S).group(1)
    assert "Test connection" in note and "not known" in note


def test_a_refused_save_changes_nothing(personas, record, config):
    seen_by_a_test(config, DEMO_POLICY)
    rs = make_settings(record, config, length=24)
    client = login(personas.editor)
    data = dict(_form(personas, record, config, **SHORT).data)
    response = client.post(f"/records/{record.uid}/rotation/", data)
    assert response.status_code == 200
    assert "requires at least 20 characters" in response.content.decode()
    rs.refresh_from_db()
    assert rs.length == 24


# --- the record page: what is actually generated -------------------------------------------------


def test_the_panel_shows_the_length_the_account_policy_raises_it_to(personas, record, config):
    # Saved before the policy was known (or through `pam import`): 12 asked, 20 generated.
    seen_by_a_test(config, DEMO_POLICY)
    make_settings(record, config, length=12, min_symbols=0)
    html = login(personas.editor).get(f"/records/{record.uid}/").content.decode()
    complexity = _fact(html, "Complexity")
    assert complexity.startswith("20 characters, at least 2 upper, 2 lower, 2 digits, 1 symbols")
    assert "the settings ask for 12 characters and 0 symbols" in complexity
    assert "minimum length 20" in complexity


def test_the_panel_shows_the_settings_as_they_are_when_the_policy_asks_less(
    personas, record, config
):
    seen_by_a_test(config, DEMO_POLICY)
    make_settings(record, config, length=24)
    html = login(personas.editor).get(f"/records/{record.uid}/").content.decode()
    complexity = _fact(html, "Complexity")
    assert complexity.startswith("24 characters, at least 2 upper, 2 lower, 2 digits, 2 symbols")
    assert "settings ask for" not in complexity
    assert "meets the AWS account's password policy" in complexity


def test_the_panel_says_when_the_accounts_policy_is_not_known(personas, record, config):
    make_settings(record, config, length=12)
    html = login(personas.editor).get(f"/records/{record.uid}/").content.decode()
    complexity = _fact(html, "Complexity")
    assert complexity.startswith("12 characters")
    assert "not known yet" in complexity and "Test connection" in complexity
