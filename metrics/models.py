"""What /metrics reads that no other table holds: folded rotation totals, AWS call latency
buckets and error counts written by the gateways, and the last due-scan pass.

Every process reads these rows, so several web processes report the same numbers; the gateways,
on other hosts, write theirs here (docs/operations.md, "Metrics": why not prometheus-client's
multiprocess mode).
"""

from __future__ import annotations

from django.db import models


class RotationTotal(models.Model):
    """Finished rotations per method, trigger and outcome, up to MetricsMark "rotations"."""

    method = models.CharField(max_length=40)
    trigger = models.CharField(max_length=20)
    outcome = models.CharField(max_length=20)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["method", "trigger", "outcome"], name="metrics_one_rotation_total"
            )
        ]

    def __str__(self) -> str:
        return f"{self.method}/{self.trigger}/{self.outcome}: {self.n}"


class MetricsMark(models.Model):
    """A named point in time: "rotations" is the finished_at up to which RotationTotal counts.
    Its row is also the lock that keeps two scrapes from folding the same rotations."""

    name = models.CharField(max_length=40, primary_key=True)
    at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.at}"


class AwsCallBucket(models.Model):
    """AWS calls per action whose latency fell in one histogram bucket (not cumulative):
    ``bucket`` indexes metrics.store.LATENCY_BUCKETS, its length meaning +Inf."""

    action = models.CharField(max_length=80)
    bucket = models.PositiveSmallIntegerField()
    n = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["action", "bucket"], name="metrics_one_aws_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.action} bucket {self.bucket}: {self.n}"


class AwsCallError(models.Model):
    """AWS calls per action that ended with an error, by error code."""

    action = models.CharField(max_length=80)
    code = models.CharField(max_length=80)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["action", "code"], name="metrics_one_aws_error")
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.code}: {self.n}"


class SchedulerPass(models.Model):
    """The last due-scan pass, whichever gateway's tick ran it (each pass scans every record,
    so the latest one says how long a scan takes now): one row, pk 1."""

    finished_at = models.DateTimeField()
    seconds = models.FloatField()
    requested = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"due scan at {self.finished_at}: {self.seconds:.3f} s"
