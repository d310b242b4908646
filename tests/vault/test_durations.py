"""Waits in words (vault/durations.py): minutes and hours, never hundreds of seconds, and
never shorter than the real wait."""

from __future__ import annotations

import pytest

from vault.durations import wait_text


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (0.2, "1 second"),
        (45, "45 seconds"),
        (59.5, "1 minute"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (594, "10 minutes"),
        (3600, "1 hour"),
        (3601, "1 hour 1 minute"),
        (2 * 3600 + 5 * 60, "2 hours 5 minutes"),
        (-3, "0 seconds"),
    ],
)
def test_a_wait_reads_in_the_largest_units_rounded_up(seconds, words):
    assert wait_text(seconds) == words
