"""Business logic for folders and records. Views, the admin console and the CLI call these;
they never write secrets or audit events themselves."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.db.models.deletion import ProtectedError
from django.http import HttpRequest

from vault.audit import audit_record
from vault.crypto import CryptoError
from vault.models import (
    Application,
    ApplicationFolder,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    PasswordVersion,
    Preference,
    SharedFolder,
)

FULL_PERMISSIONS = {p: True for p in FolderMember.PERMISSIONS}


@transaction.atomic
def folder_create(
    *,
    name: str,
    owner=None,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> SharedFolder:
    """Create a folder; `owner` (if any) becomes a member with every permission. The audit
    actor is `actor`, or the owner when no actor is given."""
    folder = SharedFolder.objects.create(name=name)
    if owner is not None:
        FolderMember.objects.create(folder=folder, user=owner, **FULL_PERMISSIONS)
    audit_record(
        "folder.created",
        actor=actor if actor is not None else owner,
        actor_kind=actor_kind,
        obj=folder,
        request=request,
    )
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


def pam_user_set_access_key(
    *,
    record: PamUser,
    access_key_id: str,
    secret: str,
    set_by=None,
    source: str = "manual",
    reason: str = "",
    new_version: bool = True,
) -> None:
    """Make the pair the record's current access key and keep it in the history (kind
    access_key, with its key id). An empty id and secret remove the record's key (nothing
    enters the history). Caller saves access_key_id and access_secret_key_enc."""
    if secret and new_version:
        change = (record, secret, set_by, reason, access_key_id)
        pam_users_set_access_keys(changes=[change], source=source)
        return
    record.access_key_id = access_key_id
    record.set_secret("access_secret_key", secret)


ACCESS_KEY_FIELDS = ["access_key_id", "access_secret_key_enc"]


def pam_users_set_passwords(
    *, changes: list[tuple[PamUser, str, object, str]], source: str
) -> None:
    """pam_user_set_password for many records at once, one INSERT for the history: each change
    is (record, password, set_by, reason). Callers save the records."""
    versions = []
    for record, password, set_by, reason in changes:
        record.set_secret("password", password)
        if password:
            version = PasswordVersion(pam_user=record, set_by=set_by, source=source, reason=reason)
            version.set_secret("password", password)
            versions.append(version)
    PasswordVersion.objects.bulk_create(versions)


def pam_users_set_access_keys(
    *, changes: list[tuple[PamUser, str, object, str, str]], source: str
) -> None:
    """Each record's access key, one INSERT for the history: each change is (record, secret,
    set_by, reason, key id). Callers save the records (access_key_id, access_secret_key_enc)."""
    versions = []
    for record, secret, set_by, reason, key_id in changes:
        record.access_key_id = key_id
        record.set_secret("access_secret_key", secret)
        version = PasswordVersion(
            pam_user=record,
            kind=PasswordVersion.ACCESS_KEY,
            access_key_id=key_id,
            set_by=set_by,
            source=source,
            reason=reason,
        )
        version.set_secret("password", secret)
        versions.append(version)
    PasswordVersion.objects.bulk_create(versions)


@transaction.atomic
def pam_user_create(
    *,
    folder: SharedFolder,
    title: str,
    login: str,
    distinguished_name: str,
    password: str = "",
    notes: str = "",
    managed: bool = True,
    access_key: tuple[str, str] | None = None,
    actor=None,
    actor_kind: str = "user",
    source: str = "manual",
    request: HttpRequest | None = None,
    new_version: bool = True,
) -> PamUser:
    """`new_version=False`: the password and access key are not added to the history (an
    import that restores the history itself, with pam_user_import_history). `managed=False`:
    the vault never rotates the record. `access_key`: (key id, secret) of the IAM user's
    access key."""
    record = PamUser(
        folder=folder,
        title=title,
        login=login,
        distinguished_name=distinguished_name,
        notes=notes,
        managed=managed,
    )
    record.save()  # the uid must exist before a secret can be bound to it
    if password:
        if new_version:
            pam_user_set_password(
                record=record, password=password, set_by=actor, source=source, reason="created"
            )
        else:
            record.set_secret("password", password)
        record.save(update_fields=["password_enc"])
    if access_key is not None and access_key[1]:
        pam_user_set_access_key(
            record=record,
            access_key_id=access_key[0],
            secret=access_key[1],
            set_by=actor,
            source=source,
            reason="created",
            new_version=new_version,
        )
        record.save(update_fields=ACCESS_KEY_FIELDS)
    audit_record(
        "record.created",
        actor=actor,
        actor_kind=actor_kind,
        obj=record,
        request=request,
        details={} if managed else {"managed": False},
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
    notes: str | None = None,
    managed: bool | None = None,
    access_key: tuple[str, str] | None = None,
    actor=None,
    actor_kind: str = "user",
    source: str = "manual",
    request: HttpRequest | None = None,
    new_version: bool = True,
    new_key_version: bool | None = None,
) -> PamUser:
    """Update fields; `password=None` keeps the stored password, a string replaces it
    (`new_version=False`: without a history entry, as pam_user_create; `new_key_version`
    the same for the access key, as `new_version` when None); `notes=None` and
    `managed=None` keep theirs. `access_key` None keeps the stored access key; (key id,
    secret) replaces it with a history entry (("", "") removes it). The audit names the
    fields changed (never their values, except the managed flag's and the access key id,
    which AWS shows in every listing)."""
    wanted = {"title": title, "login": login, "distinguished_name": distinguished_name}
    if notes is not None:
        wanted["notes"] = notes
    if managed is not None:
        wanted["managed"] = managed
    changed = [f for f, v in wanted.items() if getattr(record, f) != v]
    for f, v in wanted.items():
        setattr(record, f, v)
    if password is not None and password != record.get_secret("password"):
        if new_version:
            pam_user_set_password(
                record=record,
                password=password,
                set_by=actor,
                source=source,
                reason="imported" if source == "import" else "edited by a person",
            )
        else:
            record.set_secret("password", password)
        changed.append("password")
    if access_key is not None and _access_key_differs(record, access_key):
        pam_user_set_access_key(
            record=record,
            access_key_id=access_key[0],
            secret=access_key[1],
            set_by=actor,
            source=source,
            reason="imported" if source == "import" else "edited by a person",
            new_version=new_version if new_key_version is None else new_key_version,
        )
        changed.append("access_key")
    # Only the columns this edit owns: a rotation finishing meanwhile keeps its new password.
    fields = [*wanted, "updated_at"]
    fields += ["password_enc"] if "password" in changed else []
    fields += ACCESS_KEY_FIELDS if "access_key" in changed else []
    record.save(update_fields=fields)
    details: dict = {"fields": changed}
    if "managed" in changed:
        details["managed"] = record.managed
    if "access_key" in changed:
        details["access_key_id"] = record.access_key_id
    audit_record(
        "record.updated",
        actor=actor,
        actor_kind=actor_kind,
        obj=record,
        request=request,
        details=details,
    )
    return record


def _access_key_differs(record: PamUser, access_key: tuple[str, str]) -> bool:
    key_id, secret = access_key
    return key_id != record.access_key_id or secret != record.get_secret("access_secret_key")


@transaction.atomic
def pam_user_import_history(
    *, record: PamUser, entries: list, actor=None, actor_kind: str = "cli"
) -> int:
    """Add the password history `entries` (each with .password, .set_at, .source, .reason,
    and for an access key's secret .kind "access_key" and .access_key_id) that the record does
    not hold yet (the same time, kind and secret), as they were: a backup's history comes back
    unchanged. Returns how many were added; audited with the count only."""
    held = {(v.created_at, v.kind, v.get_secret("password")) for v in record.versions.all()}
    added = []
    for entry in entries:
        kind = getattr(entry, "kind", PasswordVersion.PASSWORD)
        if not entry.password or (entry.set_at, kind, entry.password) in held:
            continue
        held.add((entry.set_at, kind, entry.password))
        version = PasswordVersion(
            pam_user=record,
            kind=kind,
            access_key_id=getattr(entry, "access_key_id", ""),
            source=entry.source,
            reason=entry.reason,
            created_at=entry.set_at,
        )
        version.set_secret("password", entry.password)
        added.append(version)
    PasswordVersion.objects.bulk_create(added)
    if added:
        audit_record(
            "record.history_imported",
            actor=actor,
            actor_kind=actor_kind,
            obj=record,
            details={"entries": len(added)},
        )
    return len(added)


@transaction.atomic
def pam_user_delete(*, record: PamUser, actor=None, request: HttpRequest | None = None) -> None:
    audit_record("record.deleted", actor=actor, obj=record, request=request)
    record.delete()


class RevealError(CryptoError):
    """A stored secret could not be decrypted for a reveal (tampered with, or sealed with a key
    that is not in VAULT_ENCRYPTION_KEYS). `str()` is the operator's line, naming the row and
    the reason; `user_message` is what a person on the web is told. Neither holds key material.
    A CryptoError, so callers that already turn those into one clean line keep doing so."""

    def __init__(self, *, obj, what: str, reason: str) -> None:
        noun = "secret key" if what == "access_secret_key" else "password"
        kind = "configuration" if isinstance(obj, PamConfiguration) else "record"
        self.reason = reason
        self.user_message = (
            f"The stored {noun} cannot be decrypted, so it was not revealed. It was changed "
            "outside the vault or sealed with an encryption key the vault no longer has; "
            "an administrator can check VAULT_ENCRYPTION_KEYS. This was recorded in the audit log."
        )
        super().__init__(
            f"{kind} {obj.uid}: the stored {noun} cannot be decrypted ({reason}); nothing was "
            "revealed. Check that VAULT_ENCRYPTION_KEYS holds the key it was encrypted with."
        )


def _secret_for_reveal(row, field: str, *, audit_obj, actor, actor_kind, request, details) -> str:
    """The decrypted secret; or, when it does not decrypt, the audit event `password.reveal_failed`
    (written before raising, so the attempt is on record) and RevealError instead of a 500."""
    try:
        return row.get_secret(field)
    except CryptoError as exc:
        audit_record(
            "password.reveal_failed",
            actor=actor,
            actor_kind=actor_kind,
            obj=audit_obj,
            request=request,
            details={**details, "error": str(exc)},
        )
        raise RevealError(obj=audit_obj, what=details["what"], reason=str(exc)) from exc


def pam_user_reveal(
    *, record: PamUser, actor=None, actor_kind: str = "user", request=None, what: str = "password"
) -> str:
    """Return the current password and write the audit event that says someone saw it.
    Raises RevealError (audited as a failed reveal) when the stored value does not decrypt."""
    password = _secret_for_reveal(
        record,
        "password",
        audit_obj=record,
        actor=actor,
        actor_kind=actor_kind,
        request=request,
        details={"what": what},
    )
    audit_record(
        "password.revealed",
        actor=actor,
        actor_kind=actor_kind,
        obj=record,
        request=request,
        details={"what": what},
    )
    return password


def pam_user_reveal_access_key(
    *, record: PamUser, actor=None, actor_kind: str = "user", request=None
) -> str:
    """Return the current access key's secret and write the audit event that says someone saw
    it (with the key id). Raises RevealError (audited) when it does not decrypt."""
    details = {"what": "access_secret_key", "access_key_id": record.access_key_id}
    secret = _secret_for_reveal(
        record,
        "access_secret_key",
        audit_obj=record,
        actor=actor,
        actor_kind=actor_kind,
        request=request,
        details=details,
    )
    audit_record(
        "password.revealed",
        actor=actor,
        actor_kind=actor_kind,
        obj=record,
        request=request,
        details=details,
    )
    return secret


# Passwords AWS may hold for a record besides its current one, known to apps above the vault
# (rotation: a rotation's pending password that may be live, or is being set now). Each hook
# is called as hook(record=..., actor=..., actor_kind=..., request=...), reveals and audits
# what it returns itself, and returns one dict per password, newest first: "rotation" (uid),
# "kind", "label", "status", "since" (a datetime) and "password" (None, with "error" saying
# why, when it could not be decrypted). Filled in the apps' ready().
RECORD_CANDIDATE_REVEALERS: list[Callable[..., list[dict]]] = []


def pam_user_reveal_candidates(
    *, record: PamUser, actor=None, actor_kind: str = "user", request=None
) -> list[dict]:
    """Every other password AWS may hold for `record`, revealed and audited by the hooks of
    RECORD_CANDIDATE_REVEALERS. The caller checks the right (vault.access.may_reveal_candidates)."""
    found: list[dict] = []
    for reveal in RECORD_CANDIDATE_REVEALERS:
        found.extend(reveal(record=record, actor=actor, actor_kind=actor_kind, request=request))
    return found


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
def deletion_refusal_reason(exc: ProtectedError, default: str) -> str:
    """What stops a deletion, in words (the pages and the CLI say the same): rows that protect
    themselves say why (a rotation in progress, a password that may be live in AWS); others
    get `default`."""
    reasons = {getattr(o, "deletion_blocker", None) for o in exc.protected_objects} - {None}
    return " ".join(sorted(reasons)) or default


@transaction.atomic  # a refused deletion (ProtectedError) leaves no event saying it happened
def configuration_delete(
    *,
    config: PamConfiguration,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> None:
    audit_record(
        "configuration.deleted", actor=actor, actor_kind=actor_kind, obj=config, request=request
    )
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


def password_version_reveal(
    *, version: PasswordVersion, actor=None, actor_kind: str = "user", request=None
) -> str:
    """Return a password from a record's history and write the audit event that says so.
    Raises RevealError (audited as a failed reveal) when the stored value does not decrypt."""
    password = _secret_for_reveal(
        version,
        "password",
        audit_obj=version.pam_user,
        actor=actor,
        actor_kind=actor_kind,
        request=request,
        details={"what": "history", "version": version.uid},
    )
    audit_record(
        "password.revealed",
        actor=actor,
        actor_kind=actor_kind,
        obj=version.pam_user,
        request=request,
        details={"what": "history", "version": version.uid},
    )
    return password


class LastManagerError(Exception):
    """The change would leave a folder without a member who can manage members."""


def _lock_folder(folder: SharedFolder) -> None:
    # Serialises membership changes per folder, so two managers removing each other at once
    # cannot both succeed and leave the folder without a manager.
    SharedFolder.objects.select_for_update().filter(pk=folder.pk).first()


def _check_keeps_a_manager(folder: SharedFolder, *, without: FolderMember) -> None:
    others = FolderMember.objects.filter(folder=folder, manage_users=True).exclude(pk=without.pk)
    if not others.exists():
        raise LastManagerError(
            "A folder must keep at least one member who can manage members; "
            "give that permission to someone else first."
        )


@transaction.atomic
def member_add(
    *,
    folder: SharedFolder,
    user,
    permissions: dict[str, bool],
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> FolderMember:
    perms = {p: bool(permissions.get(p)) for p in FolderMember.PERMISSIONS}
    member = FolderMember.objects.create(folder=folder, user=user, **perms)
    audit_record(
        "member.added",
        actor=actor,
        actor_kind=actor_kind,
        obj=folder,
        request=request,
        details={"user": user.username, "permissions": member.permission_names()},
    )
    return member


@transaction.atomic
def member_update(
    *,
    member: FolderMember,
    permissions: dict[str, bool],
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> FolderMember:
    """Set a member's permissions; raises LastManagerError rather than orphan the folder."""
    _lock_folder(member.folder)
    member.refresh_from_db()
    perms = {p: bool(permissions.get(p)) for p in FolderMember.PERMISSIONS}
    if member.manage_users and not perms["manage_users"]:
        _check_keeps_a_manager(member.folder, without=member)
    for name, value in perms.items():
        setattr(member, name, value)
    member.save(update_fields=list(perms))
    audit_record(
        "member.updated",
        actor=actor,
        actor_kind=actor_kind,
        obj=member.folder,
        request=request,
        details={"user": member.user.username, "permissions": member.permission_names()},
    )
    return member


@transaction.atomic
def member_remove(*, member: FolderMember, actor=None, request: HttpRequest | None = None) -> None:
    """Remove a member; raises LastManagerError rather than orphan the folder."""
    _lock_folder(member.folder)
    member.refresh_from_db()
    if member.manage_users:
        _check_keeps_a_manager(member.folder, without=member)
    audit_record(
        "member.removed",
        actor=actor,
        obj=member.folder,
        request=request,
        details={"user": member.user.username},
    )
    member.delete()


def configuration_reveal(
    *, config: PamConfiguration, actor=None, actor_kind: str = "user", request=None
) -> str:
    """Return the configuration's access secret key and write the audit event that says so.
    Raises RevealError (audited as a failed reveal) when the stored value does not decrypt."""
    secret = _secret_for_reveal(
        config,
        "access_secret_key",
        audit_obj=config,
        actor=actor,
        actor_kind=actor_kind,
        request=request,
        details={"what": "access_secret_key"},
    )
    audit_record(
        "password.revealed",
        actor=actor,
        actor_kind=actor_kind,
        obj=config,
        request=request,
        details={"what": "access_secret_key"},
    )
    return secret


@transaction.atomic
def gateway_create(
    *, name: str, application: Application, actor=None, request: HttpRequest | None = None
) -> Gateway:
    """A new gateway of `application` (the caller checked that the actor administers it).
    Raises IntegrityError when the name is taken: an existing gateway never changes hands."""
    gateway = Gateway.objects.create(name=name, application=application)
    audit_record(
        "gateway.created",
        actor=actor,
        obj=gateway,
        request=request,
        details={"application": application.name},
    )
    return gateway


def application_get_or_create(*, name: str) -> Application:
    application, _ = Application.objects.get_or_create(name=name)
    return application


@transaction.atomic
def folder_share(
    *,
    folder: SharedFolder,
    application: Application,
    editable: bool,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> None:
    application_share_folder(application=application, folder=folder, editable=editable)
    audit_record(
        "folder.shared",
        actor=actor,
        actor_kind=actor_kind,
        obj=folder,
        request=request,
        details={"application": application.name, "editable": editable},
    )


@transaction.atomic
def folder_unshare(
    *, share: ApplicationFolder, actor=None, request: HttpRequest | None = None
) -> None:
    audit_record(
        "folder.unshared",
        actor=actor,
        obj=share.folder,
        request=request,
        details={"application": share.application.name},
    )
    share.delete()


# --- people (the People page and the account page) ----------------------------------------------
# Superusers create, deactivate, reactivate and reset people and lift sign-in lockouts; anyone
# changes their own password. Each is one audit event naming the person, never a password.

TEMPORARY_PASSWORD_BYTES = 15  # 20 characters of URL-safe base64


class PersonError(Exception):
    """A people action that may not be done; the message says why."""


def _temporary_password() -> str:
    import secrets

    return secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)


@transaction.atomic
def person_create(
    *, username: str, password: str | None, actor=None, request: HttpRequest | None = None
) -> tuple[object, str | None]:
    """Create an active person with `password`, or with a temporary one when it is None.
    Returns (the person, the temporary password to show once, or None)."""
    from django.contrib.auth import get_user_model

    temporary = _temporary_password() if password is None else None
    person = get_user_model().objects.create_user(
        username=username, password=password if password is not None else temporary
    )
    audit_record(
        "person.created",
        actor=actor,
        obj=person,
        request=request,
        details={"username": username, "temporary_password": temporary is not None},
    )
    return person, temporary


@transaction.atomic
def person_set_active(
    *, person, active: bool, actor=None, request: HttpRequest | None = None
) -> None:
    """Deactivate (or reactivate) `person`. A deactivated person cannot sign in and their open
    sessions are refused (Django's ModelBackend refuses inactive users). Nobody deactivates
    themselves: a vault could be left without a superuser who can sign in."""
    if not active and actor is not None and person.pk == getattr(actor, "pk", None):
        raise PersonError("You cannot deactivate yourself.")
    person.is_active = active
    person.save(update_fields=["is_active"])
    audit_record(
        "person.reactivated" if active else "person.deactivated",
        actor=actor,
        obj=person,
        request=request,
        details={"username": person.get_username()},
    )


def person_deactivate(*, person, actor=None, request: HttpRequest | None = None) -> None:
    person_set_active(person=person, active=False, actor=actor, request=request)


def person_reactivate(*, person, actor=None, request: HttpRequest | None = None) -> None:
    person_set_active(person=person, active=True, actor=actor, request=request)


@transaction.atomic
def person_reset_password(
    *, person, password: str | None, actor=None, request: HttpRequest | None = None
) -> str | None:
    """Give `person` `password`, or a temporary one when it is None (returned, to show once).
    The new password hash ends every session they have open."""
    temporary = _temporary_password() if password is None else None
    person.set_password(password if password is not None else temporary)
    person.save(update_fields=["password"])
    audit_record(
        "person.password_reset",
        actor=actor,
        obj=person,
        request=request,
        details={"username": person.get_username(), "temporary_password": temporary is not None},
    )
    return temporary


def person_unlock(*, person, actor=None, request: HttpRequest | None = None) -> int:
    """Lift django-axes' sign-in lockouts of `person` (from every address), through axes' own
    API; returns how many failure records were removed."""
    from axes.utils import reset

    username = person.get_username()
    removed = reset(username=username)
    audit_record(
        "person.unlocked",
        actor=actor,
        obj=person,
        request=request,
        details={"username": username, "attempts_removed": removed},
    )
    return removed


@transaction.atomic
def account_password_change(*, user, password: str, request: HttpRequest | None = None) -> None:
    """`user` changes their own password. The view keeps its own session signed in
    (update_session_auth_hash); the new hash ends their other sessions."""
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(
        "account.password_changed",
        actor=user,
        obj=user,
        request=request,
        details={"username": user.get_username()},
    )


@transaction.atomic
def folder_rename(
    *, folder: SharedFolder, name: str, actor=None, request: HttpRequest | None = None
) -> SharedFolder:
    """Rename `folder` (audited with the old and new names). An IntegrityError when another
    folder took the name meanwhile (the database's unique constraint decides)."""
    old = folder.name
    folder.name = name
    folder.save(update_fields=["name"])
    audit_record(
        "folder.renamed",
        actor=actor,
        obj=folder,
        request=request,
        details={"old_name": old, "new_name": name},
    )
    return folder


@transaction.atomic  # a refused deletion (ProtectedError) leaves nothing deleted, no event
def folder_delete(*, folder: SharedFolder, actor=None, request: HttpRequest | None = None) -> None:
    """Delete `folder` with its records and configurations. Refused (ProtectedError, as
    pam_user_delete and configuration_delete) while any of its records has a rotation in
    progress or a password that may be live in AWS, or another folder's record uses one of its
    configurations. Records go first, so their rotation settings no longer hold the
    configurations; the audit event is written before, with the counts, and kept (its folder
    becomes empty, its details name it)."""
    records = PamUser.objects.filter(folder=folder)
    audit_record(
        "folder.deleted",
        actor=actor,
        obj=folder,
        request=request,
        details={
            "name": folder.name,
            "records": records.count(),
            "configurations": PamConfiguration.objects.filter(folder=folder).count(),
        },
    )
    records.delete()
    PamConfiguration.objects.filter(folder=folder).delete()
    folder.delete()


def preference_set_time_zone(*, user, time_zone: str) -> None:
    """The zone a person reads times in ("" for their browser's). Not audited: it changes
    only how their own pages show times."""
    Preference.objects.update_or_create(user=user, defaults={"time_zone": time_zone})
