"""Rotation settings per PAM User, and each attempt to rotate one (a Rotation).

The state machine lives in rotation/engine.py; this module only holds the data and the
database constraint that allows one active rotation per record.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from rotation.passwords import AWS_SYMBOLS
from vault.models import PamConfiguration, PamUser, SecretsMixin, SharedFolder, UidModel


class RotationSettings(models.Model):
    METHODS = [("iam_user", "IAM User"), ("iam_access_key", "IAM User access key")]

    pam_user = models.OneToOneField(
        PamUser, on_delete=models.CASCADE, related_name="rotation_settings"
    )
    method = models.CharField(max_length=20, choices=METHODS, default="iam_user")
    configuration = models.ForeignKey(
        PamConfiguration, on_delete=models.PROTECT, related_name="rotation_settings"
    )
    # Keeper-style schedule JSON, normalised by rotation/schedules.py; ignored when
    # use_configuration_schedule is on.
    schedule = models.JSONField(default=dict, blank=True)
    use_configuration_schedule = models.BooleanField(default=False)
    length = models.PositiveSmallIntegerField(default=32)
    min_upper = models.PositiveSmallIntegerField(default=5)
    min_lower = models.PositiveSmallIntegerField(default=5)
    min_digits = models.PositiveSmallIntegerField(default=5)
    min_symbols = models.PositiveSmallIntegerField(default=5)
    symbols = models.CharField(max_length=100, default=AWS_SYMBOLS, blank=True)
    # Access keys only: the replaced key stays active this long after a rotation (for the
    # applications still using it), then is deactivated, and deleted this long after that.
    key_deactivate_after_hours = models.PositiveIntegerField(default=24)
    key_delete_after_hours = models.PositiveIntegerField(default=168)
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_rotated_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "rotation settings"
        indexes = [
            models.Index(fields=["enabled", "next_run_at"], name="rotation_due_idx"),
            # The home page's "Due in the next 7 days", in the order shown (rotation/dashboard.py).
            models.Index(
                fields=["next_run_at", "id"],
                condition=models.Q(enabled=True),
                name="rotation_due_order_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Rotation settings of {self.pam_user}"

    @property
    def effective_schedule(self) -> dict:
        if self.use_configuration_schedule:
            return self.configuration.default_rotation_schedule or {"type": "ON_DEMAND"}
        return self.schedule or {"type": "ON_DEMAND"}

    @property
    def complexity_text(self) -> str:
        return (
            f"{self.length},{self.min_upper},{self.min_lower},{self.min_digits},"
            f"{self.min_symbols},{self.symbols}"
        )


def _still_needed(rotations) -> list:
    """Rotations that are running or queued, or hold a password that may be live in AWS."""
    return [
        r
        for r in rotations
        if r.status in ("queued", "running")
        or (r.pending_may_be_live and r.resolved_at is None and r.pending_password_enc)
    ]


def keep_possibly_live(collector, field, sub_objs, using) -> None:
    """CASCADE, unless a rotation is active or holds a possibly-live password."""
    needed = _still_needed(sub_objs)
    if needed:
        raise models.ProtectedError(
            "A rotation of this record is in progress or holds a password that may be live "
            "in AWS: wait for it, or resolve the possibly-live password, before deleting.",
            set(needed),
        )
    models.CASCADE(collector, field, sub_objs, using)


def keep_active_or_set_null(collector, field, sub_objs, using) -> None:
    """SET_NULL for finished rotations; refuse while a rotation using it is active."""
    active = [r for r in sub_objs if r.status in ("queued", "running")]
    if active:
        raise models.ProtectedError(
            "A rotation using this configuration is queued or running: wait for it to finish, "
            "or cancel a queued one on its record's page.",
            set(active),
        )
    models.SET_NULL(collector, field, sub_objs, using)


class Rotation(SecretsMixin, UidModel):
    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATUSES = [
        (QUEUED, "Queued"),
        (RUNNING, "Running"),
        (SUCCEEDED, "Succeeded"),
        (FAILED, "Failed"),
    ]
    ACTIVE = (QUEUED, RUNNING)
    ENDED = (SUCCEEDED, FAILED)
    TRIGGERS = [("on_demand", "On demand"), ("scheduled", "Scheduled"), ("cli", "CLI")]

    # Deleting a record (or its folder) must not destroy a password that may be live in AWS;
    # deleting a configuration keeps the rotation history, without the link.
    pam_user = models.ForeignKey(PamUser, on_delete=keep_possibly_live, related_name="rotations")
    configuration = models.ForeignKey(
        PamConfiguration,
        null=True,
        on_delete=keep_active_or_set_null,
        related_name="rotations",
    )
    gateway_name = models.CharField(max_length=100)
    trigger = models.CharField(max_length=20, choices=TRIGGERS)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(max_length=20, choices=STATUSES, default=QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Write-ahead secret: committed before AWS is called, promoted on success.
    pending_password_enc = models.TextField(blank=True, default="")
    # Access keys: the pending secret's key id (AWS made both; the secret is pending_password_enc).
    pending_access_key_id = models.CharField(max_length=128, blank=True, default="")
    # The durable step this rotation is in (a method's step name) and when it began: a step
    # that changes AWS before its answer can be committed (CreateAccessKey) finds its own
    # earlier effect by this, after a lost answer or a killed worker.
    step = models.CharField(max_length=40, blank=True, default="")
    step_started_at = models.DateTimeField(null=True, blank=True)
    # True once an attempt ended without proof that AWS kept the old password: from then on
    # the pending password is never thrown away.
    pending_may_be_live = models.BooleanField(default=False)
    # Set when a request of this rotation may have reached AWS without an answer (a read
    # timeout, a connection closed after sending, a 5xx): such a request may still be applied
    # until then, so no other rotation of the record may act before it (docs/architecture.md,
    # "Requests that went unanswered").
    unanswered_until = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resolved_rotations",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pam_user"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_rotation_per_record",
            )
        ]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="rotation_lease_idx"),
            # A record's rotations newest first; its latest one in one probe (the count
            # triggers read it on every change, and so does the record page).
            models.Index(fields=["pam_user", "-created_at", "-id"], name="rotation_history_idx"),
            # The home page: rotations finished after "now" (clock skew) within the chart's
            # current slot (rotation/dashboard.py), and possibly-live passwords newest first,
            # without reading every failed rotation.
            models.Index(fields=["finished_at"], name="rotation_finished_idx"),
            models.Index(
                fields=["status", "-created_at", "-id"],
                condition=models.Q(
                    status="failed", pending_may_be_live=True, resolved_at__isnull=True
                ),
                name="rotation_possibly_live_idx",
            ),
            # The claim skips records whose unanswered request may still arrive: a probe.
            models.Index(
                fields=["pam_user", "unanswered_until"],
                condition=models.Q(unanswered_until__isnull=False),
                name="rotation_unanswered_idx",
            ),
            # The home page: queued rotations waiting on an offline gateway, per gateway and
            # newest first (rotation/dashboard.py), without reading a queue that an online
            # gateway is working through. `status` leads so that SQLite picks it for a
            # parameterised `status = ?` without statistics.
            models.Index(
                fields=["status", "gateway_name", "-created_at", "-id"],
                condition=models.Q(status="queued"),
                name="rotation_waiting_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Rotation of {self.pam_user} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def holds_possibly_live_password(self) -> bool:
        return (
            self.status == self.FAILED
            and self.pending_may_be_live
            and self.resolved_at is None
            and self.has_secret("pending_password")
        )

    @property
    def holds_unanswered_password(self) -> bool:
        """Succeeded, but a request of it went unanswered: its password (kept as the pending
        one until retired) may be set again by that request while ``unanswered_until`` lasts,
        or differs from the record's since the record changed meanwhile."""
        return (
            self.status == self.SUCCEEDED
            and self.unanswered_until is not None
            and self.resolved_at is None
            and self.has_secret("pending_password")
        )

    @property
    def deletion_blocker(self) -> str | None:
        """Why this rotation stops its record (or configuration) from being deleted."""
        if self.status == self.QUEUED:
            return (
                f"a rotation is in progress (queued for the gateway “{self.gateway_name}”, not "
                "started): cancel it on its record's page (Cancel rotation), or start that "
                "gateway and wait for it to finish."
            )
        if self.is_active:
            return "a rotation is in progress: wait for it to finish."
        if self.holds_possibly_live_password:
            return (
                "it holds a password that may be live in AWS: resolve it on the record's "
                "page first."
            )
        return None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class RotationBatch(UidModel):
    """One "Rotate all" on a folder: the rotations it asked for, so progress can be shown.

    A many-to-many rather than a foreign key on Rotation: a record that is already rotating when
    "Rotate all" is clicked counts as in progress in this batch, and that rotation may belong to
    another batch (two editors clicking at once); one foreign key could only name one of them.
    """

    folder = models.ForeignKey(
        SharedFolder, on_delete=models.CASCADE, related_name="rotation_batches"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    rotations = models.ManyToManyField(Rotation, related_name="batches", blank=True)
    # Records that were not rotated, as [{"record": uid, "title": ..., "reason": ...}]: they have
    # no rotation settings, or disabled ones, or a configuration that cannot rotate them.
    skipped = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "rotation batches"

    def __str__(self) -> str:
        return f"Rotate all in {self.folder} ({self.created_at:%Y-%m-%d %H:%M})"


class ConnectionTest(UidModel):
    """One press of Test connection on a configuration: recorded by the web, run by the
    configuration's gateway (the web never talks to AWS), its outcome shown on the page.

    Nothing here is secret: the account id, the caller's ARN, the password policy in words, or
    the error a person can act on.
    """

    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATUSES = [
        (QUEUED, "Queued"),
        (RUNNING, "Running"),
        (SUCCEEDED, "Succeeded"),
        (FAILED, "Failed"),
    ]
    ACTIVE = (QUEUED, RUNNING)

    configuration = models.ForeignKey(
        PamConfiguration, on_delete=models.CASCADE, related_name="connection_tests"
    )
    # The gateway it was handed to, as rotations keep theirs: the configuration may name
    # another one by the time it runs.
    gateway_name = models.CharField(max_length=100)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(max_length=20, choices=STATUSES, default=QUEUED)
    message = models.TextField(blank=True)
    account_id = models.CharField(max_length=12, blank=True)
    arn = models.CharField(max_length=2048, blank=True)
    policy = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["configuration", "-created_at"], name="connection_test_latest_idx")
        ]

    def __str__(self) -> str:
        return f"Test connection of {self.configuration} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


# --- what the home page counts, kept by the database (rotation/counts.py) ---------------------
#
# Triggers on rotation_rotation, vault_pamuser and vault_sharedfolder write these tables in
# the same transaction as the change they follow, whoever makes it (the engine, bulk_create,
# QuerySet.update, the admin, a test). No Python code writes them; `manage.py rotation_counts`
# checks them against the rows they are derived from and rebuilds them.


class RecordRotationStatus(models.Model):
    """Each PAM User's latest rotation (by created_at, then id) and its status: "" when the
    record was never rotated. One row per record."""

    pam_user = models.OneToOneField(
        PamUser,
        primary_key=True,
        on_delete=models.DO_NOTHING,  # the triggers delete it with the record
        db_constraint=False,
        related_name="+",
    )
    folder = models.ForeignKey(
        SharedFolder,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    status = models.CharField(max_length=20, blank=True)
    rotation = models.ForeignKey(
        "Rotation",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    finished_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "rotation_record_status"
        default_permissions = ()
        indexes = [
            # "Last rotation failed", newest failure first.
            models.Index(fields=["status", "-finished_at", "pam_user"], name="record_status_idx")
        ]

    def __str__(self) -> str:
        return f"Latest rotation of record {self.pam_user_id}: {self.status or 'never'}"


class RotationStatusCount(models.Model):
    """How many records of a folder have each latest-rotation status ("" = never rotated)."""

    folder = models.ForeignKey(
        SharedFolder,
        on_delete=models.DO_NOTHING,  # the triggers delete it with the folder
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    status = models.CharField(max_length=20, blank=True)
    n = models.BigIntegerField(default=0)

    class Meta:
        db_table = "rotation_status_count"
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["folder", "status"], name="status_count_key")
        ]

    def __str__(self) -> str:
        return f"Folder {self.folder_id}, {self.status or 'never'}: {self.n}"


class RotationSlotCount(models.Model):
    """Finished rotations (succeeded or failed) of a folder's records per 15-minute slot of
    their finished_at (slot = Unix seconds // 900), for the home page's 30-day chart."""

    folder = models.ForeignKey(
        SharedFolder,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    slot = models.BigIntegerField()
    status = models.CharField(max_length=20)
    n = models.BigIntegerField(default=0)

    class Meta:
        db_table = "rotation_slot_count"
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["folder", "slot", "status"], name="slot_count_key")
        ]

    def __str__(self) -> str:
        return f"Folder {self.folder_id}, slot {self.slot}, {self.status}: {self.n}"


class RotationCountDelta(models.Model):
    """PostgreSQL only: changes to the two count tables above made by a transaction that has
    not committed yet. Its triggers write them here and add them to the counts at commit, in
    one sorted pass, so concurrent transactions never wait for each other's count rows in
    opposite orders (no deadlock); folder 0 marks the row whose deferred trigger does it.
    Empty outside open transactions; readers add what they see here, which is only their own
    transaction's."""

    txid = models.BigIntegerField(db_index=True)
    folder = models.ForeignKey(
        SharedFolder,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    status = models.CharField(max_length=20, blank=True)
    slot = models.BigIntegerField(null=True)  # None: a RotationStatusCount change
    n = models.BigIntegerField()

    class Meta:
        db_table = "rotation_count_delta"
        default_permissions = ()

    def __str__(self) -> str:
        return f"Transaction {self.txid}: folder {self.folder_id} {self.status} {self.n:+d}"


class KeyRetirement(models.Model):
    """An access key the vault replaced, on its way out of AWS (rotation/retirement.py).

    A rotation of the "IAM User access key" method leaves the previous key active for the
    record's grace period (applications may still use it), then deactivates it, then deletes it
    after a second period. Each of those is a durable step: a gateway pass does what is due and
    writes it here, so a restart resumes it and nothing is done twice.
    """

    pam_user = models.ForeignKey(PamUser, on_delete=models.CASCADE, related_name="key_retirements")
    configuration = models.ForeignKey(
        PamConfiguration, null=True, on_delete=models.SET_NULL, related_name="key_retirements"
    )
    rotation = models.ForeignKey(
        Rotation, null=True, on_delete=models.SET_NULL, related_name="key_retirements"
    )
    access_key_id = models.CharField(max_length=128)
    # The IAM user the key belongs to, as it was when it was replaced (the record's login
    # may change later; the key stays on that user).
    login = models.CharField(max_length=64, blank=True, default="")
    deactivate_at = models.DateTimeField()
    delete_at = models.DateTimeField()
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pam_user", "access_key_id"], name="one_retirement_per_key"
            )
        ]
        indexes = [
            models.Index(
                fields=["deactivate_at"],
                condition=models.Q(deleted_at__isnull=True),
                name="key_retirement_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"Retirement of {self.access_key_id} ({self.pam_user})"


class DiscoveryJob(UidModel):
    """One "Discover IAM users" run of a configuration, on its gateway (rotation/discovery.py).

    Resumable: each page of AWS's listing is saved with the marker of the next one, so a
    restarted gateway continues where the last page ended.
    """

    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATUSES = [
        (QUEUED, "Queued"),
        (RUNNING, "Running"),
        (SUCCEEDED, "Succeeded"),
        (FAILED, "Failed"),
    ]
    ACTIVE = (QUEUED, RUNNING)

    configuration = models.ForeignKey(
        PamConfiguration, on_delete=models.CASCADE, related_name="discovery_jobs"
    )
    gateway_name = models.CharField(max_length=100)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(max_length=20, choices=STATUSES, default=QUEUED)
    users_found = models.PositiveIntegerField(default=0)
    pages_done = models.PositiveIntegerField(default=0)
    aws_calls = models.PositiveIntegerField(default=0)
    # AWS's pagination marker for the next page of ListUsers ("" before the first page).
    next_marker = models.TextField(blank=True, default="")
    phase = models.CharField(max_length=40, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["configuration"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_discovery_per_configuration",
            )
        ]
        indexes = [
            models.Index(fields=["configuration", "-created_at"], name="discovery_latest_idx")
        ]

    def __str__(self) -> str:
        return f"Discovery {self.uid} of {self.configuration_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class DiscoveredUser(models.Model):
    """One IAM user a discovery found: what AWS says about it, and its record once imported."""

    job = models.ForeignKey(DiscoveryJob, on_delete=models.CASCADE, related_name="users")
    user_name = models.CharField(max_length=64)
    user_id = models.CharField(max_length=128, blank=True)
    arn = models.CharField(max_length=2048)
    path = models.CharField(max_length=512, default="/")
    created_at = models.DateTimeField(null=True, blank=True)
    # None until the credential report is read.
    console_access = models.BooleanField(null=True)
    password_last_used = models.DateTimeField(null=True, blank=True)
    # [{"status": "Active", "created": ISO, "last_used": ISO|None}], from the credential report.
    access_keys = models.JSONField(default=list, blank=True)
    oldest_key_created = models.DateTimeField(null=True, blank=True)
    record = models.ForeignKey(
        PamUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["user_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "user_name"], name="one_discovered_user_per_job")
        ]

    def __str__(self) -> str:
        return f"{self.user_name} ({self.arn})"
