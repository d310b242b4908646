"""The password generator of the record form: a password as a rotation of the record would
generate it (its rotation settings' complexity raised to the AWS account's policy, as the last
Test connection saw it), or with the default complexity for a record without settings or one
being created. Nothing is stored or audited: the person still has to save the form, and the
record's own save is what history and the audit log record.

The rules stay in rotation/passwords.py; this only chooses which complexity applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from rotation.connection import known_policy
from rotation.models import RotationSettings
from rotation.passwords import Complexity, effective_complexity, generate_password
from rotation.rotation_settings import settings_complexity
from vault.models import PamUser


@dataclass(frozen=True)
class Generated:
    password: str
    complexity: Complexity
    # Where the complexity came from, in words for the form.
    source: str


def password_generate(record: PamUser | None = None) -> Generated:
    """A new password for `record` (None: a record not created yet). Raises ComplexityError
    when the record's settings and the account policy cannot be met together."""
    rs = (
        RotationSettings.objects.filter(pam_user=record).select_related("configuration").first()
        if record is not None
        else None
    )
    if rs is None:
        complexity = Complexity()
        return Generated(generate_password(complexity), complexity, "the default complexity")
    known = known_policy(rs.configuration)
    policy = known.policy if known else None
    complexity = effective_complexity(settings_complexity(rs), policy)
    source = "this record's rotation complexity"
    if policy is not None:
        source += " and the AWS account's password policy"
    return Generated(generate_password(complexity), complexity, source)
