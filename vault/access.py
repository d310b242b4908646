"""Permission checks, used by every view, form, admin action and CLI command.

Outsiders get 404 for anything in a folder they are not a member of, so uids do not leak;
members lacking the needed permission get 403. Superusers get the admin console, not the
contents of folders they are not members of.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from vault.models import FolderMember, PamConfiguration, PamUser, SharedFolder

CAN_VIEW = "view"
PERMISSIONS = (CAN_VIEW, *FolderMember.PERMISSIONS)


def membership_for(user, folder: SharedFolder) -> FolderMember | None:
    if not user.is_authenticated:
        return None
    return FolderMember.objects.filter(folder=folder, user=user).first()


def has_permission(member: FolderMember | None, need: str) -> bool:
    if member is None:
        return False
    return need == CAN_VIEW or bool(getattr(member, need))


def _require(member: FolderMember | None, need: str) -> FolderMember:
    if member is None:
        raise Http404("No such record.")
    if not has_permission(member, need):
        raise PermissionDenied(f"This needs the “{need}” permission on the folder.")
    return member


def folder_for_user(user, uid: str, need: str = CAN_VIEW) -> tuple[SharedFolder, FolderMember]:
    folder = SharedFolder.objects.filter(uid=uid).first()
    if folder is None:
        raise Http404("No such folder.")
    return folder, _require(membership_for(user, folder), need)


def record_for_user(user, uid: str, need: str = CAN_VIEW) -> tuple[PamUser, FolderMember]:
    record = PamUser.objects.select_related("folder").filter(uid=uid).first()
    if record is None:
        raise Http404("No such record.")
    return record, _require(membership_for(user, record.folder), need)


def configuration_for_user(
    user, uid: str, need: str = CAN_VIEW
) -> tuple[PamConfiguration, FolderMember]:
    config = PamConfiguration.objects.select_related("folder", "gateway").filter(uid=uid).first()
    if config is None:
        raise Http404("No such configuration.")
    return config, _require(membership_for(user, config.folder), need)


def record_access_required(need: str = CAN_VIEW) -> Callable:
    """Decorator: 404/403 for the record `uid` before anything else the view is wrapped in
    (re-authentication, rate limits) runs, so outsiders learn nothing and change nothing."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            record_for_user(request.user, kwargs["uid"], need)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def folders_for_user(user) -> QuerySet[SharedFolder]:
    if not user.is_authenticated:
        return SharedFolder.objects.none()
    return SharedFolder.objects.filter(members__user=user)


def folders_with_permission(user, need: str) -> QuerySet[SharedFolder]:
    folders = folders_for_user(user)
    if need == CAN_VIEW:
        return folders
    return folders.filter(**{f"members__{need}": True, "members__user": user})
