"""The soak for access keys: the same faults, kills and restarts as tests/soak/engine.py, with
records rotated by the "IAM User access key" method, and its own check at the end:

- lost: a record for which the vault holds no working key (neither its current key nor the
  pending key of a failed rotation that may be live is an active key in AWS with that secret);
- orphans: a key in AWS that the vault does not hold (current, being retired, or pending),
  after the rotations ended and the gateways' retirement pass ran once no unanswered request
  could still arrive;
- three keys: a rotation that failed because the user would have needed a third key. AWS also
  refuses (LimitExceeded) a duplicate CreateAccessKey that arrives late, after the rotation went
  on without its answer; those are counted apart (limit_refused): refused is what keeps the
  user at two keys.

Keys are read from the emulator's own state (/moto-api/data.json), not through the vault.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field

from tests.soak.engine import PROCESS_ENV, Soak


@dataclass
class KeyReport:
    keys_created: int = 0
    orphans_deleted: int = 0
    keys_retired: int = 0
    working_current: int = 0
    working_pending: int = 0
    lost: list = field(default_factory=list)
    orphans: list = field(default_factory=list)
    three_keys: int = 0
    limit_refused: int = 0

    def line(self) -> str:
        return (
            f"keys: created={self.keys_created} orphans_deleted={self.orphans_deleted} "
            f"retired={self.keys_retired} working current={self.working_current} "
            f"pending={self.working_pending} lost={len(self.lost)} "
            f"orphans={len(self.orphans)} three_keys={self.three_keys} "
            f"limit_refused={self.limit_refused}"
        )


def aws_keys(endpoint: str, logins: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """user name -> {key id: (secret, status)}, as the emulator holds them: the keys from
    ListAccessKeys, their secrets from the emulator's state (whose listing also keeps every
    key ever made, deleted ones included)."""
    import boto3

    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as resp:
        data = json.load(resp)
    secrets = {k["access_key_id"]: k["secret_access_key"] for k in data["iam"].get("AccessKey", [])}
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys: dict[str, dict[str, tuple[str, str]]] = {}
    for login in logins:
        listed = iam.list_access_keys(UserName=login)["AccessKeyMetadata"]
        keys[login] = {
            k["AccessKeyId"]: (secrets.get(k["AccessKeyId"], ""), k["Status"]) for k in listed
        }
    return keys


class KeySoak(Soak):
    def __init__(self, *, emulator_endpoint: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.emulator_endpoint = emulator_endpoint
        self.keys = KeyReport()

    def _check(self, record_ids: list[int]) -> None:
        from rotation import retirement
        from rotation.methods.iam_access_key import held_key_ids
        from rotation.models import Rotation
        from vault.models import AuditEvent, PamUser

        super()._check(record_ids)  # the rotations' counts and every console password
        key_ids = list(
            PamUser.objects.filter(
                pk__in=record_ids, rotation_settings__method="iam_access_key"
            ).values_list("pk", flat=True)
        )
        # What each gateway's tick does, once no unanswered request can still arrive.
        wait = sum(
            int(PROCESS_ENV[name])
            for name in ("ROTATION_UNANSWERED_WINDOW_SECONDS", "ROTATION_KEY_CLOCK_SKEW_SECONDS")
        )
        time.sleep(wait + 1)
        for name in self.factories:
            retirement.keys_retire_due(gateway_name=name)
        logins = list(PamUser.objects.filter(pk__in=key_ids).values_list("login", flat=True))
        in_aws = aws_keys(self.emulator_endpoint, logins)
        report = self.keys
        for record in PamUser.objects.filter(pk__in=key_ids).order_by("pk"):
            held = in_aws.get(record.login, {})
            current = (record.get_secret("access_secret_key"), "Active")
            pending = [
                (r.pending_access_key_id, (r.get_secret("pending_password"), "Active"))
                for r in Rotation.objects.filter(
                    pam_user=record,
                    status=Rotation.FAILED,
                    pending_may_be_live=True,
                    resolved_at__isnull=True,
                ).exclude(pending_password_enc="")
            ]
            if held.get(record.access_key_id) == current:
                report.working_current += 1
            elif any(held.get(key_id) == expected for key_id, expected in pending):
                report.working_pending += 1
            else:
                report.lost.append(record.login)
            report.orphans += [
                f"{record.login}:{key_id}" for key_id in set(held) - held_key_ids(record)
            ]
        outcomes = [o for action, o in list(self.proxy.history) if action == "CreateAccessKey"]
        report.limit_refused = outcomes.count("limit_exceeded")
        report.keys_created = outcomes.count("forwarded") - report.limit_refused
        rotations = Rotation.objects.filter(pam_user_id__in=key_ids, status=Rotation.FAILED)
        report.three_keys = rotations.filter(error__contains="(LimitExceeded)").count()
        events = AuditEvent.objects.filter(object_uid__in=self._uids(key_ids))
        report.orphans_deleted = events.filter(action="rotation.key.orphan_deleted").count()
        report.keys_retired = events.filter(action="rotation.key.deleted").count()

    @staticmethod
    def _uids(record_ids: list[int]) -> list[str]:
        from vault.models import PamUser

        return list(PamUser.objects.filter(pk__in=record_ids).values_list("uid", flat=True))
