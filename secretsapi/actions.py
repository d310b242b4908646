"""The Secrets Manager actions of the secrets API, over the records an application may read.

A credential's application sees the PAM User records in the folders shared to it
(vault.models.ApplicationFolder, editable or not); every other record answers
ResourceNotFoundException, word for word as a record that does not exist.

Secret ids (`SecretId`): a record's uid, its title, or the ARN `secret_arn` builds,
``arn:aws:secretsmanager:<region>:<account>:secret:<uid>``. A title shared by several visible
records (titles are unique per folder only) is refused with InvalidParameterException naming
the uids to use instead; a uid wins over a title that happens to be equal to it.

A record's secret is its console password, or its access key pair when it has an access key id
(both: the one its rotation method rotates). Version ids are the password history's
(vault.models.PasswordVersion) row uids, written as UUIDs: boto3 refuses a VersionId shorter than
32 characters. AWSCURRENT is the record's own secret, under the id of the newest history entry
of its kind when that entry holds the same secret; a secret the history lacks (written without a
history entry, e.g. by an import that restores the history itself) gets an id derived from its
ciphertext, so it is stable until the secret changes and then changes, which is what caches
watch. AWSPREVIOUS is the history entry before AWSCURRENT; AWSPENDING is the pending secret of
the record's rotation in progress, under the rotation's uid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.core import signing
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from rotation.models import Rotation
from secretsapi.authentication import Caller
from secretsapi.errors import (
    INVALID_NEXT_TOKEN,
    INVALID_PARAMETER,
    NOT_FOUND,
    ApiError,
)
from vault import access
from vault.crypto import CryptoError
from vault.models import PamUser, PasswordVersion
from vault.prepared import PreparedQuery

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
# ARNs name the record's AWS account (from its IAM user ARN) or this placeholder.
PLACEHOLDER_ACCOUNT = "000000000000"
ACCOUNT_RE = re.compile(r"\d{12}")
# AWS's Description is at most 2048 characters; the record's notes are its description.
DESCRIPTION_MAX = 2048
LIST_MAX_RESULTS = 100
BATCH_MAX_RESULTS = 20
BATCH_MAX_IDS = 20
TOKEN_SALT = "secretsapi.next-token"
NOT_FOUND_MESSAGE = "Secrets Manager can't find the specified secret."


@dataclass
class Outcome:
    """An action's answer and what its audit events say: one event about `record` with
    `details`, or, when `per_record` is given, one event per (record, details) in it (a batch
    read: each record's read lands in its own folder's trail)."""

    body: dict
    audit_action: str
    record: PamUser | None = None
    details: dict = field(default_factory=dict)
    per_record: list[tuple[PamUser, dict]] = field(default_factory=list)

    def audit_events(self) -> list[tuple[PamUser | None, dict]]:
        return list(self.per_record) or [(self.record, self.details)]


# --- secret ids ---------------------------------------------------------------------------------


def secret_arn(record: PamUser, region: str) -> str:
    """The ARN of a record's secret (the one place that knows its shape); `uid_from_arn`
    reads it back."""
    account = record.account_id if ACCOUNT_RE.fullmatch(record.account_id) else PLACEHOLDER_ACCOUNT
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{record.uid}"


def uid_from_arn(secret_id: str) -> str | None:
    """The record uid of an ARN as `secret_arn` writes it (any partition, region and account),
    or None when `secret_id` is not one."""
    parts = secret_id.split(":", 6)
    if len(parts) == 7 and parts[0] == "arn" and parts[2] == "secretsmanager":
        if parts[5] == "secret" and parts[6]:
            return parts[6]
    return None


def version_id(uid: str) -> str:
    """A history row's (or rotation's) uid as a VersionId: its 16 random bytes as a UUID."""
    try:
        raw = base64.urlsafe_b64decode(uid + "=" * (-len(uid) % 4))
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) == 16 and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == uid:
        return str(uuid.UUID(bytes=raw))
    return "uid-" + uid.encode().hex()  # not a uid new_uid() makes; kept reversible


def uid_from_version_id(value: str) -> str | None:
    try:
        return base64.urlsafe_b64encode(uuid.UUID(value).bytes).rstrip(b"=").decode()
    except ValueError:
        pass
    if value.startswith("uid-"):
        try:
            uid = bytes.fromhex(value[4:]).decode()
        except ValueError:
            return None
        return uid if "\x00" not in uid else None  # PostgreSQL refuses NUL in text
    return None


def _unversioned_id(record: PamUser, kind: str) -> str:
    # Stable while the stored ciphertext is unchanged; a new secret (new ciphertext) changes it.
    blob = (
        record.access_secret_key_enc if kind == PasswordVersion.ACCESS_KEY else record.password_enc
    )
    digest = hashlib.sha256(f"{record.uid}:{kind}:{blob}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16]))


# What vault.models.new_uid makes: 22 URL-safe characters.
UID_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")

# --- what a credential sees ---------------------------------------------------------------------


def _shared_records(caller: Caller) -> QuerySet[PamUser]:
    """The records the caller's application may read (vault.access's rule)."""
    return access.records_shared_to_application(caller.credential.application_id).select_related(
        "folder", "rotation_settings"
    )


def is_text(value: object, most: int = 2048) -> bool:
    """Whether `value` is a string the database can take: non-empty, at most `most`
    characters, no NUL (PostgreSQL refuses it) and no lone surrogate (JSON's "\\ud800" is
    one; UTF-8 cannot encode it)."""
    if not isinstance(value, str) or not value or len(value) > most or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_param(params: dict, name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise ApiError(INVALID_PARAMETER, f"You must specify {name}.")
        return None
    if not is_text(value):
        raise ApiError(INVALID_PARAMETER, f"{name} must be a non-empty string (at most 2048).")
    return value


def _uid_named(secret_id: str) -> str:
    """The uid `secret_id` names: an ARN's, or the id itself (a uid, or else a title)."""
    return uid_from_arn(secret_id) or secret_id


def _lookup(caller: Caller, secret_ids: list[str]) -> Q:
    """The condition that finds every record `secret_ids` may name. Titles are matched with
    the folder in the same branch, so that each branch of the OR has its index (uid;
    folder and title): a bare `title = ?` would read every record."""
    uids = [_uid_named(sid) for sid in secret_ids]
    titles = [sid for sid in secret_ids if uid_from_arn(sid) is None]
    condition = Q(uid__in=uids)
    if titles:
        shared = access.folders_shared_to_application(caller.credential.application_id)
        condition |= Q(folder_id__in=shared, title__in=titles)
    return condition


def _matching(secret_id: str, rows: list[PamUser]) -> list[PamUser]:
    if uid_from_arn(secret_id) is not None:
        return [r for r in rows if r.uid == _uid_named(secret_id)]
    return [r for r in rows if secret_id in (r.uid, r.title)]


def _pick(secret_id: str, uid: str | None, rows: list[PamUser]) -> PamUser:
    by_uid = [r for r in rows if r.uid == uid]
    if by_uid:
        return by_uid[0]
    if not rows:
        raise ApiError(NOT_FOUND, NOT_FOUND_MESSAGE)
    if len(rows) > 1:
        uids = ", ".join(sorted(r.uid for r in rows))
        raise ApiError(
            INVALID_PARAMETER,
            f"{len(rows)} secrets are named '{secret_id}'; use the uid or ARN of one: {uids}.",
        )
    return rows[0]


def resolve(caller: Caller, secret_id: str) -> PamUser:
    """The visible record `secret_id` names (ResourceNotFoundException if none). A uid (or
    our ARN), the path every SDK's GetSecretValue takes, is read by its unique index with a
    query compiled once (vault.access.record_shared_to_application); a title needs the query
    that also matches titles."""
    uid = _uid_named(secret_id)
    if UID_SHAPE.fullmatch(uid):
        # The rotation settings are read later only for a record holding both kinds of secret
        # (secret_kind) or for DescribeSecret: most reads never need them.
        found = access.record_shared_to_application(caller.credential.application_id, uid)
        if found is not None:
            return found
        if uid_from_arn(secret_id) is not None:
            raise ApiError(NOT_FOUND, NOT_FOUND_MESSAGE)
    rows = _shared_records(caller).filter(_lookup(caller, [secret_id])).order_by()[:50]
    return _pick(secret_id, uid, list(rows))


def resolve_many(caller: Caller, secret_ids: list[str]) -> dict[str, PamUser | ApiError]:
    """resolve() for many ids in one query."""
    rows = list(_shared_records(caller).filter(_lookup(caller, secret_ids)).order_by())
    found: dict[str, PamUser | ApiError] = {}
    for sid in secret_ids:
        try:
            found[sid] = _pick(sid, _uid_named(sid), _matching(sid, rows))
        except ApiError as exc:
            found[sid] = exc
    return found


# --- versions -----------------------------------------------------------------------------------


def secret_kind(record: PamUser) -> str:
    """PasswordVersion.ACCESS_KEY for an access-key record, else PASSWORD. A record with both
    serves the one its rotation method rotates (the password without rotation settings)."""
    if not record.access_key_id:
        return PasswordVersion.PASSWORD
    if not record.has_secret("password"):
        return PasswordVersion.ACCESS_KEY
    try:
        method = record.rotation_settings.method
    except ObjectDoesNotExist:
        return PasswordVersion.PASSWORD
    return PasswordVersion.ACCESS_KEY if method == "iam_access_key" else PasswordVersion.PASSWORD


@dataclass
class Version:
    version_id: str
    created: datetime
    key_id: str  # access keys: the key id; passwords: ""
    read: Callable[[], str]  # decrypts the secret (only when it is returned)
    stages: list[str] = field(default_factory=list)


@dataclass
class Versions:
    """A record's versions by stage, for its secret kind."""

    kind: str
    current: Version | None = None
    previous: Version | None = None
    pending: Version | None = None

    def staged(self) -> list[Version]:
        return [v for v in (self.current, self.previous, self.pending) if v is not None]

    def ids_to_stages(self) -> dict[str, list[str]]:
        return {v.version_id: v.stages for v in self.staged()}


def _history_version(row: PasswordVersion) -> Version:
    return Version(
        version_id(row.uid), row.created_at, row.access_key_id, lambda: row.get_secret("password")
    )


def _record_secret(record: PamUser, kind: str) -> tuple[str, str]:
    if kind == PasswordVersion.ACCESS_KEY:
        return record.access_key_id, record.get_secret("access_secret_key")
    return "", record.get_secret("password")


def _pending_version(rotation: Rotation | None, kind: str) -> Version | None:
    if rotation is None or not rotation.has_secret("pending_password"):
        return None
    # A rotation's pending secret is of the kind it rotates: an access key has its key id.
    if bool(rotation.pending_access_key_id) != (kind == PasswordVersion.ACCESS_KEY):
        return None
    return Version(
        version_id(rotation.uid),
        rotation.started_at or rotation.created_at,
        rotation.pending_access_key_id,
        lambda: rotation.get_secret("pending_password"),
        [PENDING],
    )


def _newest_two(records: list[PamUser]) -> dict[tuple[int, str], list[PasswordVersion]]:
    """The two newest history entries of each kind of each record, in one query."""
    newest = Window(
        RowNumber(),
        partition_by=[F("pam_user_id"), F("kind")],
        order_by=[F("created_at").desc(), F("id").desc()],
    )
    rows = (
        PasswordVersion.objects.filter(pam_user_id__in=[r.pk for r in records])
        .annotate(position=newest)
        .filter(position__lte=2)
        .order_by("pam_user_id", "kind", "position")
    )
    history: dict[tuple[int, str], list[PasswordVersion]] = {}
    for row in rows:
        history.setdefault((row.pam_user_id, row.kind), []).append(row)
    return history


# One record's two newest history entries of one kind: every GetSecretValue reads them, so
# the query is compiled once (vault/prepared.py).
_NEWEST_TWO_OF_KIND = PreparedQuery(
    lambda pam_user_id, kind: PasswordVersion.objects.filter(
        pam_user_id=pam_user_id, kind=kind
    ).order_by("-created_at", "-id")[:2],
    pam_user_id=int,
    kind=str,
)


def versions_for(records: list[PamUser], *, pending: bool = True) -> dict[int, Versions]:
    """Each record's staged versions: one query for the two newest history entries of every
    record, one for the rotations in progress (unless `pending` is False)."""
    if not records:
        return {}
    if len(records) == 1:
        # One record: its two newest entries of its kind, without numbering its whole history.
        record = records[0]
        kind = secret_kind(record)
        newest = _NEWEST_TWO_OF_KIND.run(pam_user_id=record.pk, kind=kind)
        history = {(record.pk, kind): newest}
    else:
        history = _newest_two(records)
    rotations: dict[int, Rotation] = {}
    if pending:
        active = Rotation.objects.filter(
            pam_user_id__in=[r.pk for r in records], status__in=Rotation.ACTIVE
        )
        rotations = {rotation.pam_user_id: rotation for rotation in active}
    result = {}
    for record in records:
        kind = secret_kind(record)
        entries = history.get((record.pk, kind), [])
        versions = Versions(kind=kind, pending=_pending_version(rotations.get(record.pk), kind))
        key_id, secret = _record_secret(record, kind)
        if secret:
            newest_row = entries[0] if entries else None
            if (
                newest_row is not None
                and newest_row.access_key_id == key_id
                and newest_row.get_secret("password") == secret
            ):
                versions.current = _history_version(newest_row)
                older = entries[1:]
            else:
                versions.current = Version(
                    _unversioned_id(record, kind), record.updated_at, key_id, lambda s=secret: s
                )
                older = entries
            versions.current.stages = [CURRENT]
            if older:
                versions.previous = _history_version(older[0])
                versions.previous.stages = [PREVIOUS]
        result[record.pk] = versions
    return result


def _find_version(
    record: PamUser, versions: Versions, wanted_id: str | None, stage: str | None
) -> Version:
    if wanted_id is not None:
        version = next((v for v in versions.staged() if v.version_id == wanted_id), None)
        if version is None:
            uid = uid_from_version_id(wanted_id)
            row = record.versions.filter(uid=uid, kind=versions.kind).first() if uid else None
            if row is None:
                raise ApiError(
                    NOT_FOUND,
                    f"Secrets Manager can't find the specified secret value for VersionId: "
                    f"{wanted_id}",
                )
            version = _history_version(row)
        if stage is not None and stage not in version.stages:
            raise ApiError(
                NOT_FOUND,
                f"Secrets Manager can't find the specified secret value for VersionId: "
                f"{wanted_id} and staging label: {stage}",
            )
        return version
    stage = stage or CURRENT
    version = next((v for v in versions.staged() if stage in v.stages), None)
    if version is None:
        raise ApiError(
            NOT_FOUND,
            f"Secrets Manager can't find the specified secret value for staging label: {stage}",
        )
    return version


def secret_string(record: PamUser, kind: str, version: Version) -> str:
    """The SecretString of `version`: AWS's shape for its own rotated IAM user secrets."""
    try:
        secret = version.read()
    except CryptoError:
        raise ApiError("DecryptionFailure", "The secret could not be decrypted.") from None
    if kind == PasswordVersion.ACCESS_KEY:
        body = {
            "AccessKeyId": version.key_id,
            "SecretAccessKey": secret,
            "username": record.login,
            "arn": record.distinguished_name,
        }
    else:
        body = {"username": record.login, "password": secret, "arn": record.distinguished_name}
    return json.dumps(body)


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _value(caller: Caller, record: PamUser, versions: Versions, version: Version) -> dict:
    return {
        "ARN": secret_arn(record, caller.region),
        "Name": record.title,
        "VersionId": version.version_id,
        "SecretString": secret_string(record, versions.kind, version),
        "VersionStages": list(version.stages),
        "CreatedDate": _epoch(version.created),
    }


def _audit_details(caller: Caller, **more) -> dict:
    return {
        "application": caller.credential.application_name,
        "access_key_id": caller.credential.access_key_id,
        **more,
    }


# --- the actions --------------------------------------------------------------------------------


def get_secret_value(caller: Caller, params: dict) -> Outcome:
    secret_id = _text_param(params, "SecretId", required=True)
    wanted_id = _text_param(params, "VersionId")
    stage = _text_param(params, "VersionStage")
    record = resolve(caller, secret_id)
    # The rotation in progress matters only for AWSPENDING or a version id that may be its.
    need_pending = stage == PENDING or wanted_id is not None
    versions = versions_for([record], pending=need_pending)[record.pk]
    version = _find_version(record, versions, wanted_id, stage)
    body = _value(caller, record, versions, version)
    details = _audit_details(
        caller, operation="GetSecretValue", version_id=version.version_id, stages=version.stages
    )
    return Outcome(body, "secretsapi.read", record=record, details=details)


def _metadata(caller: Caller, record: PamUser, versions: Versions) -> dict:
    try:
        rotation_settings = record.rotation_settings
    except ObjectDoesNotExist:
        rotation_settings = None
    enabled = bool(rotation_settings and rotation_settings.enabled)
    body = {
        "ARN": secret_arn(record, caller.region),
        "Name": record.title,
        "Description": record.notes[:DESCRIPTION_MAX],
        "RotationEnabled": enabled,
        "LastRotatedDate": _epoch(rotation_settings and rotation_settings.last_rotated_at),
        "NextRotationDate": _epoch(rotation_settings.next_run_at) if enabled else None,
        "LastChangedDate": _epoch(record.updated_at),
        "CreatedDate": _epoch(record.created_at),
    }
    return {k: v for k, v in body.items() if v is not None}


def describe_secret(caller: Caller, params: dict) -> Outcome:
    record = resolve(caller, _text_param(params, "SecretId", required=True))
    versions = versions_for([record])[record.pk]
    body = {**_metadata(caller, record, versions), "VersionIdsToStages": versions.ids_to_stages()}
    details = _audit_details(caller, operation="DescribeSecret")
    return Outcome(body, "secretsapi.described", record=record, details=details)


# --- filters and pages --------------------------------------------------------------------------

FILTER_FIELDS = {"name": ("title",), "description": ("notes",), "all": ("title", "notes")}
# Keys of AWS's filter we have nothing for: they match no record (negated, every record).
EMPTY_FILTER_KEYS = {"tag-key", "tag-value", "primary-region", "owning-service"}
SORT_FIELDS = {
    "name": "title",
    "created-date": "created_at",
    "last-changed-date": "updated_at",
    "last-accessed-date": "created_at",  # not kept per record: the created date stands in
}


def filter_condition(filters: object) -> Q:
    """AWS's ListSecrets filters: [{"Key": k, "Values": [...]}]. A value is a prefix,
    case-insensitive ("all": anywhere in the name or description); a leading "!" negates it.
    Values of one filter are alternatives; filters all apply."""
    if filters is None:
        return Q()
    if not isinstance(filters, list) or len(filters) > 10:
        raise ApiError(INVALID_PARAMETER, "Filters must be a list of at most 10 filters.")
    condition = Q()
    for item in filters:
        if not isinstance(item, dict):
            raise ApiError(INVALID_PARAMETER, "Each filter must be an object with Key and Values.")
        key, values = item.get("Key"), item.get("Values")
        # A string first: a list or object is unhashable, and `in` a set would raise.
        if not isinstance(key, str) or (key not in FILTER_FIELDS and key not in EMPTY_FILTER_KEYS):
            known = ", ".join(sorted([*FILTER_FIELDS, *EMPTY_FILTER_KEYS]))
            shown = key[:100] if isinstance(key, str) else json.dumps(key)[:100]
            raise ApiError(INVALID_PARAMETER, f"Unknown filter key {shown!r}; use one of {known}.")
        if (
            not isinstance(values, list)
            or not 1 <= len(values) <= 10
            or not all(is_text(v) for v in values)
        ):
            raise ApiError(
                INVALID_PARAMETER, f"Filter '{key}' needs 1 to 10 non-empty string Values."
            )
        alternatives = Q(pk__in=[])
        for value in values:
            negated, text = value.startswith("!"), value.removeprefix("!")
            if key in EMPTY_FILTER_KEYS:
                match = Q(pk__in=[])
            else:
                lookup = "icontains" if key == "all" else "istartswith"
                match = Q(pk__in=[])
                for column in FILTER_FIELDS[key]:
                    match |= Q(**{f"{column}__{lookup}": text})
            alternatives |= ~match if negated else match
        condition &= alternatives
    return condition


def _ordering(params: dict) -> list[str]:
    sort_by = params.get("SortBy", "created-date")
    order = params.get("SortOrder", "desc")
    # Strings first: a list or object is unhashable, and `in` a dict would raise.
    if (
        not isinstance(sort_by, str)
        or not isinstance(order, str)
        or sort_by not in SORT_FIELDS
        or order not in ("asc", "desc")
    ):
        raise ApiError(
            INVALID_PARAMETER,
            "SortBy must be one of " + ", ".join(SORT_FIELDS) + "; SortOrder asc or desc.",
        )
    sign = "-" if order == "desc" else ""
    return [f"{sign}{SORT_FIELDS[sort_by]}", f"{sign}id"]


def _max_results(params: dict, most: int) -> int:
    value = params.get("MaxResults", most)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ApiError(INVALID_PARAMETER, f"MaxResults must be an integer from 1 to {most}.")
    return value


def _query_fingerprint(caller: Caller, operation: str, params: dict) -> str:
    # A token is good only for the query that made it, by the credential that made it.
    shape = {k: params.get(k) for k in ("Filters", "SortBy", "SortOrder")}
    text = json.dumps([operation, caller.credential.pk, shape], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _offset(caller: Caller, operation: str, params: dict) -> int:
    token = params.get("NextToken")
    if token is None:
        return 0
    try:
        data = signing.loads(token, salt=TOKEN_SALT) if isinstance(token, str) else None
    except signing.BadSignature:
        data = None
    if (
        not isinstance(data, dict)
        or data.get("q") != _query_fingerprint(caller, operation, params)
        or not isinstance(data.get("o"), int)
        or data["o"] < 0
    ):
        raise ApiError(INVALID_NEXT_TOKEN, "The NextToken is not valid for this request.")
    return data["o"]


def _page(
    caller: Caller, operation: str, params: dict, most: int
) -> tuple[list[PamUser], str | None]:
    """One page of the visible records matching the filters, and the token of the next."""
    size = _max_results(params, most)
    offset = _offset(caller, operation, params)
    query = _shared_records(caller).filter(filter_condition(params.get("Filters")))
    rows = list(query.order_by(*_ordering(params))[offset : offset + size + 1])
    token = None
    if len(rows) > size:
        rows = rows[:size]
        payload = {"o": offset + size, "q": _query_fingerprint(caller, operation, params)}
        token = signing.dumps(payload, salt=TOKEN_SALT, compress=True)
    return rows, token


def list_secrets(caller: Caller, params: dict) -> Outcome:
    records, token = _page(caller, "ListSecrets", params, LIST_MAX_RESULTS)
    versions = versions_for(records)
    secrets = [
        {
            **_metadata(caller, record, versions[record.pk]),
            "SecretVersionsToStages": versions[record.pk].ids_to_stages(),
        }
        for record in records
    ]
    body: dict = {"SecretList": secrets}
    if token:
        body["NextToken"] = token
    details = _audit_details(caller, operation="ListSecrets", count=len(secrets))
    return Outcome(body, "secretsapi.listed", details=details)


def batch_get_secret_value(caller: Caller, params: dict) -> Outcome:
    ids, filters = params.get("SecretIdList"), params.get("Filters")
    if (ids is None) == (filters is None):
        raise ApiError(INVALID_PARAMETER, "Specify either SecretIdList or Filters (not both).")
    errors: list[dict] = []
    token = None
    if ids is not None:
        if "MaxResults" in params or "NextToken" in params:
            raise ApiError(
                INVALID_PARAMETER, "MaxResults and NextToken go with Filters, not SecretIdList."
            )
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= BATCH_MAX_IDS
            or not all(is_text(i) for i in ids)
        ):
            raise ApiError(
                INVALID_PARAMETER, f"SecretIdList must hold 1 to {BATCH_MAX_IDS} secret ids."
            )
        records: list[PamUser] = []
        for sid, found in resolve_many(caller, list(dict.fromkeys(ids))).items():
            if isinstance(found, ApiError):
                errors.append({"SecretId": sid, "ErrorCode": found.code, "Message": found.message})
            elif found not in records:
                records.append(found)
    else:
        records, token = _page(caller, "BatchGetSecretValue", params, BATCH_MAX_RESULTS)
    versions = versions_for(records, pending=False)
    values: list[dict] = []
    read: list[tuple[PamUser, Version]] = []
    for record in records:
        try:
            version = _find_version(record, versions[record.pk], None, CURRENT)
            values.append(_value(caller, record, versions[record.pk], version))
            read.append((record, version))
        except ApiError as exc:
            errors.append({"SecretId": record.uid, "ErrorCode": exc.code, "Message": exc.message})
    body: dict = {"SecretValues": values, "Errors": errors}
    if token:
        body["NextToken"] = token
    # One event per record read (at most BATCH_MAX_RESULTS), about the record, so that each
    # read is in the trail of the record's folder; a batch that read nothing is one event.
    per_record = [
        (
            record,
            _audit_details(
                caller,
                operation="BatchGetSecretValue",
                version_id=version.version_id,
                stages=version.stages,
                errors=len(errors),
            ),
        )
        for record, version in read
    ]
    details = _audit_details(
        caller, operation="BatchGetSecretValue", records=[], errors=len(errors)
    )
    return Outcome(body, "secretsapi.read", details=details, per_record=per_record)


ACTIONS: dict[str, Callable[[Caller, dict], Outcome]] = {
    "GetSecretValue": get_secret_value,
    "BatchGetSecretValue": batch_get_secret_value,
    "DescribeSecret": describe_secret,
    "ListSecrets": list_secrets,
}
