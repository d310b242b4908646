"""The rotation method on Rotation Settings: the console password (iam_user) or the access key
(iam_access_key) with its two grace periods, on the page, in the service that saves them, in
the audit, and on the record's rotation panel (pending key, replaced keys)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from rotation.forms import RotationSettingsForm
from rotation.models import KeyRetirement, Rotation, RotationSettings
from rotation.passwords import Complexity
from rotation.rotation_settings import MAX_GRACE_HOURS, SettingsError, rotation_settings_save
from tests.conftest import login, make_configuration
from tests.rotation.conftest import make_settings
from tests.rotation.test_account_policy import DEMO_POLICY, SHORT, seen_by_a_test
from tests.rotation.test_views_settings import _data
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

KEY_ID = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def _url(record) -> str:
    return f"/records/{record.uid}/rotation/"


def _key_data(config, **changes) -> dict:
    """What the page posts for the access-key method; complexity fields left out unless given."""
    data = _data(
        config,
        method="iam_access_key",
        key_deactivate_after_hours="24",
        key_delete_after_hours="168",
        length=None,
        min_upper=None,
        min_lower=None,
        min_digits=None,
        min_symbols=None,
        symbols=None,
    )
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _form(personas, record, data) -> RotationSettingsForm:
    return RotationSettingsForm(data, record=record, user=personas.editor)


def _snapshot(record) -> tuple:
    return (
        list(RotationSettings.objects.filter(pam_user=record).values()),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


# --- the form ----------------------------------------------------------------------------------


def test_access_key_method_is_valid_without_the_password_complexity(personas, record, config):
    form = _form(personas, record, _key_data(config))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["method"] == "iam_access_key"
    assert form.complexity == Complexity()  # nothing stored yet: the default, kept for later


def test_access_key_method_keeps_the_stored_complexity(personas, record, config):
    make_settings(record, config, length=40)
    form = _form(personas, record, _key_data(config))
    assert form.is_valid(), form.errors
    assert form.complexity.length == 40


@pytest.mark.parametrize("hours", ["0", "1", str(MAX_GRACE_HOURS)])
def test_grace_periods_from_zero_to_a_year_are_accepted(personas, record, config, hours):
    data = _key_data(config, key_deactivate_after_hours=hours, key_delete_after_hours=hours)
    form = _form(personas, record, data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["key_deactivate_after_hours"] == int(hours)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("-1", "greater than or equal to 0"),
        (str(MAX_GRACE_HOURS + 1), f"less than or equal to {MAX_GRACE_HOURS}"),
        ("1.5", "whole number"),
        ("soon", "whole number"),
        ("", "Give a number of hours"),
    ],
)
@pytest.mark.parametrize("field", ["key_deactivate_after_hours", "key_delete_after_hours"])
def test_a_bad_grace_period_is_an_error_on_its_field(personas, record, config, field, value, words):
    form = _form(personas, record, _key_data(config, **{field: value}))
    assert not form.is_valid()
    assert words in " ".join(form.errors[field])


def test_console_password_method_keeps_stored_grace_periods_when_left_out(personas, record, config):
    make_settings(record, config, key_deactivate_after_hours=5, key_delete_after_hours=6)
    form = _form(personas, record, _data(config))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["key_deactivate_after_hours"] == 5
    assert form.cleaned_data["key_delete_after_hours"] == 6


def test_console_password_method_still_needs_its_complexity(personas, record, config):
    form = _form(personas, record, _data(config, length=None))
    assert not form.is_valid()
    assert "length" in form.errors


def test_an_unknown_method_is_refused(personas, record, config):
    form = _form(personas, record, _data(config, method="scripts_only"))
    assert not form.is_valid()
    assert "method" in form.errors


def test_the_account_password_policy_does_not_bind_the_access_key_method(personas, record, config):
    seen_by_a_test(config, DEMO_POLICY)  # the account asks for at least 20 characters
    assert not _form(personas, record, _data(config, **SHORT)).is_valid()
    form = _form(personas, record, _key_data(config, **SHORT, symbols="!@#"))
    assert form.is_valid(), form.errors


# --- the page ----------------------------------------------------------------------------------


def test_the_page_offers_both_methods_and_explains_the_grace_periods(personas, record):
    html = login(personas.editor).get(_url(record)).content.decode()
    assert '<option value="iam_user" selected>IAM User</option>' in html
    assert '<option value="iam_access_key">IAM User access key</option>' in html
    assert 'name="key_deactivate_after_hours" value="24"' in html
    assert 'name="key_delete_after_hours" value="168"' in html
    assert "Counted from the deactivation" in html
    assert 'id="complexity-applies"' in html  # the complexity says it is for passwords only
    assert "js/rotation-method.js" in html


def test_saving_the_access_key_method_stores_it_with_its_grace_periods(personas, record, config):
    data = _key_data(config, key_deactivate_after_hours="0", key_delete_after_hours="48")
    response = login(personas.editor).post(_url(record), data)
    assert response.status_code == 302
    rs = RotationSettings.objects.get(pam_user=record)
    assert (rs.method, rs.key_deactivate_after_hours, rs.key_delete_after_hours) == (
        "iam_access_key",
        0,
        48,
    )
    details = AuditEvent.objects.get(action="rotation_settings.created").details
    assert details["method"] == "iam_access_key"
    assert details["key_deactivate_after_hours"] == 0
    assert details["key_delete_after_hours"] == 48


def test_the_saved_method_is_shown_again(personas, record, config):
    make_settings(
        record,
        config,
        method="iam_access_key",
        key_deactivate_after_hours=3,
        key_delete_after_hours=4,
    )
    html = login(personas.editor).get(_url(record)).content.decode()
    assert '<option value="iam_access_key" selected>IAM User access key</option>' in html
    assert 'name="key_deactivate_after_hours" value="3"' in html
    assert 'name="key_delete_after_hours" value="4"' in html


def test_switching_back_to_the_console_password_audits_the_method(personas, record, config):
    make_settings(record, config, method="iam_access_key")
    assert login(personas.editor).post(_url(record), _data(config)).status_code == 302
    assert RotationSettings.objects.get(pam_user=record).method == "iam_user"
    details = AuditEvent.objects.get(action="rotation_settings.updated").details
    assert details["method"] == "iam_user"
    assert "key_deactivate_after_hours" not in details


def test_a_bad_grace_period_saves_nothing_and_says_why(personas, record, config):
    before = _snapshot(record)
    data = _key_data(config, key_delete_after_hours="-5")
    response = login(personas.editor).post(_url(record), data)
    assert response.status_code == 200
    assert "greater than or equal to 0" in response.content.decode()
    assert _snapshot(record) == before


def test_viewer_forged_access_key_settings_post_is_403_and_saves_nothing(personas, record, config):
    before = _snapshot(record)
    response = login(personas.viewer).post(_url(record), _key_data(config))
    assert response.status_code == 403
    assert _snapshot(record) == before


def test_outsider_forged_access_key_settings_post_is_404_and_saves_nothing(
    personas, record, config
):
    before = _snapshot(record)
    response = login(personas.outsider).post(_url(record), _key_data(config))
    assert response.status_code == 404
    assert _snapshot(record) == before


def test_anonymous_access_key_settings_post_saves_nothing(personas, record, config):
    before = _snapshot(record)
    response = Client().post(_url(record), _key_data(config))
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert _snapshot(record) == before


# --- the service -------------------------------------------------------------------------------


def _save(record, config, **kw) -> RotationSettings:
    return rotation_settings_save(
        record=record,
        configuration=config,
        schedule=None,
        use_configuration_schedule=False,
        complexity=Complexity(),
        enabled=True,
        **kw,
    )


def test_the_service_keeps_the_stored_method_and_grace_when_not_given(record, config):
    _save(record, config, method="iam_access_key", key_deactivate_after_hours=7)
    rs = _save(record, config)
    assert (rs.method, rs.key_deactivate_after_hours, rs.key_delete_after_hours) == (
        "iam_access_key",
        7,
        168,
    )


def test_new_settings_default_to_the_console_password(record, config):
    assert _save(record, config).method == "iam_user"


@pytest.mark.parametrize(
    "kw",
    [
        {"method": "saas"},
        {"key_deactivate_after_hours": -1},
        {"key_delete_after_hours": MAX_GRACE_HOURS + 1},
        {"key_delete_after_hours": True},
    ],
)
def test_the_service_refuses_what_the_settings_cannot_hold(record, config, kw):
    with pytest.raises(SettingsError):
        _save(record, config, **kw)
    assert not RotationSettings.objects.filter(pam_user=record).exists()
    assert not AuditEvent.objects.filter(action__startswith="rotation_settings").exists()


# --- the record page's rotation panel ----------------------------------------------------------


def _page(personas, record) -> str:
    return login(personas.editor).get(f"/records/{record.uid}/").content.decode()


def test_the_panel_shows_the_grace_periods_instead_of_the_complexity(personas, record, config):
    make_settings(
        record, config, method="iam_access_key", key_deactivate_after_hours=2,
        key_delete_after_hours=30,
    )  # fmt: skip
    html = _page(personas, record)
    assert "IAM User access key" in html
    assert "deactivated 2 h after a rotation, and deleted 30 h after that" in html
    assert "<dt>Complexity</dt>" not in html


def test_the_panel_shows_the_key_a_running_rotation_holds(personas, record, config):
    make_settings(record, config, method="iam_access_key")
    Rotation.objects.create(
        pam_user=record,
        configuration=config,
        gateway_name="default",
        trigger="on_demand",
        status=Rotation.RUNNING,
        pending_access_key_id="AKIANEWKEY0000000001",
    )
    html = _page(personas, record)
    assert 'id="pending-access-key"' in html and "AKIANEWKEY0000000001" in html


def test_a_finished_rotation_holds_no_pending_key(personas, record, config):
    make_settings(record, config, method="iam_access_key")
    Rotation.objects.create(
        pam_user=record,
        configuration=config,
        gateway_name="default",
        trigger="on_demand",
        status=Rotation.SUCCEEDED,
        pending_access_key_id="AKIANEWKEY0000000001",
    )
    assert 'id="pending-access-key"' not in _page(personas, record)


def test_the_panel_lists_the_replaced_keys_with_their_dates(personas, record, config):
    make_settings(record, config, method="iam_access_key")
    now = timezone.now()
    KeyRetirement.objects.create(
        pam_user=record,
        configuration=config,
        access_key_id="AKIAOLDKEY0000000001",
        deactivate_at=now + timedelta(hours=24),
        delete_at=now + timedelta(hours=192),
    )
    KeyRetirement.objects.create(
        pam_user=record,
        configuration=config,
        access_key_id="AKIAOLDKEY0000000002",
        deactivate_at=now - timedelta(days=9),
        delete_at=now - timedelta(days=2),
        deactivated_at=now - timedelta(days=9),
        deleted_at=now - timedelta(days=2),
    )
    html = _page(personas, record)
    assert 'id="key-retirements"' in html
    assert 'data-key="AKIAOLDKEY0000000001"' in html and "(still active)" in html
    assert 'data-key="AKIAOLDKEY0000000002"' in html


def test_a_password_record_has_no_key_rows(personas, record, config):
    make_settings(record, config)
    html = _page(personas, record)
    assert 'id="key-retirements"' not in html and 'id="pending-access-key"' not in html
    assert "<dt>Complexity</dt>" in html
