"""Permission checks, used by every view, form, admin action, CLI command and gateway.

Folder permissions: outsiders get 404 for anything in a folder they are not a member of, so
uids do not leak; members lacking the needed permission get 403. Superusers get the admin
console, not the contents of folders they are not members of.

Authority over AWS credentials (docs/security.md): a configuration's credentials act on an IAM
user only when the person who set it up could edit both folders, the gateway's application has
both folders shared editable (shared by one of its administrators), the configuration's target
scope allows the user, and the gateway allows the host's own credentials if they are used.
Gateways check this again from the database before they call AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from vault.models import (
    Application,
    ApplicationFolder,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    SharedFolder,
)
from vault.prepared import PreparedQuery

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


def _no_such(uid: object, what: str) -> None:
    """Http404 for a uid no row can have: not text, or holding NUL (which PostgreSQL refuses
    in a query, a server error otherwise; values from a form's POST reach here unchecked)."""
    if not isinstance(uid, str) or "\x00" in uid:
        raise Http404(f"No such {what}.")


def folder_for_user(user, uid: str, need: str = CAN_VIEW) -> tuple[SharedFolder, FolderMember]:
    _no_such(uid, "folder")
    folder = SharedFolder.objects.filter(uid=uid).first()
    if folder is None:
        raise Http404("No such folder.")
    return folder, _require(membership_for(user, folder), need)


def record_for_user(user, uid: str, need: str = CAN_VIEW) -> tuple[PamUser, FolderMember]:
    _no_such(uid, "record")
    record = PamUser.objects.select_related("folder").filter(uid=uid).first()
    if record is None:
        raise Http404("No such record.")
    return record, _require(membership_for(user, record.folder), need)


def configuration_for_user(
    user, uid: str, need: str = CAN_VIEW
) -> tuple[PamConfiguration, FolderMember]:
    _no_such(uid, "configuration")
    config = PamConfiguration.objects.select_related("folder", "gateway").filter(uid=uid).first()
    if config is None:
        raise Http404("No such configuration.")
    return config, _require(membership_for(user, config.folder), need)


def record_access_required(need: str = CAN_VIEW, *, policy: str | None = None) -> Callable:
    """Decorator: 404/403 for the record `uid` (and 403 without `policy`, when policies are
    enforced) before anything else the view is wrapped in (re-authentication, rate limits)
    runs, so outsiders learn nothing and change nothing."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            record_for_user(request.user, kwargs["uid"], need)
            if policy is not None:
                require_policy(request.user, policy)
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


# --- enforcement policies ------------------------------------------------------------------------

POLICIES = {
    "configure_rotation": "set up password rotation",
    "rotate": "rotate on demand",
    "manage_gateways": "manage applications and gateways",
    "discover": "discover IAM users",
    "reveal": "reveal passwords",
}


def policy_allows(user, policy: str) -> bool:
    """With VAULT_ENFORCE_POLICIES on, `user` needs the permission vault.<policy> (granted
    through a Group in the admin console); off, folder permissions alone decide."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy}")
    if not settings.VAULT_ENFORCE_POLICIES:
        return True
    return bool(user and user.is_authenticated and user.has_perm(f"vault.{policy}"))


def member_policy_allows(member: FolderMember | None, policy: str) -> bool:
    """policy_allows for a member's user, without loading the user when nothing is enforced
    (pages stay within their query budgets)."""
    if not settings.VAULT_ENFORCE_POLICIES:
        return member is not None
    return member is not None and policy_allows(member.user, policy)


def may_reveal_candidates(member: FolderMember | None) -> bool:
    """Whether Reveal also shows the other passwords AWS may hold for a record (a rotation's
    pending password that may be live, or is being set now). The same right as the current
    password: either may be the one that works in AWS, so whoever may reveal one needs both."""
    return has_permission(member, CAN_VIEW) and member_policy_allows(member, "reveal")


def require_policy(user, policy: str) -> None:
    if not policy_allows(user, policy):
        raise PermissionDenied(
            f"Your organisation's policy does not let you {POLICIES[policy]}: ask an "
            f"administrator for the “{policy}” policy."
        )


# --- applications and gateways -------------------------------------------------------------------


def applications_administered_by(user) -> QuerySet[Application]:
    if not user.is_authenticated:
        return Application.objects.none()
    return Application.objects.filter(administrators=user)


def administers(user, application: Application | None) -> bool:
    return (
        application is not None
        and user.is_authenticated
        and application.administrators.filter(pk=user.pk).exists()
    )


def shareable_applications(user) -> QuerySet[Application]:
    """Applications `user` may share folders to (they also need can_share on the folder)."""
    if not policy_allows(user, "manage_gateways"):
        return Application.objects.none()
    return applications_administered_by(user)


def gateways_for_folder(
    user, folder: SharedFolder, *, also: Gateway | None = None
) -> QuerySet[Gateway]:
    """Gateways a configuration in `folder` may name: those of applications `user` administers,
    those whose application already serves the folder, and `also` (the one a configuration
    names already). No other gateway is ever named."""
    serving = ApplicationFolder.objects.filter(folder=folder).values("application_id")
    mine = Q(application__in=applications_administered_by(user))
    named = Q(pk=also.pk) if also is not None else Q(pk__in=[])
    return (
        Gateway.objects.filter(mine | Q(application_id__in=serving) | named)
        .select_related("application")
        .distinct()
        .order_by("name")
    )


def gateways_visible_to(user) -> QuerySet[Gateway]:
    """Gateways `user` may see (the Gateways page): a superuser with a verified two-factor
    session (as the admin console asks) every one; anyone else those of the applications they
    administer and those whose application serves one of their folders. Seeing a gateway shows
    its name, application and heartbeat; what it serves is listed only from their own folders."""
    if not user.is_authenticated:
        return Gateway.objects.none()
    is_verified = getattr(user, "is_verified", None)
    if user.is_superuser and is_verified is not None and is_verified():
        return Gateway.objects.all()
    serving = ApplicationFolder.objects.filter(folder__in=folders_for_user(user)).values(
        "application_id"
    )
    administered = applications_administered_by(user).values("pk")
    return Gateway.objects.filter(
        Q(application_id__in=administered) | Q(application_id__in=serving)
    )


def configurations_usable_by(user) -> QuerySet[PamConfiguration]:
    """Configurations `user` may choose for a record: view-only never suffices."""
    return PamConfiguration.objects.filter(folder__in=folders_with_permission(user, "can_edit"))


def may_manage_application(user, application: Application | None) -> bool:
    """Whether `user` may manage `application`'s client credentials (the secrets API): one of
    its administrators, with the "manage_gateways" policy when policies are enforced."""
    return administers(user, application) and policy_allows(user, "manage_gateways")


def application_for_administrator(user, uid: str) -> Application:
    """The application `uid` for one of its administrators: 404 for everyone else (an
    application's name is not shown to people who do not administer it), 403 for an
    administrator whose organisation's policy does not let them manage applications."""
    if not isinstance(uid, str) or "\x00" in uid:
        raise Http404("No such application.")
    application = Application.objects.filter(uid=uid).first()
    if not administers(user, application):
        raise Http404("No such application.")
    require_policy(user, "manage_gateways")
    return application


def require_application_manager(user, application: Application, what: str) -> None:
    """PermissionDenied unless `user` may manage `application` (may_manage_application);
    `what` names the thing being managed in the message."""
    if user is None or not may_manage_application(user, application):
        raise PermissionDenied(
            f"Only an administrator of the application “{application.name}” may manage {what}."
        )


def folders_shared_to_application(application_id: int) -> QuerySet:
    """The ids of the folders shared to the application (editable or not), as a subquery."""
    return ApplicationFolder.objects.filter(application_id=application_id).values("folder_id")


def records_shared_to_application(application_id: int) -> QuerySet[PamUser]:
    """Every record in a folder shared to the application, and no other: what the
    application's client credentials may read through the secrets API."""
    return PamUser.objects.filter(folder_id__in=folders_shared_to_application(application_id))


# The secrets API's every read looks one record up this way: compiled once (vault/prepared.py).
_SHARED_RECORD_BY_UID = PreparedQuery(
    lambda application_id, uid: (
        records_shared_to_application(application_id).filter(uid=uid).order_by()
    ),
    application_id=int,
    uid=str,
)


def record_shared_to_application(application_id: int, uid: str) -> PamUser | None:
    """The record `uid` when it is in a folder shared to the application, else None."""
    found = _SHARED_RECORD_BY_UID.run(application_id=application_id, uid=uid)
    return found[0] if found else None


# --- authority over AWS credentials --------------------------------------------------------------


def scope_patterns(config: PamConfiguration) -> list[str]:
    return [p.strip() for p in config.scope_user_pattern.split(",") if p.strip()]


def scope_allows_name(config: PamConfiguration, login: str) -> bool:
    patterns = scope_patterns(config)
    return not patterns or any(fnmatchcase(login, p) for p in patterns)


def scope_allows_path(config: PamConfiguration, path: str) -> bool:
    return not config.scope_path_prefix or path.startswith(config.scope_path_prefix)


def _share_problem(app: Application, folder: SharedFolder, what: str, gateway: Gateway) -> str:
    share = ApplicationFolder.objects.filter(application=app, folder=folder).first()
    if share is None:
        return (
            f"{what} “{folder.name}” is not shared to the application “{app.name}” that owns the "
            f"gateway “{gateway.name}”: an administrator of “{app.name}” with the Share "
            "permission on the folder must share it, editable."
        )
    if not share.editable:
        return (
            f"{what} “{folder.name}” is shared read-only to the application “{app.name}”: an "
            f"administrator of “{app.name}” must share it editable so rotations can save "
            "new passwords."
        )
    return ""


def configuration_problem(config: PamConfiguration, gateway: Gateway) -> str | None:
    """Why `gateway` may not act with `config`'s credentials at all, or None. Read from the
    database each time: the gateway trusts nothing the web said."""
    if config.gateway_id != gateway.pk:
        return (
            f"The configuration “{config.title}” now names the gateway "
            f"“{config.gateway.name}”, not “{gateway.name}”: request it again."
        )
    app = gateway.application
    if app is None:
        return (
            f"The gateway “{gateway.name}” belongs to no application: a superuser must give it "
            "one in the admin console."
        )
    problem = _share_problem(app, config.folder, "The configuration's folder", gateway)
    if problem:
        return problem
    if config.uses_instance_role:
        if not gateway.allow_instance_role:
            return (
                f"The configuration “{config.title}” uses USE_INSTANCE_ROLE (the gateway host's "
                f"own credentials), which the gateway “{gateway.name}” does not allow: a "
                "superuser must allow it for this gateway, or enter an access key."
            )
        if not config.has_scope:
            return (
                f"The configuration “{config.title}” uses the gateway host's own credentials "
                "without a target scope: set an IAM path prefix or a user-name pattern."
            )
    return None


def folder_problem(config: PamConfiguration, folder: SharedFolder, gateway: Gateway) -> str | None:
    """Why `gateway` may not use `config` on records of `folder`, or None: everything
    configuration_problem checks, and `folder` shared editable to the gateway's application."""
    problem = configuration_problem(config, gateway)
    if problem:
        return problem
    return _share_problem(gateway.application, folder, "The record's folder", gateway) or None


def scope_name_problem(config: PamConfiguration, login: str) -> str | None:
    if scope_allows_name(config, login):
        return None
    return (
        f"The IAM user “{login}” is outside the target scope of the configuration "
        f"“{config.title}” (user names {config.scope_user_pattern}): widen the scope or "
        "choose another configuration."
    )


def rotation_problem(
    config: PamConfiguration,
    record: PamUser,
    gateway: Gateway,
    *,
    folder_memo: dict[tuple[int, int, int], str | None] | None = None,
) -> str | None:
    """Why `gateway` may not rotate `record` with `config`, or None. (The IAM path prefix is
    checked on the gateway against what AWS says about the user: a record's ARN is typed.)

    For many records at once, pass the same `folder_memo` (an empty dict to start): the
    records of a folder share a few configurations, so folder_problem runs once per pair.
    """
    if folder_memo is None:
        problem = folder_problem(config, record.folder, gateway)
    else:
        key = (config.pk, record.folder_id, gateway.pk)
        if key not in folder_memo:
            folder_memo[key] = folder_problem(config, record.folder, gateway)
        problem = folder_memo[key]
    return problem or scope_name_problem(config, record.login)


def may_use_configuration(user, config: PamConfiguration, record: PamUser) -> str | None:
    """Why `user` may not point `config` at `record`, or None: can_edit on both folders, and
    the gateway's checks (rotation_problem) already pass."""
    for folder, what in ((record.folder, "the record's"), (config.folder, "the configuration's")):
        if not has_permission(membership_for(user, folder), "can_edit"):
            return f"Using this configuration needs Edit records on {what} folder."
    return rotation_problem(config, record, config.gateway)


# --- people (superusers' People page) and member suggestions ------------------------------------


def superuser_verified(user) -> bool:
    """A superuser whose session is verified by a two-factor code: what the admin console asks,
    and what the People page asks."""
    is_verified = getattr(user, "is_verified", None)
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_superuser
        and is_verified is not None
        and is_verified()
    )


def require_people_manager(user) -> None:
    """PermissionDenied for anyone but a superuser. (A superuser whose session is not yet
    verified is sent to give a code by the view, as the admin console does.)"""
    if not (user.is_authenticated and user.is_active and user.is_superuser):
        raise PermissionDenied("The People page is for superusers.")


def require_verified_superuser(user, what: str) -> None:
    """PermissionDenied unless `user` is a superuser whose session a two-factor code verified
    (superuser_verified): for what only such a session may see or change, e.g. global
    webhooks. `what` names it in the refusal."""
    if not (user.is_authenticated and user.is_active and user.is_superuser):
        raise PermissionDenied(f"{what} are for superusers.")
    if not superuser_verified(user):
        raise PermissionDenied(f"{what} need a session verified by a two-factor code.")


def member_suggestions(user, folder: SharedFolder) -> QuerySet:
    """People `user` may be offered when adding members to `folder`: active people who share
    at least one folder with `user` and are not members of `folder` yet. Each of them is
    already listed on the Members page of a folder `user` belongs to, so the list reveals
    nobody new (docs/security.md, "Adding members")."""
    from django.contrib.auth import get_user_model

    if not has_permission(membership_for(user, folder), "manage_users"):
        return get_user_model().objects.none()
    mine = FolderMember.objects.filter(user=user).values("folder_id")
    colleagues = FolderMember.objects.filter(folder_id__in=mine).values("user_id")
    members = FolderMember.objects.filter(folder=folder).values("user_id")
    return (
        get_user_model()
        .objects.filter(pk__in=colleagues, is_active=True)
        .exclude(pk__in=members)
        .order_by("username")
    )


def person_for_people_manager(user, username: str):
    """The person `username`, for a superuser's People page: 403 for anyone else, 404 for a
    username nobody has."""
    from django.contrib.auth import get_user_model

    require_people_manager(user)
    person = get_user_model().objects.filter(username=username).first()
    if person is None:
        raise Http404("Nobody has that username.")
    return person


# --- folders themselves: rename, delete (docs/security.md, "Folders") ----------------------------

# Renaming changes what every member sees, as managing them does: the permission that
# administers the folder's membership. Deleting also removes every record (Add and remove
# records) and everyone's access (Manage members): both.
FOLDER_RENAME_NEEDS = ("manage_users",)
FOLDER_DELETE_NEEDS = ("manage_users", "manage_records")


def folder_for_user_needing(user, uid: str, needs: tuple[str, ...]) -> SharedFolder:
    """The folder `uid` for a member holding every permission in `needs`: 404 for outsiders,
    403 naming the first one missing."""
    folder, member = folder_for_user(user, uid)
    for need in needs:
        _require(member, need)
    return folder


def visible_records(user) -> QuerySet[PamUser]:
    """Every record in a folder `user` is a member of (and no other): the search across
    folders (vault/search.py)."""
    return PamUser.objects.filter(folder__in=folders_for_user(user).values("pk"))


# --- discovering IAM users (rotation/discovery.py, docs/discovery.md) -----------------------------

# Importing discovered users into a folder adds records there and sets up their rotation.
DISCOVERY_IMPORT_NEEDS = (
    ("manage_records", "Add and remove records"),
    ("can_edit", "Edit records"),
)


def discovery_problem(user, config: PamConfiguration) -> str | None:
    """Why `user` may not discover IAM users with `config`, or None: Edit records on the
    configuration's folder (using its credentials) and the "discover" policy. None for the
    CLI's operator (`user` None)."""
    if user is None:
        return None
    if not has_permission(membership_for(user, config.folder), "can_edit"):
        return "Discovering IAM users needs Edit records on the configuration's folder."
    if not policy_allows(user, "discover"):
        return (
            f"Your organisation's policy does not let you {POLICIES['discover']}: ask an "
            "administrator for the “discover” policy."
        )
    return None


def discovery_import_problem(user, config: PamConfiguration, folder: SharedFolder) -> str | None:
    """Why `user` may not import users discovered with `config` into `folder`, or None: may
    discover with the configuration, may add records to the folder and set up their rotation.
    None for the CLI's operator (`user` None)."""
    problem = discovery_problem(user, config)
    if problem or user is None:
        return problem
    member = membership_for(user, folder)
    for need, words in DISCOVERY_IMPORT_NEEDS:
        if not has_permission(member, need):
            return f"Importing into the folder “{folder.name}” needs {words} on it."
    if not policy_allows(user, "configure_rotation"):
        return (
            f"Your organisation's policy does not let you {POLICIES['configure_rotation']}: "
            "ask an administrator for the “configure_rotation” policy."
        )
    return None


def discovery_import_folders(user) -> QuerySet[SharedFolder]:
    """Folders `user` may import discovered users into (every permission in
    DISCOVERY_IMPORT_NEEDS), by name."""
    folders = folders_for_user(user)
    for need, _words in DISCOVERY_IMPORT_NEEDS:
        folders = folders.filter(pk__in=folders_with_permission(user, need).values("pk"))
    return folders.order_by("name")


def visible_record_pks(actor, pks: list[int]) -> set[int]:
    """Which of the records `pks` `actor` may see (visible_records), so that their uids may be
    shown; all of them for the CLI's operator (`actor` None), whose `pam list` shows every
    record."""
    if actor is None:
        return set(pks)
    seen: set[int] = set()
    for start in range(0, len(pks), 500):
        part = pks[start : start + 500]
        seen.update(visible_records(actor).filter(pk__in=part).values_list("pk", flat=True))
    return seen
