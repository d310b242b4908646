"""The "IAM User" method: an IAM user's AWS console password (Keeper's name for it).

Its durable steps:

1. ``write ahead``: a new password under the account's password policy
   (GetAccountPasswordPolicy, cached per configuration) and the record's complexity. Nothing
   changes in AWS; the engine commits the password before step 2.
2. ``set``: the ARN's account is the configuration's (sts:GetCallerIdentity, cached), the
   user's IAM path is inside the configuration's target scope (GetUser: the ARN on the record
   is typed by a person and proves nothing), then UpdateLoginProfile. Setting the same
   password twice is harmless, so the engine may run this step again after any failure.

rotation/aws.py (the only boto3 user) says what AWS's answers prove; this module maps them onto
the engine's failure kinds: AwsRefused -> Refused, AwsTransient -> Ambiguous when the
UpdateLoginProfile may have applied, else Transient. A complexity that cannot be met under
the account's policy is Refused: nothing was sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from rotation import aws
from rotation.methods.base import (
    Ambiguous,
    Applied,
    Apply,
    Refused,
    RotationMethod,
    Transient,
    WriteAhead,
)
from rotation.passwords import ComplexityError, generate_password
from rotation.rotation_settings import settings_complexity
from vault import access

if TYPE_CHECKING:
    from rotation.models import Rotation
    from vault.models import PamConfiguration, PamUser

P = ParamSpec("P")
R = TypeVar("R")


def classified(step: Callable[P, R]) -> Callable[P, R]:
    """The step, raising the engine's failure kinds instead of aws.py's errors."""

    @functools.wraps(step)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return step(*args, **kwargs)
        except aws.AwsRefused as exc:
            raise Refused(exc.message) from exc
        except aws.AwsTransient as exc:
            kind = Ambiguous if exc.may_have_applied else Transient
            raise kind(exc.message) from exc
        except ComplexityError as exc:
            raise Refused(str(exc)) from exc

    return run


@classified
def make_password(rotation: Rotation) -> str:
    policy = aws.account_password_policy(rotation.configuration)
    complexity = settings_complexity(rotation.pam_user.rotation_settings)
    return generate_password(complexity, policy)


@classified
def set_password(rotation: Rotation, password: str) -> Applied:
    record, config = rotation.pam_user, rotation.configuration
    aws.check_account(config, arn=record.distinguished_name, login=record.login)
    check_path_scope(config, record)
    unanswered = aws.set_console_password(config, login=record.login, password=password)
    return Applied(unanswered=unanswered)


def check_path_scope(config: PamConfiguration, record: PamUser) -> None:
    """The configuration's IAM path prefix, against the path AWS gives the user."""
    if not config.scope_path_prefix:
        return
    path = aws.user_path(config, login=record.login)
    if not access.scope_allows_path(config, path):
        raise Refused(
            f"The IAM user “{record.login}” has the path {path}, outside the target scope of the "
            f"configuration “{config.title}” (paths under {config.scope_path_prefix}): widen "
            "the scope or choose another configuration."
        )


IAM_USER = RotationMethod(
    name="iam_user",
    label="IAM User",
    steps=(WriteAhead("write ahead", make_password), Apply("set", set_password)),
    applies_through_aws_only=True,
)
