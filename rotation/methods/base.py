"""What a rotation method is to the engine: named durable steps, and three kinds of failure.

The engine (rotation/engine.py) runs every method the same way. It commits the secret that the
write-ahead step makes before any other step runs, so a killed worker never leaves AWS holding a
credential the vault lacks; it runs the applying steps in order with that secret, again after a
transient failure or a recovered lease; and it decides from the failure's kind whether the
rotation fails, is attempted again, or keeps its secret as "may be live".

A method never touches the Rotation row, and the engine never calls AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from rotation.models import Rotation


class StepFailed(Exception):
    """A step did not complete; ``message`` is a sentence a person can act on."""

    may_have_applied = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Refused(StepFailed):
    """Proof that nothing changed, and trying again will not help: the rotation fails now."""


class Transient(StepFailed):
    """Worth another attempt with the same secret; nothing changed in the target."""


class Ambiguous(Transient):
    """Worth another attempt with the same secret; the change may have happened, so from now
    on the secret is never thrown away (it may be live)."""

    may_have_applied = True


@dataclass(frozen=True)
class Made:
    """A new secret and, for an access key, the id AWS gave it."""

    secret: str
    key_id: str = ""


@dataclass(frozen=True)
class WriteAhead:
    """The step that makes the new secret.

    ``make(rotation)`` returns it (a str, or ``Made`` with a key id). The engine commits it
    (the rotation's pending secret) before any later step runs, and does not run this step
    again for a rotation that has one: a re-run must use the secret that may already have
    reached the target.

    ``changes_target``: making the secret changes the target (CreateAccessKey: AWS makes the
    secret, which exists only in its answer until the engine commits it). Then the engine
    runs ``prepare(rotation)`` first (clean up after an earlier attempt whose answer was lost,
    make room), records durably that the step is starting and when (Rotation.step and
    step_started_at, which ``prepare`` reads on the next attempt to find that attempt's
    effect), calls ``make``, and commits its secret as may-be-live at once. Such a step is
    never run at the claim.
    """

    name: str
    make: Callable[[Rotation], str | Made]
    changes_target: bool = False
    prepare: Callable[[Rotation], None] | None = None


@dataclass(frozen=True)
class Apply:
    """A step that acts on the target with the committed secret: ``act(rotation, secret)``,
    returning None or an ``Applied`` that says more.

    It runs again after a transient or ambiguous failure and after a killed worker, so doing
    it twice must be harmless.
    """

    name: str
    act: Callable[[Rotation, str], Applied | None]


@dataclass(frozen=True)
class Applied:
    """What an applying step may return when it completed. ``unanswered``: an earlier request
    of the step reached nobody's answer (a read timeout, a connection closed after sending), so
    it may still be applied by the target later, with the same secret."""

    unanswered: bool = False


Step = WriteAhead | Apply


@dataclass(frozen=True)
class RotationMethod:
    """One kind of credential: its name in RotationSettings.method and its steps, in order."""

    name: str
    label: str
    steps: tuple[Step, ...]
    # What the record holds of it: "password" (PamUser.password) or "access_key"
    # (PamUser.access_key_id and access_secret_key); the engine promotes the secret there.
    kind: str = "password"
    # Run in the transaction that records successes: (rotations, now) -> None, e.g. to
    # schedule the retirement of the credential the rotation replaced.
    after_success: Callable[[list[Rotation], datetime], None] | None = None
    # Its applying steps call AWS and nothing else (no database): a drain may run them on its
    # AWS lane (rotation/lane.py) while the worker's own thread records other rotations.
    applies_through_aws_only: bool = False

    def __post_init__(self) -> None:
        # The engine holds one pending secret per rotation (Rotation.pending_password_enc), so
        # a method writes ahead once, first. See rotation/methods/__init__.py for more steps.
        kinds = [isinstance(step, WriteAhead) for step in self.steps]
        if not kinds or not kinds[0] or any(kinds[1:]):
            raise ValueError(f"method {self.name}: one WriteAhead step, first, then Apply steps")

    @property
    def write_ahead(self) -> WriteAhead:
        return self.steps[0]  # type: ignore[return-value]  # checked in __post_init__

    @property
    def applying(self) -> tuple[Apply, ...]:
        return self.steps[1:]  # type: ignore[return-value]
