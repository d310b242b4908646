"""Waits in words ("10 minutes", "1 hour 5 minutes") for messages and pages: people read
minutes and hours, not hundreds of seconds. Rounded up, so a wait is never shown shorter than
it is."""

from __future__ import annotations

import math


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'s' if n != 1 else ''}"


def wait_text(seconds: float) -> str:
    """How long a wait of ``seconds`` is, in the largest units that read naturally."""
    whole = max(0, math.ceil(seconds))
    if whole < 60:
        return _plural(whole, "second")
    minutes = math.ceil(whole / 60)
    if minutes < 60:
        return _plural(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    return _plural(hours, "hour") + (f" {_plural(minutes, 'minute')}" if minutes else "")
