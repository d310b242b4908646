"""Field validators shared by the web forms, the admin console and `pam import`.

Each raises django's ``ValidationError`` with a message a person can act on; the same message
appears as a field error in a form and after the JSON path in `pam import`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

# IAM user names: 1..64 of letters, digits and + = , . @ _ -  (case-sensitive).
IAM_LOGIN_RE = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
# arn:<partition>:iam::<12-digit account>:user/<optional path/>name. Paths are printable ASCII
# without spaces between slashes.
IAM_USER_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>\d{12}):"
    r"user/(?P<path>(?:[\x21-\x2e\x30-\x7e]+/)*)(?P<name>[A-Za-z0-9+=,.@_-]{1,64})$"
)
REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
MAX_PASSWORD_LENGTH = 128


def iam_user_name_from_arn(value: str) -> str | None:
    """The user name at the end of an IAM user ARN, or None if `value` is not one."""
    match = IAM_USER_ARN_RE.fullmatch(value or "")
    return match.group("name") if match else None


def validate_iam_user_arn(value: str) -> None:
    if not isinstance(value, str) or not IAM_USER_ARN_RE.fullmatch(value):
        raise ValidationError(
            "not an IAM user ARN: expected arn:<aws|aws-cn|aws-us-gov>:iam::<12-digit account>"
            ":user/<optional path/>name",
            code="invalid_arn",
        )


def validate_iam_login(value: str) -> None:
    if not isinstance(value, str) or not IAM_LOGIN_RE.fullmatch(value):
        raise ValidationError(
            "not an IAM user name: 1 to 64 letters, digits and + = , . @ _ -",
            code="invalid_login",
        )


def validate_arn_matches_login(arn: str, login: str) -> None:
    """The ARN's last path segment must be the login, exactly (IAM names are case-sensitive)."""
    name = iam_user_name_from_arn(arn)
    if name is None:
        validate_iam_user_arn(arn)
    if name != login:
        raise ValidationError(
            f'ARN user name "{name}" does not match login "{login}"', code="arn_login_mismatch"
        )


def validate_region_name(value: str) -> None:
    if not isinstance(value, str) or not REGION_RE.fullmatch(value):
        raise ValidationError(
            f'"{value}" is not an AWS region name (for example us-east-1)', code="invalid_region"
        )


def validate_endpoint_url(value: str) -> None:
    """An http(s) URL with a host; an empty value means "AWS's own endpoint"."""
    if value == "":
        return
    message = "endpoint URL must be an http:// or https:// URL with a host"
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise ValidationError(message, code="invalid_endpoint")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValidationError(message, code="invalid_endpoint") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(message, code="invalid_endpoint")


def validate_password_text(value: str) -> None:
    """AWS console passwords: at most 128 characters of printable ASCII (empty = none)."""
    if not isinstance(value, str):
        raise ValidationError("password must be text", code="invalid_password")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"password is longer than {MAX_PASSWORD_LENGTH} characters", code="password_too_long"
        )
    if any(not (" " <= c <= "~") for c in value):
        raise ValidationError(
            "password may contain only printable ASCII characters", code="password_not_ascii"
        )


ACCESS_KEY_ID_RE = re.compile(r"^\w{1,128}$", re.ASCII)


def validate_access_key_id(value: str) -> None:
    """An AWS access key id (letters, digits, _), or USE_INSTANCE_ROLE, which matches too."""
    if not isinstance(value, str) or not ACCESS_KEY_ID_RE.fullmatch(value):
        raise ValidationError(
            "not an access key ID: letters and digits only (or USE_INSTANCE_ROLE)",
            code="invalid_access_key_id",
        )


def validate_secret_key_text(value: str) -> None:
    """An AWS secret access key: at most 128 printable ASCII characters."""
    if not isinstance(value, str) or len(value) > 128 or any(not (" " <= c <= "~") for c in value):
        raise ValidationError(
            "a secret key is at most 128 printable ASCII characters", code="invalid_secret_key"
        )
