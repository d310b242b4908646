"""Candidates: the passwords AWS may hold for a record other than its current one.

This module owns what a candidate is (the kinds below), finding a record's candidates (one
query, newest first) and revealing one with its audit event. Every surface lists them from
``password_candidates``: `pam get`, `pam rotation resolve`, the record page's rotation panel
and its Reveal. Settling one (keep the current password or adopt the candidate) is the
engine's ``rotation_resolve``; who may see or settle them is vault/access.py's.

A candidate's secret is read only when asked (``Candidate.secret``, or ``candidate_reveal``,
which audits): listing candidates decrypts nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_

from django.db.models import Case, CharField, Q, Value, When
from django.http import HttpRequest
from django.utils import timezone

from rotation.models import Rotation
from vault.audit import REVEALED_ALONGSIDE, audit_record
from vault.crypto import CryptoError
from vault.models import PamUser
from vault.services import RevealError


def _pending_password(rotation: Rotation) -> str:
    return rotation.get_secret("pending_password")


def _requested_at(rotation: Rotation) -> datetime:
    # AWS cannot hold a rotation's password before the rotation was requested.
    return rotation.created_at


@dataclass(frozen=True)
class CandidateKind:
    """One reason a rotation's password may be held by AWS."""

    name: str
    # What a person is told about a candidate of this kind (the surfaces add its rotation,
    # status and time).
    label: str
    # Whether a person settles it (keep the current password or adopt this one) with
    # engine.rotation_resolve; otherwise it settles itself (the rotation ends).
    resolvable: bool
    # Which rotations hold one, at `now` (a filter on a record's rotations, in the database).
    rotations: Callable[[datetime], Q]
    since: Callable[[Rotation], datetime] = _requested_at
    secret: Callable[[Rotation], str] = _pending_password


MAY_BE_LIVE = CandidateKind(
    name="may_be_live",
    label="may be live — its rotation failed without proof of which password AWS holds",
    resolvable=True,
    # As engine.possibly_live_rotations (tests/rotation/test_candidates.py holds them equal).
    rotations=lambda now: (
        Q(status=Rotation.FAILED, pending_may_be_live=True, resolved_at__isnull=True)
        & ~Q(pending_password_enc="")
    ),
)

BEING_SET = CandidateKind(
    name="being_set",
    label="being set now — AWS may already hold it",
    resolvable=False,
    # Running, or queued again after a recovered lease: the pending password is committed
    # before AWS is asked, so from then on AWS may hold it.
    rotations=lambda now: Q(status__in=Rotation.ACTIVE) & ~Q(pending_password_enc=""),
)

UNANSWERED = CandidateKind(
    name="unanswered",
    label=(
        "set by a rotation that succeeded after one of its requests went unanswered: that "
        "request may still reach AWS and set this password again"
    ),
    resolvable=True,
    # As engine._unanswered_kept: kept until retired (engine.rotations_retire_unanswered, once
    # the request can no longer arrive and the record still holds it) or resolved.
    rotations=lambda now: (
        Q(status=Rotation.SUCCEEDED, unanswered_until__isnull=False, resolved_at__isnull=True)
        & ~Q(pending_password_enc="")
    ),
    since=lambda rotation: rotation.finished_at or rotation.created_at,
)

# Every kind, in order of precedence (a rotation matching two is shown as the first). A new
# kind added here is listed by every surface.
KINDS: tuple[CandidateKind, ...] = (MAY_BE_LIVE, BEING_SET, UNANSWERED)
KINDS_BY_NAME = {kind.name: kind for kind in KINDS}


@dataclass(frozen=True)
class Candidate:
    """A password AWS may hold for a record besides its current one, and the rotation that
    made it. ``secret()`` decrypts it; nothing else does."""

    rotation: Rotation
    kind: str
    since: datetime

    @property
    def label(self) -> str:
        return KINDS_BY_NAME[self.kind].label

    @property
    def resolvable(self) -> bool:
        return KINDS_BY_NAME[self.kind].resolvable

    @property
    def status(self) -> str:
        return self.rotation.status

    def secret(self) -> str:
        """The password, decrypted now (CryptoError when it does not decrypt). Unaudited:
        whoever shows it to someone uses candidate_reveal."""
        return KINDS_BY_NAME[self.kind].secret(self.rotation)


def password_candidates(record: PamUser, *, now: datetime | None = None) -> list[Candidate]:
    """Every password AWS may hold for `record` other than its current one, newest first."""
    now = now or timezone.now()
    which = [(kind, kind.rotations(now)) for kind in KINDS]
    rows = (
        Rotation.objects.filter(pam_user=record)
        .filter(reduce(or_, (q for _, q in which)))
        .annotate(
            candidate_kind=Case(
                *[When(q, then=Value(kind.name)) for kind, q in which],
                default=Value(""),
                output_field=CharField(),
            )
        )
        .order_by("-created_at", "-id")
    )
    found = []
    for rotation in rows:
        rotation.pam_user = record  # no query when a surface reads it back
        kind = KINDS_BY_NAME[rotation.candidate_kind]
        found.append(Candidate(rotation=rotation, kind=kind.name, since=kind.since(rotation)))
    found.sort(key=lambda c: (c.since, c.rotation.created_at, c.rotation.pk), reverse=True)
    return found


def candidate_of(record: PamUser, rotation_uid: str) -> Candidate | None:
    """The record's candidate made by the rotation `rotation_uid`, or None."""
    return next((c for c in password_candidates(record) if c.rotation.uid == rotation_uid), None)


def candidate_reveal(
    candidate: Candidate,
    *,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> str:
    """The candidate's password, and the audit event that says who saw it (never the secret).
    When it does not decrypt: the audit event `password.reveal_failed`, then RevealError."""
    record = candidate.rotation.pam_user
    details = {
        "what": REVEALED_ALONGSIDE,
        "rotation": candidate.rotation.uid,
        "kind": candidate.kind,
    }
    try:
        password = candidate.secret()
    except CryptoError as exc:
        audit_record(
            "password.reveal_failed",
            actor=actor,
            actor_kind=actor_kind,
            obj=record,
            request=request,
            details={**details, "error": str(exc)},
        )
        raise RevealError(obj=record, what="password", reason=str(exc)) from exc
    audit_record(
        "password.revealed",
        actor=actor,
        actor_kind=actor_kind,
        obj=record,
        request=request,
        details=details,
    )
    return password


def candidates_reveal_all(
    *, record: PamUser, actor=None, actor_kind: str = "user", request: HttpRequest | None = None
) -> list[dict]:
    """Every candidate of `record`, revealed and audited one by one, as the record page's Reveal
    shows them (vault.services.RECORD_CANDIDATE_REVEALERS). One that does not decrypt is shown
    with the reason instead of its password (its failed reveal is audited)."""
    shown = []
    for candidate in password_candidates(record):
        entry = {
            "rotation": candidate.rotation.uid,
            "kind": candidate.kind,
            "label": candidate.label,
            "status": candidate.rotation.get_status_display().lower(),
            "since": candidate.since,
            "password": None,
            "error": "",
        }
        try:
            entry["password"] = candidate_reveal(
                candidate, actor=actor, actor_kind=actor_kind, request=request
            )
        except RevealError as exc:
            entry["error"] = exc.user_message
        shown.append(entry)
    return shown
