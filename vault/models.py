"""Shared folders, their members, and the PAM records kept in them.

Every secret column holds ciphertext from vault/crypto.py, bound to its row's uid and field name.
Rows are addressed by a random ``uid`` in URLs and the CLI, never by their sequential id.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from vault import crypto

USE_INSTANCE_ROLE = "USE_INSTANCE_ROLE"
# The longest notes a PAM User keeps (the forms and imports refuse longer ones).
NOTES_MAX_LENGTH = 100_000


def new_uid() -> str:
    # 16 random bytes -> 22 URL-safe characters; never starting with "-" or "_", which
    # command lines and other tools would read as an option.
    while True:
        uid = secrets.token_urlsafe(16)
        if uid[0] not in "-_":
            return uid


class UidModel(models.Model):
    uid = models.CharField(max_length=32, unique=True, default=new_uid, editable=False)

    class Meta:
        abstract = True


class SecretsMixin:
    """Read and write ``<name>_enc`` columns through the cipher, bound to this row.

    A secret this instance sealed itself is read back without opening it again, as long as
    the column still holds that ciphertext for this row: a gateway seals each rotation's new
    password at the claim and read it back twice more (for the AWS call and for the attempt),
    3 % of its CPU (issue 10). The plaintext was in this process's memory already; it is never
    pickled or copied with the instance's state."""

    _SEALED = "_sealed_by_this_instance"

    def _aad(self, field: str) -> bytes:
        return crypto.associated_data(self._meta.label_lower, self.uid, field)

    def get_secret(self, field: str) -> str:
        blob = getattr(self, f"{field}_enc")
        if not blob:
            return ""
        aad = self._aad(field)
        sealed = self.__dict__.get(self._SEALED, {}).get(field)
        if sealed is not None and sealed[:2] == (blob, aad):
            return sealed[2]
        return crypto.decrypt(blob, aad=aad)

    def set_secret(self, field: str, value: str) -> None:
        aad = self._aad(field)
        blob = crypto.encrypt(value, aad=aad) if value else ""
        setattr(self, f"{field}_enc", blob)
        self.__dict__.setdefault(self._SEALED, {})[field] = (blob, aad, value)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop(self._SEALED, None)
        return state

    def has_secret(self, field: str) -> bool:
        return bool(getattr(self, f"{field}_enc"))

    def secret_fields(self) -> list[str]:
        return [f.name[: -len("_enc")] for f in self._meta.fields if f.name.endswith("_enc")]


class SharedFolder(UidModel):
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        # The admin console's names, as the rest of the vault (and Keeper) writes them.
        verbose_name = "Shared Folder"
        verbose_name_plural = "Shared Folders"
        # Enforcement policies (vault/access.py `policy_allows`), granted through Groups in the
        # admin console; required only when VAULT_ENFORCE_POLICIES is on.
        permissions = [
            ("configure_rotation", "Policy: may set up password rotation"),
            ("rotate", "Policy: may rotate on demand"),
            ("manage_gateways", "Policy: may manage applications and gateways"),
            ("discover", "Policy: may discover IAM users"),
            ("reveal", "Policy: may reveal passwords"),
        ]

    def __str__(self) -> str:
        return self.name


class FolderMember(models.Model):
    folder = models.ForeignKey(SharedFolder, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    can_edit = models.BooleanField(default=False)
    can_share = models.BooleanField(default=False)
    manage_records = models.BooleanField(default=False)
    manage_users = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["folder", "user"], name="one_membership_per_user")
        ]
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.folder}"

    PERMISSIONS = ("can_edit", "can_share", "manage_records", "manage_users")

    def permission_names(self) -> list[str]:
        return [p for p in self.PERMISSIONS if getattr(self, p)]


class Application(UidModel):
    """A Secrets-Manager client identity: folders are shared to it and it owns gateways.

    Only superusers create applications and name their administrators; only an administrator
    (who also has `can_share` on a folder) shares a folder to it.
    """

    name = models.CharField(max_length=200, unique=True)
    folders = models.ManyToManyField(
        SharedFolder, through="ApplicationFolder", related_name="applications"
    )
    administrators = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="administered_applications",
        help_text="People who may share folders to this application and use its gateways.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApplicationFolder(models.Model):
    application = models.ForeignKey(Application, on_delete=models.CASCADE)
    folder = models.ForeignKey(SharedFolder, on_delete=models.CASCADE)
    editable = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "folder"], name="one_share_per_app")
        ]
        verbose_name = "folder shared to an application"
        verbose_name_plural = "folders shared to applications"

    def __str__(self) -> str:
        return f"{self.folder} shared to {self.application}"


class Gateway(UidModel):
    """A named pool of django-q2 workers; its name is the django-q2 cluster that serves it."""

    name = models.SlugField(max_length=100, unique=True)
    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.SET_NULL, related_name="gateways"
    )
    allow_instance_role = models.BooleanField(
        "Allow the host's own credentials",
        default=False,
        help_text="Configurations on this gateway may use USE_INSTANCE_ROLE (the gateway host's "
        "instance role), each bounded by a target scope. Only superusers change this.",
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # The vault version the gateway's code reported with its last heartbeat (vault.__version__);
    # blank until a gateway of a version that reports it has run.
    version = models.CharField(max_length=40, blank=True, default="")
    # What the audit trail last said about this gateway, so online/offline is written once
    # per change rather than once per heartbeat.
    reported_online = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_online(self) -> bool:
        if self.last_seen_at is None:
            return False
        limit = timedelta(seconds=settings.GATEWAY_OFFLINE_SECONDS)
        return timezone.now() - self.last_seen_at <= limit


class PamConfiguration(SecretsMixin, UidModel):
    ENVIRONMENTS = [("aws", "AWS")]

    folder = models.ForeignKey(
        SharedFolder, on_delete=models.CASCADE, related_name="configurations"
    )
    title = models.CharField(max_length=200)
    environment = models.CharField(max_length=20, choices=ENVIRONMENTS, default="aws")
    gateway = models.ForeignKey(Gateway, on_delete=models.PROTECT, related_name="configurations")
    aws_id = models.CharField("AWS ID", max_length=200, blank=True)
    access_key_id = models.CharField(max_length=128, default=USE_INSTANCE_ROLE)
    access_secret_key_enc = models.TextField(blank=True, default="")
    region_names = models.JSONField(default=list, blank=True)
    endpoint_url = models.CharField(max_length=500, blank=True)
    default_rotation_schedule = models.JSONField(default=dict, blank=True)
    # Target scope: the IAM users rotations through this configuration may touch. Both empty
    # means any user of the account; USE_INSTANCE_ROLE requires at least one.
    scope_path_prefix = models.CharField("IAM path prefix", max_length=512, blank=True)
    scope_user_pattern = models.CharField("User-name pattern", max_length=512, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        verbose_name = "PAM Configuration"
        verbose_name_plural = "PAM Configurations"
        constraints = [
            models.UniqueConstraint(fields=["folder", "title"], name="config_title_per_folder")
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def uses_instance_role(self) -> bool:
        return self.access_key_id == USE_INSTANCE_ROLE

    @property
    def region(self) -> str:
        return self.region_names[0] if self.region_names else "us-east-1"

    @property
    def has_scope(self) -> bool:
        return bool(self.scope_path_prefix or self.scope_user_pattern)


class PamUser(SecretsMixin, UidModel):
    folder = models.ForeignKey(SharedFolder, on_delete=models.CASCADE, related_name="pam_users")
    title = models.CharField(max_length=200)
    login = models.CharField(max_length=64)
    password_enc = models.TextField(blank=True, default="")
    # The IAM user's access key pair, for the "IAM User access key" rotation method (issue 14):
    # the id is not secret (AWS shows it in every listing); the secret is encrypted.
    access_key_id = models.CharField(max_length=128, blank=True, default="")
    access_secret_key_enc = models.TextField(blank=True, default="")
    distinguished_name = models.CharField(max_length=2048)
    # Keeper's notes on a PAM User: ordinary text shown on the record page, stored in the
    # clear like the title (docs/security.md); a secret belongs in the password.
    notes = models.TextField(blank=True, default="", max_length=NOTES_MAX_LENGTH)
    # Keeper's "managed" flag: a record the vault does not manage is never rotated, not by
    # schedule, not on demand, and a rotation queued before it became unmanaged is not run.
    managed = models.BooleanField(
        "Managed by the vault",
        default=True,
        help_text="Rotate this record. When off, the vault keeps its password but never "
        "rotates it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        verbose_name = "PAM User"
        verbose_name_plural = "PAM Users"
        constraints = [
            models.UniqueConstraint(fields=["folder", "title"], name="user_title_per_folder")
        ]
        indexes = [models.Index(fields=["folder", "title"]), models.Index(fields=["login"])]

    def __str__(self) -> str:
        return self.title

    @property
    def account_id(self) -> str:
        parts = self.distinguished_name.split(":")
        return parts[4] if len(parts) > 4 else ""


class PasswordVersion(SecretsMixin, UidModel):
    SOURCES = [
        ("manual", "Entered by a person"),
        ("import", "Imported"),
        ("rotation", "Rotation"),
        ("resolution", "Resolved a possibly-live password"),
    ]

    PASSWORD, ACCESS_KEY = "password", "access_key"
    KINDS = [(PASSWORD, "Console password"), (ACCESS_KEY, "Access key")]

    pam_user = models.ForeignKey(PamUser, on_delete=models.CASCADE, related_name="versions")
    # A console password, or an access key's secret (whose id is access_key_id).
    kind = models.CharField(max_length=20, choices=KINDS, default=PASSWORD)
    access_key_id = models.CharField(max_length=128, blank=True, default="")
    password_enc = models.TextField()
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    source = models.CharField(max_length=20, choices=SOURCES)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        # A record's newest secrets of one kind (the secrets API's AWSCURRENT and AWSPREVIOUS,
        # the record page's current marks), whatever the length of its history.
        indexes = [
            models.Index(
                fields=["pam_user", "kind", "-created_at", "-id"], name="version_kind_latest_idx"
            )
        ]
        verbose_name = "password version"
        verbose_name_plural = "password history"

    def __str__(self) -> str:
        return f"Password of {self.pam_user} set {self.created_at:%Y-%m-%d %H:%M} ({self.source})"


class AuditEvent(models.Model):
    ACTORS = [("user", "User"), ("cli", "CLI"), ("system", "System")]

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_kind = models.CharField(max_length=10, choices=ACTORS, default="user")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_uid = models.CharField(max_length=32, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    folder = models.ForeignKey(SharedFolder, null=True, blank=True, on_delete=models.SET_NULL)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"


class Preference(models.Model):
    """A person's own choices for the pages: the time zone they read times in (blank: their
    browser's, see vault/timezones.py)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vault_preference"
    )
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"Preferences of {self.user}"
