"""Rotation pages: settings, the Rotate button, cancelling a queued rotation, live status,
resolving, Test connection."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

# No rotation.aws here: the web never talks to AWS, Test connection included (it runs on the
# configuration's gateway, rotation/connection.py).
from rotation import auditlog, batches, connection, dispatch, engine, gateway_list, generator
from rotation.candidates import candidate_of
from rotation.forms import CONFIG_DEFAULT, RotationSettingsForm
from rotation.models import Rotation, RotationBatch, RotationSettings
from rotation.panel import panel_context
from rotation.passwords import ComplexityError
from rotation.schedules import ScheduleError, describe_schedule, next_runs, normalize_schedule
from vault import security
from vault.access import (
    applications_administered_by,
    configuration_for_user,
    folder_for_user,
    gateways_visible_to,
    record_access_required,
    record_for_user,
    require_policy,
)
from vault.security import wants_json as _wants_json


@login_required
@record_access_required("can_edit")
@security.recent_password_required()
def rotation_settings(request: HttpRequest, uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid, need="can_edit")
    require_policy(request.user, "configure_rotation")
    current = (
        RotationSettings.objects.filter(pam_user=record).select_related("configuration").first()
    )
    if request.method == "POST":
        form = RotationSettingsForm(request.POST, record=record, user=request.user)
        if form.is_valid() and "preview" not in request.POST:
            data = form.cleaned_data
            rs, follow_up = engine.rotation_settings_change(
                record=record,
                configuration=data["configuration"],
                schedule=form.schedule,
                use_configuration_schedule=data["schedule_type"] == CONFIG_DEFAULT,
                complexity=form.complexity,
                enabled=data["enabled"],
                method=data["method"],
                key_deactivate_after_hours=data["key_deactivate_after_hours"],
                key_delete_after_hours=data["key_delete_after_hours"],
                actor=request.user,
                request=request,
            )
            saved = "Password Rotation Settings saved."
            messages.success(request, f"{saved} {follow_up.message}" if follow_up else saved)
            return redirect("record_detail", uid=record.uid)
        if not form.is_valid() and "preview" not in request.POST:
            messages.error(request, "The settings were not saved: please correct the errors below.")
    else:
        form = RotationSettingsForm(
            initial=RotationSettingsForm.initial_for(current), record=record, user=request.user
        )
    # Errors outside the schedule (complexity, say) leave its next runs known: they are shown.
    if form.is_bound and (form.is_valid() or not form.schedule_has_errors()):
        upcoming, schedule = form.upcoming_runs(), form.effective_schedule()
        follows = form.cleaned_data["schedule_type"] == CONFIG_DEFAULT
        config = form.cleaned_data.get("configuration")
    elif form.is_bound:
        upcoming, schedule, follows, config = [], {}, False, None  # correct the schedule first
    else:
        upcoming, schedule = _saved_runs(current), current.effective_schedule if current else {}
        follows = bool(current and current.use_configuration_schedule)
        config = current.configuration if current else None
    return render(
        request,
        "rotation/settings.html",
        {
            "record": record,
            "form": form,
            "upcoming": upcoming,
            "upcoming_tz": _schedule_tz(schedule),
            "settings": current,
            "schedule_source": _schedule_source(config, schedule) if follows else "",
            "next_runs_note": _next_runs_note(form, follows, schedule),
        },
    )


def _schedule_source(config, schedule: dict) -> str:
    """Where a schedule that follows the configuration's default comes from, and what it is."""
    return (
        f"Follows the default schedule of configuration “{config.title}”, which is now: "
        f"{describe_schedule(schedule)}"
    )


def _next_runs_note(form: RotationSettingsForm, follows: bool, schedule: dict) -> str:
    """What the page says instead of the next runs when there are none to show."""
    if form.is_bound and form.schedule_has_errors():
        return "Correct the schedule above to see the next runs."
    if not form.is_bound and form.stored_problem:
        return "None: the stored schedule is invalid (see above)."
    if (schedule or {}).get("type") == "RUN_ONCE":
        return f"None: its one run has passed ({describe_schedule(schedule)})."
    if follows:
        return "On demand only (the configuration’s default)."
    return "On demand only."


def _schedule_tz(schedule: dict) -> str:
    """The time zone a schedule runs in, so its next runs are shown as the person set them."""
    try:
        return normalize_schedule(schedule).get("tz", "UTC")
    except ScheduleError:
        return "UTC"


def _saved_runs(current: RotationSettings | None) -> list:
    if current is None:
        return []
    try:
        return next_runs(current.effective_schedule, timezone.now(), 5)
    except ScheduleError:
        return []


# The broker did not take a committed request's message: the rotation is queued all the
# same, and its gateway's next tick starts it (rotation/gateways.py, LOST_MESSAGE_SECONDS).
HANDOFF_LATE = (
    "The gateway will pick it up within a minute (its task queue did not answer just now)."
)
HANDOFF_LATE_MANY = (
    "The gateways will pick them up within a minute (their task queue did not answer just now)."
)


@login_required
@require_POST
def rotate(request: HttpRequest, uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid, need="can_edit")
    require_policy(request.user, "rotate")
    try:
        with dispatch.handoff_watch() as handoff:
            rotation = engine.rotation_request(
                record=record, trigger="on_demand", requested_by=request.user, request=request
            )
    except engine.RotationRequestError as exc:
        if _wants_json(request):
            return JsonResponse({"ok": False, "message": str(exc)}, status=409)
        messages.warning(request, str(exc))
        return redirect("record_detail", uid=record.uid)
    if _wants_json(request):
        answer = {"ok": True, "rotation": rotation.uid, "status": rotation.status}
        if handoff.refused:
            answer["message"] = f"Rotation requested. {HANDOFF_LATE}"
        return JsonResponse(answer)
    if handoff.refused:
        messages.info(request, f"Rotation requested. {HANDOFF_LATE}")
    else:
        messages.info(request, "Rotation requested: the status below updates by itself.")
    return redirect("record_detail", uid=record.uid)


@login_required
@require_GET
def rotation_status(request: HttpRequest, uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid)
    context = panel_context(record, member)
    html = render_to_string("rotation/_status.html", context, request=request)
    latest = context["latest"]
    return JsonResponse(
        {
            "active": bool(latest and latest.is_active),
            "status": latest.status if latest else None,
            "label": latest.get_status_display() if latest else None,
            "error": latest.error if latest else "",
            "gateway_online": context["gateway_online"],
            "html": html,
        }
    )


@login_required
@require_POST
def resolve(request: HttpRequest, uid: str, rotation_uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid, need="can_edit")
    rotation = get_object_or_404(Rotation, pam_user=record, uid=rotation_uid)
    choice = request.POST.get("keep")
    if choice not in ("current", "pending"):
        messages.error(request, "Choose which password to keep.")
        return redirect("record_detail", uid=record.uid)
    if choice == "current" and request.POST.get("confirmed") != "yes":
        # Keeping the current password discards the pending one for good (it is in no
        # history): the person confirms on a page of its own, not only in a script's dialog.
        return _resolve_confirm(request, record, rotation)
    try:
        engine.rotation_resolve(
            rotation=rotation, use_pending=choice == "pending", actor=request.user, request=request
        )
    except engine.RotationRequestError as exc:
        messages.warning(request, str(exc))
    else:
        messages.success(
            request,
            "The possibly-live password is now the current password."
            if choice == "pending"
            else "Kept the current password; the possibly-live one was discarded.",
        )
    return redirect("record_detail", uid=record.uid)


def _resolve_confirm(request: HttpRequest, record, rotation: Rotation) -> HttpResponse:
    candidate = candidate_of(record, rotation.uid)
    if candidate is None or not candidate.resolvable:
        messages.warning(request, "This rotation has nothing left to resolve.")
        return redirect("record_detail", uid=record.uid)
    context = {"record": record, "folder": record.folder, "candidate": candidate}
    return render(request, "rotation/resolve_confirm.html", context)


@login_required
@require_POST
def cancel(request: HttpRequest, uid: str, rotation_uid: str) -> HttpResponse:
    """Cancel a queued rotation that has not started: the access checks of Rotate."""
    record, member = record_for_user(request.user, uid, need="can_edit")
    require_policy(request.user, "rotate")
    rotation = get_object_or_404(Rotation, pam_user=record, uid=rotation_uid)
    try:
        cancelled = engine.rotation_cancel(rotation=rotation, actor=request.user, request=request)
    except engine.RotationRequestError as exc:
        messages.warning(request, str(exc))
    else:
        text = "Rotation cancelled: the record keeps its current password."
        if cancelled.pending_may_be_live and cancelled.has_secret("pending_password"):
            text = (
                "Rotation cancelled. An earlier attempt had saved a new password that AWS may "
                "already hold: it is shown below as may be live; choose which password to keep."
            )
        messages.success(request, text)
    return redirect("record_detail", uid=record.uid)


@login_required
@require_POST
def configuration_test(request: HttpRequest, uid: str) -> HttpResponse:
    """Record a Test connection for the configuration's gateway to run; never calls AWS."""
    config, member = configuration_for_user(request.user, uid, need="can_edit")
    test = connection.connection_test_request(config=config, requested_by=request.user)
    if _wants_json(request):
        return JsonResponse(
            {
                "ok": True,
                "test": test.uid,
                "status": test.status,
                "status_url": reverse("configuration_test_status", args=[config.uid]),
            }
        )
    messages.info(
        request,
        f"Test connection requested from the gateway “{test.gateway_name}”: "
        "the result appears below when it arrives.",
    )
    return redirect("configuration_detail", uid=config.uid)


@login_required
@require_GET
def configuration_test_status(request: HttpRequest, uid: str) -> HttpResponse:
    """The latest Test connection of a configuration, for the page's poll (as its page)."""
    config, member = configuration_for_user(request.user, uid)
    state = connection.connection_test_state(config)
    html = render_to_string("rotation/_connection_status.html", state, request=request)
    test = state["test"]
    return JsonResponse(
        {
            "active": state["active"],
            "status": test.status if test else None,
            "label": test.get_status_display() if test else None,
            "message": test.message if test else "",
            "waiting": state["waiting"],
            "html": html,
        }
    )


# --- Rotate all on a folder, and the audit log -------------------------------------------------


def _batch_or_404(folder, batch_uid: str) -> RotationBatch:
    batch = (
        RotationBatch.objects.filter(folder=folder, uid=batch_uid)
        .select_related("requested_by")
        .first()
    )
    if batch is None:
        raise Http404("No such Rotate all.")
    return batch


@login_required
@require_http_methods(["GET", "POST"])
def rotate_all(request: HttpRequest, uid: str) -> HttpResponse:
    """GET: the confirmation, saying how many records will be rotated and how many skipped, and
    why. POST: requests the rotations only when it confirms that number (`confirm`); otherwise
    (none given, or the folder changed since) the confirmation again, with the number now."""
    folder, member = folder_for_user(request.user, uid, need="can_edit")
    require_policy(request.user, "rotate")
    preview = batches.rotation_batch_preview(folder=folder)
    confirmed = request.POST.get("confirm", "") if request.method == "POST" else ""
    if request.method == "GET" or confirmed != str(len(preview["rotate"])):
        return _rotate_all_confirmation(request, folder, preview, confirmed)
    with dispatch.handoff_watch() as handoff:
        batch = batches.rotation_batch_request(
            folder=folder, requested_by=request.user, request=request
        )
    progress = batches.rotation_batch_progress(batch=batch)
    url = reverse("rotate_all_progress", args=[folder.uid, batch.uid])
    late = HANDOFF_LATE_MANY if handoff.refused else ""
    if _wants_json(request):
        answer = {"ok": True, "batch": batch.uid, "url": url, **progress}
        if late:
            answer["message"] = late
        return JsonResponse(answer)
    skipped = _skipped_text(progress)
    if progress["total"]:
        text = f"Rotation requested for {progress['total']} PAM Users"
        text += f"; {skipped}" if skipped else "."
        messages.info(request, f"{text} {late}".strip())
    else:
        text = "Nothing to rotate: no PAM User in this folder has rotation enabled"
        text += f"; {skipped}" if skipped else "."
        messages.warning(request, text)
    return redirect(url)


def _rotate_all_confirmation(
    request: HttpRequest, folder, preview: dict, confirmed: str
) -> HttpResponse:
    counts = {
        "rotate": len(preview["rotate"]),
        "in_progress": len(preview["in_progress"]),
        "skipped": len(preview["skipped"]),
    }
    if confirmed:
        text = (
            f"The folder changed since you looked: Rotate all would now rotate "
            f"{counts['rotate']}. Nothing was requested; confirm again."
        )
    elif request.method == "POST":
        text = "Nothing was requested yet: confirm the number of records first."
    else:
        text = ""
    if _wants_json(request) and request.method == "GET":
        return JsonResponse(counts)
    if _wants_json(request):
        answer = {"error": "confirmation_required", "message": text, **counts}
        return JsonResponse(answer, status=409 if confirmed else 400)
    if text:
        messages.warning(request, text)
    context = {"folder": folder, "preview": preview, **counts}
    return render(request, "rotation/rotate_all_confirm.html", context)


def _skipped_text(progress: dict) -> str:
    """How many records Rotate all skipped, and how many of those the vault does not manage."""
    if not progress["skipped"]:
        return ""
    text = f"{progress['skipped']} skipped"
    if progress["unmanaged"]:
        text += f", {progress['unmanaged']} of them not managed by the vault"
    return text + "."


@login_required
@require_GET
def rotate_all_progress(request: HttpRequest, uid: str, batch_uid: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid)
    batch = _batch_or_404(folder, batch_uid)
    context = {
        "folder": folder,
        "batch": batch,
        "progress": batches.rotation_batch_progress(batch=batch),
    }
    return render(request, "rotation/rotate_all.html", context)


@login_required
@require_GET
def rotate_all_status(request: HttpRequest, uid: str, batch_uid: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid)
    batch = _batch_or_404(folder, batch_uid)
    return JsonResponse(batches.rotation_batch_progress(batch=batch))


def _audit_form(request: HttpRequest, events) -> auditlog.AuditFilterForm:
    # Unbound without filters, so the first visit shows every event rather than errors.
    filters = request.GET.copy()
    filters.pop("page", None)
    return auditlog.AuditFilterForm(
        filters or None, actions=auditlog.audit_actions(events), auto_id="audit_%s"
    )


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    events = auditlog.audit_events_for_user(request.user)
    form = _audit_form(request, events)
    page, page_range = None, []
    if not form.is_bound or form.is_valid():
        filtered = auditlog.audit_filter(events, form.cleaned_data if form.is_bound else {})
        page = Paginator(filtered, auditlog.EVENTS_PER_PAGE).get_page(request.GET.get("page"))
        # Every page link keeps the filters (the template's {% querystring %}).
        page_range = list(
            page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)
        )
    return render(
        request, "rotation/audit.html", {"form": form, "page": page, "page_range": page_range}
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@require_GET
def audit_csv(request: HttpRequest) -> HttpResponse:
    events = auditlog.audit_events_for_user(request.user)
    form = _audit_form(request, events)
    if form.is_bound and not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(f"Invalid filter: {problems}\n", status=400, content_type="text/plain")
    filtered = auditlog.audit_filter(events, form.cleaned_data if form.is_bound else {})
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in auditlog.audit_csv_rows(filtered)),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response


# --- Gateways ----------------------------------------------------------------------------------


@login_required
@require_GET
def gateways(request: HttpRequest) -> HttpResponse:
    """Each gateway the person may see, what it serves and runs, and how to run it."""
    visible = gateways_visible_to(request.user)
    context = {
        "rows": gateway_list.gateway_rows(request.user, visible),
        "environment": gateway_list.RUN_ENVIRONMENT,
        # Links to each one's client credentials (the secrets API's pages).
        "applications": applications_administered_by(request.user).order_by("name"),
    }
    return render(request, "rotation/gateways.html", context)


# --- The record form's password generator ------------------------------------------------------


def _generated(record=None) -> JsonResponse:
    """JSON for the record form's Generate button. Nothing is stored or audited: the password
    is only a suggestion until the form is saved (rotation/generator.py)."""
    try:
        made = generator.password_generate(record)
    except ComplexityError as exc:
        return JsonResponse({"error": "complexity", "message": str(exc)}, status=409)
    c = made.complexity
    response = JsonResponse(
        {
            "password": made.password,
            "length": c.length,
            "source": made.source,
            "message": f"Generated {c.length} characters with {made.source}. Save to keep it.",
        }
    )
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def record_generate_password(request: HttpRequest, uid: str) -> HttpResponse:
    """A password for the record's edit form, with the record's rotation complexity."""
    record, member = record_for_user(request.user, uid, need="can_edit")
    return _generated(record)


@login_required
@require_POST
def folder_generate_password(request: HttpRequest, uid: str) -> HttpResponse:
    """A password for a new record's form in the folder, with the default complexity."""
    folder, member = folder_for_user(request.user, uid, need="manage_records")
    return _generated()
