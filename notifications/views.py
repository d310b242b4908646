"""The page where each person chooses their notifications, folder by folder
(/account/notifications/): one form per folder they edit or manage, each posted on its own."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from notifications.preferences import (
    may_choose,
    memberships_to_choose,
    preference_form,
    preference_save,
)
from vault.access import folder_for_user


def _page(request: HttpRequest, bound=None) -> HttpResponse:
    folders = []
    for member in memberships_to_choose(request.user):
        mine = bound is not None and bound.prefix == member.folder.uid
        form = bound if mine else preference_form(member)
        folders.append({"folder": member.folder, "member": member, "form": form})
    return render(request, "notifications/preferences.html", {"folders": folders})


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def notification_prefs(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    # Outsiders get 404 (folder_for_user), members who may not edit or manage it 403.
    folder, member = folder_for_user(request.user, request.POST.get("folder", ""))
    if not may_choose(member):
        raise PermissionDenied(
            "Notifications are chosen for folders you can edit or manage; ask a folder manager."
        )
    form = preference_form(member, request.POST)
    if not form.is_valid():
        messages.error(request, f"Nothing was saved for “{folder.name}”; see the errors below.")
        return _page(request, bound=form)
    preference_save(form=form, member=member)
    messages.success(request, f"Your notifications for “{folder.name}” are saved.")
    return redirect("notification_prefs")
