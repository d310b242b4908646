"""Rotation methods: what is rotated, one module per kind of credential, on one engine.

This package owns the registry, keyed by ``RotationSettings.method``. The engine
(rotation/engine.py) looks a rotation's method up here and knows nothing else about it; the
interface is in base.py: a method is a ``RotationMethod`` with named steps, and each step
reports a failure as ``Refused`` (proof nothing changed), ``Transient`` (nothing changed, try
again) or ``Ambiguous`` (may have applied: keep the secret as "may be live").

Registered: ``iam_user`` (iam_user.py, the console password): write ahead, set; and
``iam_access_key`` (iam_access_key.py, an access key pair): create (a write-ahead step that
changes AWS, so the engine records its start durably, runs its ``prepare`` first, and commits
its answer at once as may-be-live), verify; the engine's finish makes the key current and the
method's ``after_success`` schedules the replaced key's retirement (rotation/retirement.py).
"""

from __future__ import annotations

from rotation.methods.base import RotationMethod
from rotation.methods.iam_access_key import IAM_ACCESS_KEY
from rotation.methods.iam_user import IAM_USER

METHODS: dict[str, RotationMethod] = {method.name: method for method in (IAM_USER, IAM_ACCESS_KEY)}


def method_named(name: str) -> RotationMethod:
    """The registered method called ``name`` (a RotationSettings.method value)."""
    try:
        return METHODS[name]
    except KeyError:
        raise LookupError(f"No rotation method is registered as {name!r}.") from None
