"""Rotate all on a folder: say how many records it will rotate (and skip, and why) before it
is confirmed, request a rotation of every PAM User that has rotation set up, and report the
batch's progress while the gateways work through it."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest
from django.urls import reverse

from rotation import engine
from rotation.models import Rotation, RotationBatch, RotationSettings
from vault.audit import audit_record
from vault.models import PamUser, SharedFolder


def rotation_batch_preview(*, folder: SharedFolder) -> dict:
    """What Rotate all on `folder` would do now, for the confirmation page: the records it would
    request a rotation of, those already rotating (they join the batch, nothing new is
    requested), and those it would skip, each with the reason: the same checks, in the same
    order, as rotation_batch_request. Reads only; a few queries whatever the folder's size."""
    records = list(PamUser.objects.filter(folder=folder).select_related("folder").order_by("title"))
    all_settings = {
        rs.pam_user_id: rs
        for rs in RotationSettings.objects.filter(pam_user__in=records).select_related(
            "configuration__gateway__application", "configuration__folder"
        )
    }
    active = set(
        Rotation.objects.filter(pam_user__in=records, status__in=Rotation.ACTIVE).values_list(
            "pam_user_id", flat=True
        )
    )
    memo: dict = {}
    rotate, in_progress, skipped = [], [], []
    for record in records:
        problem = engine.rotation_request_problem(
            record=record, rs=all_settings.get(record.pk), memo=memo
        )
        if problem:
            skipped.append({"record": record.uid, "title": record.title, "reason": problem})
        elif record.pk in active:
            in_progress.append(record)
        else:
            rotate.append(record)
    reasons: dict[str, int] = {}
    for s in skipped:
        reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
    return {
        "rotate": rotate,
        "in_progress": in_progress,
        "skipped": skipped,
        # Each reason once, with how many records it applies to, most common first.
        "reasons": sorted(reasons.items(), key=lambda item: (-item[1], item[0])),
        "total": len(records),
    }


@transaction.atomic
def rotation_batch_request(
    *,
    folder: SharedFolder,
    requested_by=None,
    trigger: str = "on_demand",
    request: HttpRequest | None = None,
) -> RotationBatch:
    """Ask for a rotation of every PAM User in `folder`, through the same request path as the
    Rotate button. A record already rotating joins the batch as in progress; a record that
    cannot be rotated is listed as skipped, with the reason. Workers start once this commits."""
    batch = RotationBatch.objects.create(
        folder=folder,
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
    )
    rotation_ids: list[int] = []
    skipped: list[dict] = []
    in_progress = 0
    records = PamUser.objects.filter(folder=folder).select_related("folder").order_by("title")
    for record in records:
        try:
            rotation = engine.rotation_request(
                record=record, trigger=trigger, requested_by=requested_by, request=request
            )
        except engine.RotationInProgress as exc:
            rotation = exc.rotation
            in_progress += 1
        except engine.RotationRequestError as exc:
            skipped.append({"record": record.uid, "title": record.title, "reason": str(exc)})
            continue
        rotation_ids.append(rotation.pk)
    batch.rotations.add(*rotation_ids)
    if skipped:
        batch.skipped = skipped
        batch.save(update_fields=["skipped"])
    audit_record(
        "rotation.rotate_all",
        actor=requested_by,
        obj=folder,
        request=request,
        details={
            "batch": batch.uid,
            "requested": len(rotation_ids) - in_progress,
            "in_progress": in_progress,
            "skipped": len(skipped),
        },
    )
    return batch


def rotation_batch_progress(*, batch: RotationBatch) -> dict:
    """Where the batch stands, in two queries whatever its size. "done" counts finished
    rotations, failed or not; failures carry the message that says what to fix."""
    by_status = dict(
        batch.rotations.order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    succeeded = by_status.get(Rotation.SUCCEEDED, 0)
    failed = by_status.get(Rotation.FAILED, 0)
    total = sum(by_status.values())
    failures = (
        batch.rotations.filter(status=Rotation.FAILED)
        .select_related("pam_user")
        .defer("pending_password_enc")
        .order_by("finished_at", "pk")
    )
    done = succeeded + failed
    return {
        "batch": batch.uid,
        "total": total,
        "done": done,
        "succeeded": succeeded,
        "failed": failed,
        "active": total - done,
        "finished": done == total,
        "text": f"{done}/{total}",
        # Records not rotated, and how many of them because the vault does not manage them.
        "skipped": len(batch.skipped),
        "unmanaged": sum(1 for s in batch.skipped if s.get("reason") == engine.NOT_MANAGED),
        "failures": [
            {
                "record": r.pam_user.uid,
                "title": r.pam_user.title,
                "url": reverse("record_detail", args=[r.pam_user.uid]),
                "error": r.error,
                "may_be_live": r.pending_may_be_live and r.resolved_at is None,
            }
            for r in failures
        ],
    }
