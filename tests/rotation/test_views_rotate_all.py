"""Rotate all on a folder: who may press it, what one press requests, and the progress page."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.test import Client
from django.utils.html import escape

from rotation import engine
from rotation.models import Rotation, RotationBatch
from tests.conftest import login, make_configuration, make_pam_user, rotate_all_confirmed
from tests.rotation.conftest import make_settings
from vault.models import AuditEvent, PamUser

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def no_queue():
    """The views only request rotations; the tests run them with engine.rotation_run."""
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def _rotatable(personas, config, count: int, **kw) -> list:
    records = []
    for n in range(count):
        record = make_pam_user(personas.folder, f"User{n:02d}", password="Old-Passw0rd!")
        make_settings(record, config, **kw)
        records.append(record)
    return records


def _url(folder) -> str:
    return f"/folders/{folder.uid}/rotate-all/"


def _status(client, batch):
    response = client.get(f"/folders/{batch.folder.uid}/rotate-all/{batch.uid}/status/")
    assert response.status_code == 200
    return response.json()


def _snapshot() -> tuple:
    return (
        list(Rotation.objects.values_list("pk", "status")),
        RotationBatch.objects.count(),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


# --- the button on the folder page -------------------------------------------------------------


def test_editor_sees_a_rotate_all_button_on_the_folder_page(personas):
    html = login(personas.editor).get(f"/folders/{personas.folder.uid}/").content.decode()
    buttons = re.findall(r'<button[^>]*id="rotate-all-button"[^>]*>(.*?)</button>', html, re.S)
    assert buttons == ["Rotate all"]
    assert f'action="{_url(personas.folder)}"' in html


def test_viewer_sees_no_rotate_all_button(personas):
    html = login(personas.viewer).get(f"/folders/{personas.folder.uid}/").content.decode()
    assert "Rotate all" not in html
    assert _url(personas.folder) not in html


# --- who may press it ---------------------------------------------------------------------------


def test_rotate_all_get_is_the_confirmation_and_requests_nothing(personas, config):
    _rotatable(personas, config, 2)
    before = _snapshot()
    response = login(personas.editor).get(_url(personas.folder))
    assert response.status_code == 200
    assert 'name="confirm" value="2"' in response.content.decode()
    assert _snapshot() == before


def test_viewer_forged_rotate_all_is_403_and_changes_nothing(personas, config):
    _rotatable(personas, config, 2)
    before = _snapshot()
    assert rotate_all_confirmed(login(personas.viewer), personas.folder).status_code == 403
    assert _snapshot() == before


def test_outsider_rotate_all_is_404_and_changes_nothing(personas, config):
    _rotatable(personas, config, 2)
    before = _snapshot()
    assert rotate_all_confirmed(login(personas.outsider), personas.folder).status_code == 404
    assert _snapshot() == before


def test_anonymous_rotate_all_redirects_to_login_and_changes_nothing(personas, config):
    _rotatable(personas, config, 2)
    before = _snapshot()
    response = rotate_all_confirmed(Client(), personas.folder)
    assert response.status_code == 302
    assert response.url.startswith("/login/")
    assert _snapshot() == before


# --- what one press requests --------------------------------------------------------------------


def test_rotate_all_requests_one_on_demand_rotation_per_enabled_record(personas, config):
    records = _rotatable(personas, config, 3)
    rotate_all_confirmed(login(personas.editor), personas.folder)
    rotations = Rotation.objects.all()
    assert sorted(r.pam_user_id for r in rotations) == sorted(r.pk for r in records)
    assert {(r.trigger, r.status, r.requested_by_id) for r in rotations} == {
        ("on_demand", "queued", personas.editor.pk)
    }


def test_rotate_all_redirects_to_the_batch_progress_page(personas, config):
    _rotatable(personas, config, 2)
    response = rotate_all_confirmed(login(personas.editor), personas.folder)
    batch = RotationBatch.objects.get()
    assert response.url == f"/folders/{personas.folder.uid}/rotate-all/{batch.uid}/"


def test_rotate_all_groups_its_rotations_in_a_batch(personas, config):
    _rotatable(personas, config, 3)
    rotate_all_confirmed(login(personas.editor), personas.folder)
    batch = RotationBatch.objects.get()
    assert batch.folder == personas.folder
    assert batch.requested_by == personas.editor
    assert set(batch.rotations.all()) == set(Rotation.objects.all())


def test_rotate_all_hands_each_rotation_to_its_gateway_after_commit(
    personas, config, no_queue, django_capture_on_commit_callbacks
):
    _rotatable(personas, config, 3)
    with django_capture_on_commit_callbacks(execute=True):
        rotate_all_confirmed(login(personas.editor), personas.folder)
    assert sorted(call.args[1] for call in no_queue.call_args_list) == sorted(
        Rotation.objects.values_list("pk", flat=True)
    )
    assert {call.kwargs["cluster"] for call in no_queue.call_args_list} == {"default"}


@pytest.mark.django_db(transaction=True)
def test_rotate_all_answers_queued_when_the_broker_refuses_after_commit(personas, config, no_queue):
    """The rotations committed: a broker that refuses their messages is no failure (the
    gateway's tick starts them, tests/rotation/test_broker_faults.py)."""
    _rotatable(personas, config, 3)
    no_queue.side_effect = ConnectionError("Error 111 connecting to 127.0.0.1:6379.")
    response = rotate_all_confirmed(login(personas.editor), personas.folder, **JSON)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["ok"], answer["total"]) == (True, 3)
    assert "pick them up within a minute" in answer["message"]
    assert no_queue.call_count == 1  # after one refusal the others are not offered
    assert set(Rotation.objects.values_list("status", flat=True)) == {Rotation.QUEUED}
    response = rotate_all_confirmed(login(personas.editor), personas.folder, follow=True)
    assert response.status_code == 200  # (all already in progress: nothing new was sent)


def test_records_without_settings_are_skipped_with_the_reason(personas, config):
    _rotatable(personas, config, 1)
    bare = make_pam_user(personas.folder, "NoSettings")
    rotate_all_confirmed(login(personas.editor), personas.folder)
    batch = RotationBatch.objects.get()
    assert not Rotation.objects.filter(pam_user=bare).exists()
    assert batch.skipped == [
        {
            "record": bare.uid,
            "title": bare.title,
            "reason": "Password rotation is not set up for this record: open Password Rotation "
            "Settings first.",
        }
    ]


def test_records_with_disabled_settings_are_skipped_with_the_reason(personas, config):
    (disabled,) = _rotatable(personas, config, 1, enabled=False)
    rotate_all_confirmed(login(personas.editor), personas.folder)
    batch = RotationBatch.objects.get()
    assert not Rotation.objects.exists()
    assert [s["record"] for s in batch.skipped] == [disabled.uid]
    assert "disabled" in batch.skipped[0]["reason"]


def test_skipped_records_are_listed_on_the_progress_page(personas, config):
    _rotatable(personas, config, 1)
    bare = make_pam_user(personas.folder, "NoSettings")
    client = login(personas.editor)
    html = client.get(rotate_all_confirmed(client, personas.folder).url).content.decode()
    assert "Skipped" in html
    assert f'href="/records/{bare.uid}/"' in html
    assert "Password rotation is not set up for this record" in html


def test_a_record_already_rotating_counts_as_in_progress_without_a_second_rotation(
    personas, config
):
    first, second = _rotatable(personas, config, 2)
    running = engine.rotation_request(record=first, trigger="scheduled")
    rotate_all_confirmed(login(personas.editor), personas.folder)
    batch = RotationBatch.objects.get()
    assert Rotation.objects.filter(pam_user=first).count() == 1
    assert running in batch.rotations.all()
    assert batch.skipped == []
    progress = _status(login(personas.editor), batch)
    assert (progress["total"], progress["done"], progress["active"]) == (2, 0, 2)


def test_two_overlapping_batches_both_follow_the_same_rotations(personas, config):
    _rotatable(personas, config, 2)
    client = login(personas.editor)
    rotate_all_confirmed(client, personas.folder)
    rotate_all_confirmed(client, personas.folder)
    older, newer = RotationBatch.objects.order_by("pk")
    assert Rotation.objects.count() == 2
    assert set(older.rotations.all()) == set(newer.rotations.all())


def test_rotate_all_is_audited_without_secrets(personas, config):
    _rotatable(personas, config, 2)
    make_pam_user(personas.folder, "NoSettings")
    rotate_all_confirmed(login(personas.editor), personas.folder)
    event = AuditEvent.objects.get(action="rotation.rotate_all")
    batch = RotationBatch.objects.get()
    assert event.actor == personas.editor
    assert event.folder == personas.folder
    assert event.details == {"batch": batch.uid, "requested": 2, "in_progress": 0, "skipped": 1}


def test_rotate_all_answers_json_when_asked(personas, config):
    _rotatable(personas, config, 2)
    data = rotate_all_confirmed(login(personas.editor), personas.folder, **JSON).json()
    batch = RotationBatch.objects.get()
    assert data["ok"] is True
    assert data["batch"] == batch.uid
    assert data["url"] == f"/folders/{personas.folder.uid}/rotate-all/{batch.uid}/"
    assert data["text"] == "0/2"


def test_a_folder_with_nothing_to_rotate_gives_a_finished_empty_batch(personas):
    make_pam_user(personas.folder, "NoSettings")
    client = login(personas.editor)
    html = client.get(rotate_all_confirmed(client, personas.folder).url).content.decode()
    assert "Nothing to rotate" in html
    progress = _status(client, RotationBatch.objects.get())
    assert (progress["total"], progress["finished"]) == (0, True)


# --- the progress page --------------------------------------------------------------------------


def test_progress_page_shows_a_progress_bar_and_done_over_total(personas, config):
    _rotatable(personas, config, 3)
    client = login(personas.editor)
    html = client.get(rotate_all_confirmed(client, personas.folder).url).content.decode()
    assert re.search(r'<progress id="batch-progress"[^>]*max="3" value="0"', html)
    assert '<strong id="batch-count">0/3</strong>' in html


def test_progress_page_loads_its_poller_and_has_no_inline_script_or_style(personas, config):
    _rotatable(personas, config, 1)
    client = login(personas.editor)
    html = client.get(rotate_all_confirmed(client, personas.folder).url).content.decode()
    assert '<script src="/static/js/rotate-all.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "style=" not in html


def test_progress_page_marks_a_finished_batch_so_the_script_does_not_poll(personas):
    make_pam_user(personas.folder, "NoSettings")
    client = login(personas.editor)
    html = client.get(rotate_all_confirmed(client, personas.folder).url).content.decode()
    assert 'data-finished="1"' in html


def test_viewer_may_follow_a_batch_of_their_folder(personas, config):
    _rotatable(personas, config, 1)
    rotate_all_confirmed(login(personas.editor), personas.folder)
    batch = RotationBatch.objects.get()
    assert _status(login(personas.viewer), batch)["total"] == 1


def test_outsider_gets_404_for_the_progress_page_and_its_json(personas, config):
    _rotatable(personas, config, 1)
    rotate_all_confirmed(login(personas.editor), personas.folder)
    batch = RotationBatch.objects.get()
    client = login(personas.outsider)
    page = f"/folders/{personas.folder.uid}/rotate-all/{batch.uid}/"
    assert client.get(page).status_code == 404
    assert client.get(page + "status/").status_code == 404


def test_a_batch_is_not_found_under_another_folder(personas, config):
    _rotatable(personas, config, 1)
    rotate_all_confirmed(login(personas.editor), personas.folder)
    batch = RotationBatch.objects.get()
    client = login(personas.outsider)  # a member of the other folder
    url = f"/folders/{personas.other_folder.uid}/rotate-all/{batch.uid}/status/"
    assert client.get(url).status_code == 404


def test_anonymous_progress_json_redirects_to_login(personas, config):
    _rotatable(personas, config, 1)
    rotate_all_confirmed(login(personas.editor), personas.folder)
    batch = RotationBatch.objects.get()
    url = f"/folders/{personas.folder.uid}/rotate-all/{batch.uid}/status/"
    assert Client().get(url).status_code == 302


# --- progress while the gateways work (real rotations against the AWS emulator) -----------------


def test_progress_json_reaches_10_of_10_when_the_rotations_finish(world, personas):
    records = [world.user(f"Bulk{n:02d}") for n in range(10)]
    client = login(personas.editor)
    rotate_all_confirmed(client, personas.folder)
    batch = RotationBatch.objects.get()
    assert _status(client, batch)["text"] == "0/10"
    for n, rotation in enumerate(batch.rotations.order_by("pk"), start=1):
        assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.SUCCEEDED
        progress = _status(client, batch)
        assert (progress["done"], progress["finished"]) == (n, n == 10)
    assert progress["text"] == "10/10"
    assert (progress["succeeded"], progress["failed"], progress["failures"]) == (10, 0, [])
    for record in records:
        record.refresh_from_db()
        assert world.aws_password(record.login) == record.get_secret("password")


def test_failures_appear_in_the_progress_json_as_they_happen(world, personas):
    world.user("Works")
    broken = world.user("NoConsole", console=False)
    client = login(personas.editor)
    rotate_all_confirmed(client, personas.folder)
    batch = RotationBatch.objects.get()
    failing = batch.rotations.get(pam_user=broken)
    assert engine.rotation_run(rotation_id=failing.pk) == Rotation.FAILED
    progress = _status(client, batch)
    assert (progress["text"], progress["finished"]) == ("1/2", False)
    (failure,) = progress["failures"]
    assert failure["title"] == broken.title
    assert failure["url"] == f"/records/{broken.uid}/"
    assert "console" in failure["error"].lower()
    assert failure["may_be_live"] is False


def test_failures_are_listed_on_the_progress_page(world, personas):
    broken = world.user("NoConsole", console=False)
    client = login(personas.editor)
    url = rotate_all_confirmed(client, personas.folder).url
    rotation = RotationBatch.objects.get().rotations.get()
    engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    html = client.get(url).content.decode()
    assert f'<a href="/records/{broken.uid}/">{broken.title}</a>' in html
    assert escape(rotation.error) in html
    assert '<strong id="batch-count">1/1</strong>' in html


# --- records the vault does not manage ---------------------------------------------------------


def test_rotate_all_skips_unmanaged_records_and_says_how_many(personas, config):
    managed, unmanaged, other = _rotatable(personas, config, 3)
    PamUser.objects.filter(pk__in=[unmanaged.pk, other.pk]).update(managed=False)
    bare = make_pam_user(personas.folder, "NoSettings")
    client = login(personas.editor)

    html = client.get(rotate_all_confirmed(client, personas.folder).url).content.decode()

    assert set(Rotation.objects.values_list("pam_user", flat=True)) == {managed.pk}
    batch = RotationBatch.objects.get()
    reasons = {s["record"]: s["reason"] for s in batch.skipped}
    assert set(reasons) == {unmanaged.uid, other.uid, bare.uid}
    assert reasons[unmanaged.uid] == reasons[other.uid] == engine.NOT_MANAGED
    assert "Rotation requested for 1 PAM Users; 3 skipped, 2 of them not managed by the vault." in (
        html
    )
    progress = _status(client, batch)
    assert (progress["skipped"], progress["unmanaged"]) == (3, 2)


def test_rotate_all_of_only_unmanaged_records_says_nothing_was_rotated_and_why(personas, config):
    (record,) = _rotatable(personas, config, 1)
    PamUser.objects.filter(pk=record.pk).update(managed=False)
    client = login(personas.editor)

    html = client.get(rotate_all_confirmed(client, personas.folder).url).content.decode()
    answer = rotate_all_confirmed(client, personas.folder, **JSON).json()

    assert not Rotation.objects.exists()
    assert "Nothing to rotate" in html
    assert "1 skipped, 1 of them not managed by the vault." in html
    assert (answer["skipped"], answer["unmanaged"]) == (1, 1)
