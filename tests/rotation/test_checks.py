"""The settings the rotation's safety depends on are checked."""

from rotation.checks import check_rotation_timing, longest_attempt_seconds


def test_default_settings_pass(settings):
    assert check_rotation_timing() == []


def test_a_lease_shorter_than_the_longest_aws_attempt_is_reported(settings):
    settings.ROTATION_LEASE_SECONDS = int(longest_attempt_seconds())
    [warning] = check_rotation_timing()
    assert warning.id == "rotation.W001"


def test_a_task_timeout_above_the_redelivery_time_is_an_error(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 300, "retry": 200}
    [error] = check_rotation_timing()
    assert error.id == "rotation.E002"


def test_an_unanswered_window_shorter_than_awss_signature_validity_is_reported(settings):
    settings.ROTATION_UNANSWERED_WINDOW_SECONDS = 60
    [warning] = check_rotation_timing()
    assert warning.id == "rotation.W002"
