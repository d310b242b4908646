"""Writing an import plan (vault/import_model.py), whichever reader made it.

Everything is written through vault/services.py in one transaction: an error anywhere (a
folder that would lose its last manager, an extension refusing) writes nothing.

Matching, so that importing the same file twice changes nothing: folders by name, gateways by
name, applications by name, configurations by title within their folder, PAM Users by title
within their folder. A matched row is updated only where the plan differs; a value the plan
leaves MISSING keeps the stored value (a PAM User's notes and managed flag too). Passwords:
an empty password never clears a stored one, and a password that is already in the record's
history (for example the one the file first imported, since rotated away) is not put back, so
re-importing after a rotation does not undo it. An access key (id and secret) is matched the
same way: one the record held before is not put back. A password history in the plan adds the
entries the record lacks, as they were (access keys' secrets among them, with their key ids).

Every change is recorded in ``context.changes`` (names and fields, never a secret); a dry run
makes the same changes and rolls them back.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from vault import services
from vault.import_model import (
    MISSING,
    ConfigurationItem,
    ImportContext,
    ImportProblems,
    Plan,
    UserItem,
)
from vault.models import (
    Application,
    ApplicationFolder,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    PasswordVersion,
    SharedFolder,
)


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""


def apply_plan(plan: Plan, context: ImportContext, *, dry_run: bool = False) -> dict:
    """Write `plan`; returns {"folders": {name: uid}, "gateways": ..., "configurations": ...,
    "users": ...}. With `dry_run` nothing stays written, and the uids of rows the import
    would create are None."""
    created: set[str] = set()
    try:
        with transaction.atomic():
            result = _apply(plan, context, created)
            if dry_run:
                raise _DryRun
    except _DryRun:
        for names in result.values():
            for key, uid in names.items():
                if uid in created:
                    names[key] = None
    return result


def _apply(plan: Plan, context: ImportContext, created: set[str]) -> dict:
    result: dict[str, dict[str, str | None]] = {
        "folders": {},
        "gateways": {},
        "configurations": {},
        "users": {},
    }
    kind = context.actor_kind
    for item in plan.folders:
        folder = SharedFolder.objects.filter(name=item.name).first()
        if folder is None:
            folder = services.folder_create(name=item.name, actor_kind=kind)
            created.add(folder.uid)
            context.change("create", "folder", folder.name)
        context.folders[folder.name] = folder
        if plan.owner is not None:
            _grant(context, folder, plan.owner, services.FULL_PERMISSIONS, "--owner")
        for member in item.members:
            if plan.owner is not None and member.user.pk == plan.owner.pk:
                continue  # the owner has every permission, whatever the file gives
            _grant(context, folder, member.user, member.permissions, member.path)
        result["folders"][folder.name] = folder.uid

    # A gateway the plan's applications name is made in its application at once.
    owners = {name: app.name for app in plan.applications or [] for name in app.gateways}
    gateways = {}
    for item in plan.gateways:
        owner = _application(context, owners[item.name]) if item.name in owners else None
        gateway = _gateway(context, item.name, created, application=owner)
        gateways[gateway.name] = gateway
        result["gateways"][gateway.name] = gateway.uid

    if plan.applications is not None:
        for app in plan.applications:
            application = _application(context, app.name)
            _grant_administrator(context, application, plan.owner)
            for name in app.gateways:
                _gateway(context, name, created, application=application)
            for name, editable in app.folders:
                _share(context, application, _folder(name, context), editable)
    else:
        # Ready to rotate without an "applications" section: each gateway's application
        # (one named after it, unless it already has one) gets every imported folder.
        for gateway in gateways.values():
            application = gateway.application or _application(context, gateway.name)
            _gateway(context, gateway.name, created, application=application)
            _grant_administrator(context, application, plan.owner)
            for item in plan.folders:
                _share_if_missing(context, application, context.folders[item.name])

    for item in plan.configurations:
        config = _configuration(item, context, created)
        context.saved_configurations[(item.folder, item.title)] = config
        key = _result_key(lambda c: c.title, item, plan.configurations)
        result["configurations"][key] = config.uid

    stored = _stored_records(plan.users)
    records = []
    for item in plan.users:
        record = _user(item, context, stored, created)
        records.append((record, item))
        key = _result_key(lambda u: u.title, item, plan.users)
        result["users"][key] = record.uid

    for record, item in records:
        for key, (value, _path) in item.extensions.items():
            extension = context.extensions.get(key)
            if extension is not None:
                extension.apply(record, value, context)
    return result


def _result_key(name_of: Callable, item, items: list) -> str:
    """Titles are unique per folder: a title used in two folders is keyed `folder/title`."""
    title = name_of(item)
    if sum(1 for other in items if name_of(other) == title) > 1:
        return f"{item.folder}/{title}"
    return title


def _grant(context: ImportContext, folder: SharedFolder, user, permissions: dict, path) -> None:
    """`user` is a member of `folder` with exactly `permissions` (an owner: every one)."""
    wanted = {p: bool(permissions.get(p)) for p in FolderMember.PERMISSIONS}
    member = FolderMember.objects.filter(folder=folder, user=user).first()
    if member is None:
        services.member_add(
            folder=folder, user=user, permissions=wanted, actor_kind=context.actor_kind
        )
        context.change(
            "add member",
            "folder",
            folder.name,
            user=user.username,
            permissions=[p for p, on in wanted.items() if on],
        )
    elif {p: getattr(member, p) for p in FolderMember.PERMISSIONS} != wanted:
        try:
            services.member_update(member=member, permissions=wanted, actor_kind=context.actor_kind)
        except services.LastManagerError as exc:
            raise ImportProblems(f"{path}: {exc}") from None
        context.change(
            "update member",
            "folder",
            folder.name,
            user=user.username,
            permissions=[p for p, on in wanted.items() if on],
        )


def _gateway(
    context: ImportContext,
    name: str,
    created: set[str],
    application: Application | None = None,
) -> Gateway:
    gateway = Gateway.objects.filter(name=name).select_related("application").first()
    if gateway is None:
        gateway = services.gateway_get_or_create(name=name, application=application)
        created.add(gateway.uid)
        context.change(
            "create", "gateway", name, application=application.name if application else None
        )
    elif application is not None and gateway.application_id != application.pk:
        gateway = services.gateway_get_or_create(name=name, application=application)
        context.change("update", "gateway", name, application=application.name)
    return gateway


def _application(context: ImportContext, name: str) -> Application:
    application = Application.objects.filter(name=name).first()
    if application is None:
        application = services.application_get_or_create(name=name)
        context.change("create", "application", name)
    return application


def _grant_administrator(context: ImportContext, application: Application, owner) -> None:
    """`--owner` administers the applications the import names, as it owns its folders: the
    operator who imports on the vault host has that authority and hands it to the owner."""
    if owner is not None and not application.administrators.filter(pk=owner.pk).exists():
        application.administrators.add(owner)
        context.change("add administrator", "application", application.name, user=owner.username)


def _share(
    context: ImportContext, application: Application, folder: SharedFolder, editable: bool
) -> None:
    share = ApplicationFolder.objects.filter(application=application, folder=folder).first()
    if share is None or share.editable != editable:
        services.application_share_folder(application=application, folder=folder, editable=editable)
        context.change(
            "share" if share is None else "update share",
            "folder",
            folder.name,
            application=application.name,
            editable=editable,
        )


def _share_if_missing(
    context: ImportContext, application: Application, folder: SharedFolder
) -> None:
    if not ApplicationFolder.objects.filter(application=application, folder=folder).exists():
        services.application_share_folder(application=application, folder=folder, editable=True)
        context.change("share", "folder", folder.name, application=application.name, editable=True)


def _folder(name: str, context: ImportContext) -> SharedFolder:
    if name not in context.folders:
        context.folders[name] = SharedFolder.objects.get(name=name)
    return context.folders[name]


CONFIGURATION_FIELDS = (
    "aws_id",
    "region_names",
    "endpoint_url",
    "default_rotation_schedule",
    "scope_path_prefix",
    "scope_user_pattern",
)


def _configuration(
    item: ConfigurationItem, context: ImportContext, created: set[str]
) -> PamConfiguration:
    folder = _folder(item.folder, context)
    gateway = Gateway.objects.get(name=item.gateway)
    config = PamConfiguration.objects.filter(folder=folder, title=item.title).first()
    creating = config is None
    if creating:
        config = PamConfiguration(folder=folder, title=item.title)
    wanted = {
        "environment": item.environment,
        "gateway_id": gateway.pk,
        "access_key_id": item.access_key_id,
    }
    for key in CONFIGURATION_FIELDS:
        value = getattr(item, key)
        if value is not MISSING:
            wanted[key] = value
    changed = [k for k, v in wanted.items() if getattr(config, k) != v]
    secret = item.access_secret_key
    if not creating and secret == config.get_secret("access_secret_key"):
        secret = None
    if creating or changed or secret is not None:
        for key, value in wanted.items():
            setattr(config, key, value)
        services.configuration_save(
            config=config, access_secret_key=secret, actor_kind=context.actor_kind
        )
        if creating:
            created.add(config.uid)
            context.change("create", "configuration", item.title, folder=item.folder)
        else:
            fields = [k.removesuffix("_id") for k in changed]
            if secret is not None:
                fields.append("access_secret_key")
            context.change("update", "configuration", item.title, folder=item.folder, fields=fields)
    return config


def _stored_records(items: list[UserItem]) -> dict[tuple[str, str], PamUser]:
    """The stored records the plan's users match, (folder name, title) -> record, in one query
    per few hundred titles."""
    titles = sorted({item.title for item in items})
    found = {}
    for start in range(0, len(titles), 500):
        rows = PamUser.objects.filter(title__in=titles[start : start + 500]).select_related(
            "folder"
        )
        for record in rows:
            found[(record.folder.name, record.title)] = record
    return found


def _password_to_store(record: PamUser, password: str) -> str | None:
    """None keeps the stored password (see the module docstring for why)."""
    if not password or password == record.get_secret("password"):
        return None
    if any(v.get_secret("password") == password for v in record.versions.all()):
        return None
    return password


def _access_key_to_store(record: PamUser, access_key) -> tuple[str, str] | None:
    """None keeps the stored access key: the plan has none, or the same one, or one the record
    held before (in its history: a rotation has replaced it since), as for passwords."""
    if access_key is MISSING:
        return None
    key_id, secret = access_key
    if key_id == record.access_key_id and secret == record.get_secret("access_secret_key"):
        return None
    held = record.versions.filter(kind=PasswordVersion.ACCESS_KEY, access_key_id=key_id)
    if any(v.get_secret("password") == secret for v in held):
        return None
    return access_key


def _key_in_history(item: UserItem) -> bool:
    """Whether the plan's history holds the plan's access key (then it is not added twice)."""
    if item.access_key is MISSING or not item.history:
        return False
    key_id, secret = item.access_key
    return any(
        e.kind == PasswordVersion.ACCESS_KEY and e.access_key_id == key_id and e.password == secret
        for e in item.history
    )


def _user(
    item: UserItem,
    context: ImportContext,
    stored: dict[tuple[str, str], PamUser],
    created: set[str],
) -> PamUser:
    folder = _folder(item.folder, context)
    record = stored.get((item.folder, item.title))
    in_history = bool(item.history) and item.password in {
        e.password for e in item.history if e.kind == PasswordVersion.PASSWORD
    }
    key_in_history = _key_in_history(item)
    if record is None:
        record = services.pam_user_create(
            folder=folder,
            title=item.title,
            login=item.login,
            distinguished_name=item.distinguished_name,
            password=item.password,
            notes="" if item.notes is MISSING else item.notes,
            managed=True if item.managed is MISSING else item.managed,
            actor_kind=context.actor_kind,
            source="import",
            new_version=not in_history,
        )
        if item.access_key is not MISSING:
            services.pam_user_set_access_key(
                record=record,
                access_key_id=item.access_key[0],
                secret=item.access_key[1],
                source="import",
                reason="created",
                new_version=not key_in_history,
            )
            record.save(update_fields=services.ACCESS_KEY_FIELDS)
        created.add(record.uid)
        added = 0
        if item.history:
            added = services.pam_user_import_history(
                record=record, entries=item.history, actor_kind=context.actor_kind
            )
        context.change(
            "create",
            "user",
            item.title,
            folder=item.folder,
            **({"history": added} if added else {}),
        )
        return record
    password = _password_to_store(record, item.password)
    access_key = _access_key_to_store(record, item.access_key)
    added = 0
    if item.history:
        added = services.pam_user_import_history(
            record=record, entries=item.history, actor_kind=context.actor_kind
        )
    fields = [
        f
        for f in ("login", "distinguished_name", "notes", "managed")
        if getattr(item, f) is not MISSING and getattr(record, f) != getattr(item, f)
    ]
    if password is not None or fields or access_key is not None:
        services.pam_user_update(
            record=record,
            title=record.title,
            login=item.login,
            distinguished_name=item.distinguished_name,
            password=password,
            notes=None if item.notes is MISSING else item.notes,
            managed=None if item.managed is MISSING else item.managed,
            access_key=access_key,
            actor_kind=context.actor_kind,
            source="import",
            new_version=not in_history,
            new_key_version=not key_in_history,
        )
    if password is not None:
        fields.append("password")
    if access_key is not None:
        fields.append("access_key")
    if fields or added:
        context.change(
            "update",
            "user",
            item.title,
            folder=item.folder,
            **({"fields": fields} if fields else {}),
            **({"history": added} if added else {}),
        )
    return record
