"""Discover IAM users pages: the button on a configuration, the discovery page (live progress,
filters, a paginated table of users), its status poll, and importing users into a folder.

Every view first resolves the configuration through vault/access.py (outsiders 404, members
without Edit records 403) and asks for the "discover" policy. The web never talks to AWS: the
discovery runs on the configuration's gateway (rotation/discovery.py).
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from rotation import discovery
from rotation.models import DiscoveryJob
from vault.access import (
    configuration_for_user,
    discovery_import_folders,
    folder_for_user,
    folders_for_user,
    require_policy,
)
from vault.security import wants_json

USERS_PER_PAGE = 50


class DiscoveryFilterForm(forms.Form):
    name = forms.CharField(required=False, max_length=64, label="User name contains")
    path_prefix = forms.CharField(required=False, max_length=512, label="Path prefix")
    console = forms.ChoiceField(
        required=False,
        label="Console access",
        choices=[("", "Any"), ("yes", "Has console access"), ("no", "No console access")],
    )
    key_older_than_days = forms.IntegerField(
        required=False, min_value=0, max_value=36500, label="Access key older than (days)"
    )
    not_in_vault = forms.BooleanField(required=False, label="Not yet in the vault")

    def user_filter(self) -> discovery.UserFilter:
        data = self.cleaned_data
        return discovery.UserFilter(
            name=data.get("name") or "",
            path_prefix=data.get("path_prefix") or "",
            console={"yes": True, "no": False}.get(data.get("console") or ""),
            key_older_than_days=data.get("key_older_than_days"),
            not_in_vault=bool(data.get("not_in_vault")),
        )


def _configuration(request: HttpRequest, uid: str):
    config, member = configuration_for_user(request.user, uid, need="can_edit")
    require_policy(request.user, "discover")
    return config


def _job_or_404(config, job_uid: str) -> DiscoveryJob:
    if not isinstance(job_uid, str) or "\x00" in job_uid:
        raise Http404("No such discovery.")
    return get_object_or_404(DiscoveryJob, configuration=config, uid=job_uid)


def _page_url(config, job) -> str:
    return reverse("discovery_job", args=[config.uid, job.uid])


@login_required
@require_POST
def discovery_start(request: HttpRequest, uid: str) -> HttpResponse:
    """Discover IAM users: record a job for the configuration's gateway; never calls AWS."""
    config = _configuration(request, uid)
    try:
        job = discovery.discovery_start(configuration=config, actor=request.user, request=request)
    except discovery.DiscoveryError as exc:
        if wants_json(request):
            return JsonResponse({"ok": False, "message": exc.message}, status=409)
        messages.warning(request, exc.message)
        running = discovery.active_job(config)
        if running is not None:
            return redirect(_page_url(config, running))
        return redirect("configuration_detail", uid=config.uid)
    if wants_json(request):
        return JsonResponse({"ok": True, **discovery.discovery_progress(job)})
    messages.info(
        request,
        f"Discovery requested from the gateway “{job.gateway_name}”: the progress below "
        "updates by itself.",
    )
    return redirect(_page_url(config, job))


@login_required
@require_GET
def discovery_latest(request: HttpRequest, uid: str) -> HttpResponse:
    """The configuration's latest discovery, or a page saying there is none yet."""
    config = _configuration(request, uid)
    job = discovery.latest_job(config)
    if job is not None:
        return redirect(_page_url(config, job))
    return render(request, "rotation/discovery.html", {"config": config, "job": None})


@login_required
@require_GET
def discovery_job(request: HttpRequest, uid: str, job_uid: str) -> HttpResponse:
    config = _configuration(request, uid)
    job = _job_or_404(config, job_uid)
    form = DiscoveryFilterForm(request.GET or None)
    filters = form.user_filter() if form.is_bound and form.is_valid() else None
    page = None
    if not form.is_bound or form.is_valid():
        rows = discovery.discovered_users(job, filters).select_related("record")
        paginator = Paginator(rows, USERS_PER_PAGE)
        page = paginator.get_page(request.GET.get("page"))
    # "In the vault" links only to records of folders the person belongs to.
    visible = set(folders_for_user(request.user).values_list("pk", flat=True))
    now = timezone.now()
    for row in page.object_list if page else []:
        row.keys_shown = _keys_shown(row.access_keys, now)
        row.record_visible = bool(row.record and row.record.folder_id in visible)
    context = {
        "config": config,
        "job": job,
        "progress": discovery.discovery_progress(job),
        "form": form,
        "page": page,
        "page_range": page.paginator.get_elided_page_range(page.number) if page else [],
        "folders": discovery_import_folders(request.user),
        "can_import": job.status == DiscoveryJob.SUCCEEDED,
        # "Import all matching" posts the filters shown.
        "filter_hidden": [
            (name, value)
            for name, value in request.GET.items()
            if name in form.fields and value and page is not None
        ],
    }
    return render(request, "rotation/discovery.html", context)


def _keys_shown(keys: list, now) -> list[dict]:
    """Each access key with its age in days and its last use, for the table."""
    shown = []
    for key in keys or []:
        created = _parse(key.get("created"))
        shown.append(
            {
                "status": key.get("status") or "",
                "age_days": (now - created).days if created else None,
                "last_used": _parse(key.get("last_used")),
            }
        )
    return shown


def _parse(value):
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


@login_required
@require_GET
def discovery_status(request: HttpRequest, uid: str, job_uid: str) -> HttpResponse:
    config = _configuration(request, uid)
    job = _job_or_404(config, job_uid)
    return JsonResponse(discovery.discovery_progress(job))


@login_required
@require_POST
def discovery_import(request: HttpRequest, uid: str, job_uid: str) -> HttpResponse:
    """Import the checked users ("selected") or every user matching the filters ("all")."""
    config = _configuration(request, uid)
    job = _job_or_404(config, job_uid)
    back = _page_url(config, job)
    folder_uid = request.POST.get("folder") or ""
    if not folder_uid:
        messages.error(request, "Choose the folder to import into.")
        return redirect(back)
    folder, _member = folder_for_user(request.user, folder_uid, need="manage_records")
    mode = request.POST.get("mode")
    names = None
    filters = None
    if mode == "selected":
        names = request.POST.getlist("user")
        if not names:
            messages.error(request, "Check at least one user to import.")
            return redirect(back)
    elif mode == "all":
        form = DiscoveryFilterForm(request.POST)
        if not form.is_valid():
            messages.error(request, "The filters have errors: correct them and try again.")
            return redirect(back)
        filters = form.user_filter()
    else:
        messages.error(request, "Choose Import selected or Import all matching.")
        return redirect(back)
    try:
        outcome = discovery.discovery_import(
            job=job,
            folder=folder,
            user_names=names,
            filters=filters,
            actor=request.user,
            request=request,
        )
    except discovery.DiscoveryError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    text = f"Imported {len(outcome.created)} IAM user{'s' if len(outcome.created) != 1 else ''}"
    text += f" into “{folder.name}” with rotation through “{config.title}”."
    if outcome.existing:
        text += f" {len(outcome.existing)} already had a record in the vault and were left as is"
        if outcome.hidden:
            text += f" ({outcome.hidden} of them in folders you are not a member of)"
        text += "."
    messages.success(request, text)
    return redirect(back)
