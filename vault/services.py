"""Business logic for folders and records. Views, the admin console and the CLI call these;
they never write secrets or audit events themselves."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from vault.audit import audit_record
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

FULL_PERMISSIONS = {p: True for p in FolderMember.PERMISSIONS}


@transaction.atomic
def folder_create(*, name: str, owner=None, request: HttpRequest | None = None) -> SharedFolder:
    folder = SharedFolder.objects.create(name=name)
    if owner is not None:
        FolderMember.objects.create(folder=folder, user=owner, **FULL_PERMISSIONS)
    audit_record("folder.created", actor=owner, obj=folder, request=request)
    return folder


def pam_user_set_password(
    *, record: PamUser, password: str, set_by=None, source: str = "manual", reason: str = ""
) -> None:
    """Make `password` the record's current one and keep it in the history. Caller saves."""
    record.set_secret("password", password)
    if password:
        version = PasswordVersion(pam_user=record, set_by=set_by, source=source, reason=reason)
        version.set_secret("password", password)
        version.save()


@transaction.atomic
def pam_user_create(
    *,
    folder: SharedFolder,
    title: str,
    login: str,
    distinguished_name: str,
    password: str = "",
    actor=None,
    actor_kind: str = "user",
    source: str = "manual",
    request: HttpRequest | None = None,
) -> PamUser:
    record = PamUser(
        folder=folder, title=title, login=login, distinguished_name=distinguished_name
    )
    record.save()  # the uid must exist before a secret can be bound to it
    if password:
        pam_user_set_password(
            record=record, password=password, set_by=actor, source=source, reason="created"
        )
        record.save(update_fields=["password_enc"])
    audit_record(
        "record.created", actor=actor, actor_kind=actor_kind, obj=record, request=request
    )
    return record


@transaction.atomic
def pam_user_update(
    *,
    record: PamUser,
    title: str,
    login: str,
    distinguished_name: str,
    password: str | None = None,
    actor=None,
    request: HttpRequest | None = None,
) -> PamUser:
    """Update fields; `password=None` keeps the stored password, a string replaces it."""
    changed = [
        f for f, v in (("title", title), ("login", login), ("distinguished_name", distinguished_name))
        if getattr(record, f) != v
    ]
    record.title, record.login, record.distinguished_name = title, login, distinguished_name
    if password is not None and password != record.get_secret("password"):
        pam_user_set_password(
            record=record, password=password, set_by=actor, reason="edited by a person"
        )
        changed.append("password")
    record.save()
    audit_record(
        "record.updated", actor=actor, obj=record, request=request, details={"fields": changed}
    )
    return record


@transaction.atomic
def pam_user_delete(*, record: PamUser, actor=None, request: HttpRequest | None = None) -> None:
    audit_record("record.deleted", actor=actor, obj=record, request=request)
    record.delete()


def pam_user_reveal(
    *, record: PamUser, actor=None, actor_kind: str = "user", request=None, what: str = "password"
) -> str:
    """Return the current password and write the audit event that says someone saw it."""
    password = record.get_secret("password")
    audit_record(
        "password.revealed",
        actor=actor,
        actor_kind=actor_kind,
        obj=record,
        request=request,
        details={"what": what},
    )
    return password


@transaction.atomic
def configuration_save(
    *,
    config: PamConfiguration,
    access_secret_key: str | None = None,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> PamConfiguration:
    """Create or update a configuration; `access_secret_key=None` keeps the stored secret."""
    creating = config.pk is None
    if creating:
        config.save()
    if access_secret_key is not None:
        config.set_secret("access_secret_key", access_secret_key)
    config.save()
    audit_record(
        "configuration.created" if creating else "configuration.updated",
        actor=actor,
        actor_kind=actor_kind,
        obj=config,
        request=request,
    )
    return config


@transaction.atomic
def configuration_delete(
    *, config: PamConfiguration, actor=None, request: HttpRequest | None = None
) -> None:
    audit_record("configuration.deleted", actor=actor, obj=config, request=request)
    config.delete()


def gateway_get_or_create(*, name: str, application: Application | None = None) -> Gateway:
    gateway, created = Gateway.objects.get_or_create(name=name)
    if application is not None and gateway.application_id != application.pk:
        gateway.application = application
        gateway.save(update_fields=["application"])
    return gateway


def application_share_folder(
    *, application: Application, folder: SharedFolder, editable: bool = True
) -> None:
    ApplicationFolder.objects.update_or_create(
        application=application, folder=folder, defaults={"editable": editable}
    )
