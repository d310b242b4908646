"""Rotation methods: what is rotated, one module per kind of credential, on one engine.

This package owns the registry, keyed by ``RotationSettings.method``. The engine
(rotation/engine.py) looks a rotation's method up here and knows nothing else about it; the
interface is in base.py: a method is a ``RotationMethod`` with named steps, and each step
reports a failure as ``Refused`` (proof nothing changed), ``Transient`` (nothing changed, try
again) or ``Ambiguous`` (may have applied: keep the secret as "may be live").

Registered today: ``iam_user`` (iam_user.py, the console password): write ahead, set.

A method with more durable steps, such as IAM access keys (issue 14), declares them the same
way, in order, each with a name and its own failure classification::

    RotationMethod(name="iam_access_key", label="IAM access key", steps=(
        Apply("make room", ...),        # delete an inactive old key when the user has two
        WriteAhead("create", ...),      # CreateAccessKey: AWS makes the secret, which the
                                        # engine commits (the "commit new key" step) at once
        Apply("verify", ...),           # the new key authenticates (sts:GetCallerIdentity)
        Apply("make current", ...),     # the vault hands out the new key
        Apply("retire", ...),           # deactivate, later delete, the old key
    ))

Two things the engine must learn for that, and which belong to that work, not to this one:
the rotation must record the last step that completed (today "write ahead is done" is read from
the pending secret alone, and ``set`` is simply run again), so that a resumed rotation starts at
the right step; and a write-ahead step that changes AWS (CreateAccessKey returns a secret that
exists only in AWS's answer) is ambiguous until committed, so that step must be able to find its
own earlier effect (list the user's keys) when it is run again. Until then ``RotationMethod``
accepts exactly one WriteAhead step, first.
"""

from __future__ import annotations

from rotation.methods.base import RotationMethod
from rotation.methods.iam_user import IAM_USER

METHODS: dict[str, RotationMethod] = {method.name: method for method in (IAM_USER,)}


def method_named(name: str) -> RotationMethod:
    """The registered method called ``name`` (a RotationSettings.method value)."""
    try:
        return METHODS[name]
    except KeyError:
        raise LookupError(f"No rotation method is registered as {name!r}.") from None
