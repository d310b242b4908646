"""rotation/candidates.py: which passwords AWS may hold besides a record's current one, in
what order, and revealing one (audited, decrypted only when asked)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rotation import aws, candidates, engine
from rotation.models import Rotation
from tests.conftest import make_configuration, make_pam_user
from tests.rotation import candidate_states as states
from tests.rotation.conftest import make_settings
from vault import services
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


@pytest.fixture
def rotatable(record, config):
    make_settings(record, config)
    return record


def _uids(found) -> list[tuple[str, str]]:
    return [(c.rotation.uid, c.kind) for c in found]


# --- which rotations hold a candidate ----------------------------------------------------------


def test_a_record_never_rotated_has_none(rotatable):
    assert candidates.password_candidates(rotatable) == []


def test_finished_and_unstarted_rotations_hold_none(rotatable):
    states.plain(rotatable, status=Rotation.SUCCEEDED, ago=300)
    states.plain(rotatable, status=Rotation.FAILED, ago=200, error="no console access")
    states.plain(rotatable, status=Rotation.RUNNING, ago=1, attempts=1)  # before write-ahead
    assert candidates.password_candidates(rotatable) == []


def test_a_failed_rotation_that_may_be_live_is_a_resolvable_candidate(rotatable):
    rotation = states.may_be_live(rotatable, pending="Maybe-Live-Passw0rd!1")
    [found] = candidates.password_candidates(rotatable)
    assert (found.rotation, found.kind, found.status) == (rotation, "may_be_live", "failed")
    assert found.resolvable
    assert found.since == rotation.created_at
    assert found.secret() == "Maybe-Live-Passw0rd!1"


def test_a_resolved_one_is_no_longer_a_candidate(rotatable):
    rotation = states.may_be_live(rotatable)
    engine.rotation_resolve(rotation=rotation, use_pending=False)
    assert candidates.password_candidates(rotatable) == []


@pytest.mark.parametrize("status", [Rotation.RUNNING, Rotation.QUEUED])
def test_a_committed_pending_password_of_an_active_rotation_is_being_set(rotatable, status):
    """Issue 11, finding 3b: running (or queued again after a recovered lease) with its
    password committed, so AWS may already hold it."""
    rotation = states.being_set(rotatable, status=status, pending="Being-Set-Passw0rd!1")
    [found] = candidates.password_candidates(rotatable)
    assert (found.rotation, found.kind, found.status) == (rotation, "being_set", status)
    assert not found.resolvable
    assert found.label == "being set now — AWS may already hold it"
    assert found.secret() == "Being-Set-Passw0rd!1"


def test_every_candidate_is_listed_newest_first(rotatable):
    """Issue 11, finding 3a: two failed rotations that both may have applied are both listed
    (AWS may hold the older one), and so is the one running now."""
    oldest = states.may_be_live(rotatable, ago=600)
    older = states.may_be_live(rotatable, ago=300)
    running = states.being_set(rotatable, ago=5)
    states.plain(rotatable, status=Rotation.SUCCEEDED, ago=900)
    found = candidates.password_candidates(rotatable)
    assert _uids(found) == [
        (running.uid, "being_set"),
        (older.uid, "may_be_live"),
        (oldest.uid, "may_be_live"),
    ]


def test_candidates_of_other_records_are_not_listed(rotatable, personas, config):
    other = make_pam_user(personas.folder, "Other", password="Other-Passw0rd!")
    make_settings(other, config)
    states.may_be_live(other)
    states.being_set(other)
    assert candidates.password_candidates(rotatable) == []


def test_may_be_live_candidates_are_the_engines_possibly_live_rotations(rotatable):
    """The two definitions of "may be live" must not drift apart."""
    states.may_be_live(rotatable, ago=400)
    resolved = states.may_be_live(rotatable, ago=300)
    engine.rotation_resolve(rotation=resolved, use_pending=False)
    states.plain(rotatable, status=Rotation.FAILED, ago=200, pending_may_be_live=True)  # emptied
    states.plain(rotatable, status=Rotation.FAILED, ago=100)
    states.may_be_live(rotatable, ago=50)
    states.being_set(rotatable)
    mine = {c.rotation.pk for c in candidates.password_candidates(rotatable)}
    mine_live = {
        c.rotation.pk for c in candidates.password_candidates(rotatable) if c.kind == "may_be_live"
    }
    engines = set(engine.possibly_live_rotations(rotatable).values_list("pk", flat=True))
    assert mine_live == engines and len(engines) == 2
    assert len(mine) == 3


def test_a_real_ambiguous_failure_makes_a_candidate(world, settings):
    settings.ROTATION_MAX_ATTEMPTS = 1
    record = world.user()
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    lost = aws.AwsTransient("connection closed", "ConnectionClosed", may_have_applied=True)
    with mock.patch("rotation.aws.set_console_password", side_effect=lost) as call:
        assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.FAILED
    [found] = candidates.password_candidates(record)
    assert (found.rotation.pk, found.kind) == (rotation.pk, "may_be_live")
    assert found.secret() == call.call_args.kwargs["password"]


def test_a_running_rotation_after_its_write_ahead_is_a_candidate(world):
    record = world.user()
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    claimed = engine.rotation_claim_with_pending(rotation_id=rotation.pk)
    pending = engine.rotation_write_ahead(rotation=claimed)
    [found] = candidates.password_candidates(record)
    assert (found.rotation.pk, found.kind, found.secret()) == (rotation.pk, "being_set", pending)


# --- cost and secrecy ----------------------------------------------------------------------------


def test_listing_is_one_query_and_decrypts_nothing(rotatable):
    states.may_be_live(rotatable, ago=300)
    states.may_be_live(rotatable, ago=200)
    states.being_set(rotatable)
    with (
        mock.patch("vault.crypto.decrypt", side_effect=AssertionError("decrypted")),
        CaptureQueriesContext(connection) as queries,
    ):
        found = candidates.password_candidates(rotatable)
        assert [c.rotation.pam_user for c in found] == [rotatable] * 3  # no query either
    assert len(found) == 3
    assert len(queries) == 1


def test_candidate_of_finds_one_by_its_rotation(rotatable):
    rotation = states.may_be_live(rotatable)
    assert candidates.candidate_of(rotatable, rotation.uid).rotation == rotation
    assert candidates.candidate_of(rotatable, "no-such-rotation") is None


def test_reveal_returns_the_password_and_audits_without_it(rotatable, personas):
    rotation = states.may_be_live(rotatable, pending="Audited-Passw0rd!1")
    [found] = candidates.password_candidates(rotatable)
    assert candidates.candidate_reveal(found, actor=personas.viewer) == "Audited-Passw0rd!1"
    event = AuditEvent.objects.get(action="password.revealed")
    assert (event.actor, event.object_uid) == (personas.viewer, rotatable.uid)
    assert event.details == {
        "what": "candidate password",
        "rotation": rotation.uid,
        "kind": "may_be_live",
    }


def test_reveal_as_cli_is_audited_as_cli(rotatable):
    states.being_set(rotatable)
    [found] = candidates.password_candidates(rotatable)
    candidates.candidate_reveal(found, actor_kind="cli")
    assert AuditEvent.objects.get(action="password.revealed").actor_kind == "cli"


def test_an_undecryptable_candidate_is_a_reveal_error_and_audited(rotatable, personas):
    rotation = states.may_be_live(rotatable)
    Rotation.objects.filter(pk=rotation.pk).update(pending_password_enc="v1:0000:AAAA")
    [found] = candidates.password_candidates(rotatable)
    with pytest.raises(services.RevealError):
        candidates.candidate_reveal(found, actor=personas.viewer)
    event = AuditEvent.objects.get(action="password.reveal_failed")
    assert event.details["rotation"] == rotation.uid
    assert not AuditEvent.objects.filter(action="password.revealed").exists()


def test_reveal_all_gives_each_candidate_or_why_not(rotatable, personas):
    broken = states.may_be_live(rotatable, ago=300)
    Rotation.objects.filter(pk=broken.pk).update(pending_password_enc="v1:0000:AAAA")
    running = states.being_set(rotatable, pending="Shown-Passw0rd!1")
    shown = candidates.candidates_reveal_all(record=rotatable, actor=personas.viewer)
    assert [(s["rotation"], s["kind"], s["password"]) for s in shown] == [
        (running.uid, "being_set", "Shown-Passw0rd!1"),
        (broken.uid, "may_be_live", None),
    ]
    assert "cannot be decrypted" in shown[1]["error"]
    assert shown[0]["status"] == "running" and shown[0]["since"] == running.created_at


def test_the_vault_reveal_hook_is_filled_by_the_rotation_app():
    assert candidates.candidates_reveal_all in services.RECORD_CANDIDATE_REVEALERS
