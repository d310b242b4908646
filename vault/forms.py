"""Forms for the vault UI. Each one turns any bad input into a field error, never an exception,
and none of them writes anything: views pass `cleaned_data` to vault/services.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from vault import validators

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
from vault.models import (
    USE_INSTANCE_ROLE,
    Application,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    SharedFolder,
)

ACCESS_KEY_ID_RE = re.compile(r"\w{1,128}", re.ASCII)
GATEWAY_NAME_RE = re.compile(r"[-a-zA-Z0-9_]{1,100}")


def _as_sentence(validator: Callable[[str], None], value: str) -> None:
    """Run a shared validator (vault/validators.py, whose messages also serve `pam import`)
    and word its message as a sentence for a field error."""
    try:
        validator(value)
    except ValidationError as exc:
        text = " ".join(exc.messages)
        raise ValidationError(text[:1].upper() + text[1:].rstrip(".") + ".", code=exc.code) from exc


class FolderForm(forms.Form):
    name = forms.CharField(label="Folder name", max_length=200)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if SharedFolder.objects.filter(name__iexact=name).exists():
            raise ValidationError("A folder with this name already exists.")
        return name


class PamUserForm(forms.Form):
    title = forms.CharField(max_length=200)
    login = forms.CharField(
        label="Login (IAM user name)",
        max_length=64,
        help_text="Case-sensitive, exactly as in AWS.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    distinguished_name = forms.CharField(
        label="ARN",
        max_length=2048,
        help_text="For example arn:aws:iam::123456789012:user/TestUser",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    password = forms.CharField(
        required=False,
        strip=False,
        # Never echo a password back into the page, not even one the person just typed.
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, folder: SharedFolder, instance: PamUser | None = None, **kw):
        self.folder = folder
        self.instance = instance
        if instance is not None:
            kw.setdefault(
                "initial",
                {
                    "title": instance.title,
                    "login": instance.login,
                    "distinguished_name": instance.distinguished_name,
                },
            )
        super().__init__(*args, **kw)
        if instance is not None:
            self.fields["password"].help_text = "Leave blank to keep the current password."
        else:
            self.fields["password"].help_text = "Optional. At most 128 printable ASCII characters."

    def clean_title(self) -> str:
        return _unique_title(PamUser, self.folder, self.cleaned_data["title"], self.instance)

    def clean_login(self) -> str:
        login = self.cleaned_data["login"]
        _as_sentence(validators.validate_iam_login, login)
        return login

    def clean_distinguished_name(self) -> str:
        arn = self.cleaned_data["distinguished_name"]
        _as_sentence(validators.validate_iam_user_arn, arn)
        return arn

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        _as_sentence(validators.validate_password_text, password)
        return password

    def clean(self) -> dict:
        data = super().clean()
        arn, login = data.get("distinguished_name"), data.get("login")
        if arn and login:
            name = validators.iam_user_name_from_arn(arn)
            if name != login:
                self.add_error(
                    "distinguished_name",
                    f"The ARN names the user “{name}” but the login is “{login}”; they must "
                    "be the same (case-sensitive).",
                )
        return data

    def password_for_service(self) -> str | None:
        """The password to store: on edit, blank means keep the current one (None)."""
        password = self.cleaned_data["password"]
        if self.instance is not None and not password:
            return None
        return password


def _unique_title(model, folder: SharedFolder, title: str, instance) -> str:
    """`title`, unless another row of `model` in `folder` has it (titles are unique per folder)."""
    others = model.objects.filter(folder=folder, title=title)
    if instance is not None:
        others = others.exclude(pk=instance.pk)
    if others.exists():
        noun = "record" if model is PamUser else "configuration"
        raise ValidationError(f"Another {noun} in this folder already has this title.")
    return title


def clean_default_rotation_schedule(value: str) -> dict:
    """Turn the schedule text into a dict or raise ValidationError. The rotation app registers
    the real schedule check (rotation/schedules.py) as a configuration field cleaner, shared
    with `pam import`."""
    from vault.importer import CONFIGURATION_FIELD_CLEANERS

    try:
        schedule = json.loads(value)
    except ValueError as exc:
        raise ValidationError(f"Not valid JSON: {exc}.") from exc
    except RecursionError:
        raise ValidationError("The schedule JSON is nested too deeply.") from None
    if not isinstance(schedule, dict):
        raise ValidationError('The schedule must be a JSON object, e.g. {"type": "ON_DEMAND"}.')
    if not isinstance(schedule.get("type"), str) or not schedule["type"]:
        raise ValidationError('The schedule needs a "type", e.g. {"type": "ON_DEMAND"}.')
    cleaner = CONFIGURATION_FIELD_CLEANERS.get("default_rotation_schedule")
    return cleaner(schedule) if cleaner else schedule


class PamConfigurationForm(forms.Form):
    title = forms.CharField(max_length=200)
    environment = forms.ChoiceField(choices=PamConfiguration.ENVIRONMENTS, initial="aws")
    gateway = forms.ModelChoiceField(
        queryset=Gateway.objects.all(),
        required=False,
        to_field_name="name",
        empty_label="— new gateway (type its name below) —",
        label="Gateway",
    )
    new_gateway = forms.CharField(
        label="New gateway name",
        max_length=100,
        required=False,
        help_text="Letters, digits, - and _. Leave blank when you chose a gateway above.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    aws_id = forms.CharField(label="AWS ID", max_length=200, required=False)
    access_key_id = forms.CharField(
        label="Access key ID",
        max_length=128,
        initial=USE_INSTANCE_ROLE,
        help_text=f"{USE_INSTANCE_ROLE} uses the gateway host's instance role.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    access_secret_key = forms.CharField(
        label="Access secret key",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    region_names = forms.CharField(
        label="Region names",
        max_length=500,
        initial="us-east-1",
        help_text="Comma-separated, e.g. us-east-1, eu-west-2",
    )
    endpoint_url = forms.CharField(
        label="Endpoint URL",
        max_length=500,
        required=False,
        help_text="Optional: a VPC endpoint or a local AWS emulator.",
    )
    default_rotation_schedule = forms.CharField(
        label="Default rotation schedule (JSON)",
        max_length=2000,
        initial='{"type": "ON_DEMAND"}',
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )

    def __init__(self, *args, folder: SharedFolder, instance: PamConfiguration | None = None, **kw):
        self.folder = folder
        self.instance = instance
        if instance is not None:
            kw.setdefault(
                "initial",
                {
                    "title": instance.title,
                    "environment": instance.environment,
                    "gateway": instance.gateway.name,
                    "aws_id": instance.aws_id,
                    "access_key_id": instance.access_key_id,
                    "region_names": ", ".join(instance.region_names),
                    "endpoint_url": instance.endpoint_url,
                    "default_rotation_schedule": json.dumps(instance.default_rotation_schedule),
                },
            )
        super().__init__(*args, **kw)
        # Required depending on other fields: the label must not call them optional.
        for name in ("gateway", "new_gateway", "access_secret_key"):
            self.fields[name].conditional = True
        if instance is not None and instance.has_secret("access_secret_key"):
            self.fields[
                "access_secret_key"
            ].help_text = "Leave blank to keep the stored secret key. It is never shown."
        else:
            self.fields[
                "access_secret_key"
            ].help_text = (
                f"Required unless the access key ID is {USE_INSTANCE_ROLE}. It is never shown."
            )

    def clean_title(self) -> str:
        return _unique_title(
            PamConfiguration, self.folder, self.cleaned_data["title"], self.instance
        )

    def clean_new_gateway(self) -> str:
        name = self.cleaned_data["new_gateway"]
        if name and not GATEWAY_NAME_RE.fullmatch(name):
            raise ValidationError("A gateway name may contain only letters, digits, - and _.")
        return name

    def clean_access_key_id(self) -> str:
        key_id = self.cleaned_data["access_key_id"]
        if key_id != USE_INSTANCE_ROLE and not ACCESS_KEY_ID_RE.fullmatch(key_id):
            raise ValidationError(
                f"An access key ID is letters and digits only (or {USE_INSTANCE_ROLE})."
            )
        return key_id

    def clean_region_names(self) -> list[str]:
        names = [n.strip() for n in self.cleaned_data["region_names"].split(",") if n.strip()]
        if not names:
            raise ValidationError("Give at least one region, e.g. us-east-1.")
        for name in names:
            _as_sentence(validators.validate_region_name, name)
        return list(dict.fromkeys(names))

    def clean_endpoint_url(self) -> str:
        url = self.cleaned_data["endpoint_url"]
        _as_sentence(validators.validate_endpoint_url, url)
        return url

    def clean_default_rotation_schedule(self) -> dict:
        return clean_default_rotation_schedule(self.cleaned_data["default_rotation_schedule"])

    def clean(self) -> dict:
        data = super().clean()
        chosen, typed = data.get("gateway"), data.get("new_gateway")
        if "gateway" in data and "new_gateway" in data:
            if chosen and typed and chosen.name != typed:
                self.add_error("new_gateway", "Choose a gateway or type a new name, not both.")
            elif not chosen and not typed:
                self.add_error("gateway", "Choose a gateway or type a new gateway name.")
        self._clean_secret(data)
        return data

    def _clean_secret(self, data: dict) -> None:
        key_id = data.get("access_key_id")
        secret = data.get("access_secret_key", "")
        if key_id is None:
            return
        if key_id == USE_INSTANCE_ROLE:
            if secret and secret != USE_INSTANCE_ROLE:
                self.add_error(
                    "access_secret_key",
                    f"With the access key ID {USE_INSTANCE_ROLE}, leave the secret key blank "
                    f"(or {USE_INSTANCE_ROLE}).",
                )
            return
        if secret == USE_INSTANCE_ROLE:
            self.add_error(
                "access_secret_key",
                f"{USE_INSTANCE_ROLE} needs the access key ID {USE_INSTANCE_ROLE} as well.",
            )
        elif not secret and not self._has_usable_stored_secret():
            self.add_error(
                "access_secret_key",
                f"The secret key is required unless the access key ID is {USE_INSTANCE_ROLE}.",
            )
        elif secret and (len(secret) > 128 or not secret.isascii() or not secret.isprintable()):
            self.add_error(
                "access_secret_key", "A secret key is at most 128 printable ASCII characters."
            )

    def _has_usable_stored_secret(self) -> bool:
        config = self.instance
        return (
            config is not None
            and not config.uses_instance_role
            and config.has_secret("access_secret_key")
        )

    def gateway_name(self) -> str:
        return self.cleaned_data["new_gateway"] or self.cleaned_data["gateway"].name

    def secret_for_service(self) -> str | None:
        """The secret to store; None keeps the stored one."""
        if self.cleaned_data["access_key_id"] == USE_INSTANCE_ROLE:
            return USE_INSTANCE_ROLE
        return self.cleaned_data["access_secret_key"] or None

    def apply_to(self, config: PamConfiguration) -> PamConfiguration:
        """Copy the plain (non-secret) fields onto `config`; the caller sets the gateway."""
        data = self.cleaned_data
        config.title = data["title"]
        config.environment = data["environment"]
        config.aws_id = data["aws_id"]
        config.access_key_id = data["access_key_id"]
        config.region_names = data["region_names"]
        config.endpoint_url = data["endpoint_url"]
        config.default_rotation_schedule = data["default_rotation_schedule"]
        return config


PERMISSION_LABELS = {
    "can_edit": "Edit records",
    "can_share": "Share",
    "manage_records": "Add and remove records",
    "manage_users": "Manage members",
}


class MemberPermissionsForm(forms.Form):
    can_edit = forms.BooleanField(required=False, label=PERMISSION_LABELS["can_edit"])
    can_share = forms.BooleanField(required=False, label=PERMISSION_LABELS["can_share"])
    manage_records = forms.BooleanField(required=False, label=PERMISSION_LABELS["manage_records"])
    manage_users = forms.BooleanField(required=False, label=PERMISSION_LABELS["manage_users"])

    def permissions(self) -> dict[str, bool]:
        return {p: bool(self.cleaned_data[p]) for p in FolderMember.PERMISSIONS}


class MemberAddForm(MemberPermissionsForm):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    field_order = ["username"]

    def __init__(self, *args, folder: SharedFolder, **kw):
        self.folder = folder
        super().__init__(*args, **kw)

    def clean_username(self) -> AbstractBaseUser:
        username = self.cleaned_data["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ValidationError(f"There is no user “{username}”.")
        if FolderMember.objects.filter(folder=self.folder, user=user).exists():
            raise ValidationError(f"{username} is already a member of this folder.")
        return user


class FolderShareForm(forms.Form):
    """Share a folder to an application, whose gateways may then rotate the folder's records."""

    application = forms.ModelChoiceField(
        queryset=Application.objects.none(), to_field_name="uid", label="Application"
    )
    editable = forms.BooleanField(
        required=False,
        initial=True,
        label="Editable (needed for rotation: gateways save new passwords)",
    )

    def __init__(self, *args, folder: SharedFolder, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["application"].queryset = Application.objects.order_by("name")
