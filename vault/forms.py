"""Forms for the vault UI. Each one turns any bad input into a field error, never an exception,
and none of them writes anything: views pass `cleaned_data` to vault/services.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from vault import access, validators
from vault.schedule_widget import ScheduleFields, schedule_initial
from vault.timezones import place_zone_choices

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
from vault.models import (
    NOTES_MAX_LENGTH,
    USE_INSTANCE_ROLE,
    Application,
    ApplicationFolder,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    SharedFolder,
)

ACCESS_KEY_ID_RE = re.compile(r"\w{1,128}", re.ASCII)
GATEWAY_NAME_RE = re.compile(r"[-a-zA-Z0-9_]{1,100}")


class ObjectChoiceField(forms.ModelChoiceField):
    """A choice of one object by its key (uid, name). A NUL character is refused as an invalid
    choice before the lookup: PostgreSQL refuses NUL in text, which would be a server error."""

    def to_python(self, value):
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


def _as_sentence(validator: Callable[[str], None], value: str) -> None:
    """Run a shared validator (vault/validators.py, whose messages also serve `pam import`)
    and word its message as a sentence for a field error."""
    try:
        validator(value)
    except ValidationError as exc:
        text = " ".join(exc.messages)
        raise ValidationError(text[:1].upper() + text[1:].rstrip(".") + ".", code=exc.code) from exc


FOLDER_NAME_TAKEN = "This folder name is not available; choose another."


class FolderForm(forms.Form):
    name = forms.CharField(label="Folder name", max_length=200)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if SharedFolder.objects.filter(name__iexact=name).exists():
            # Folder names are unique across the vault, but other teams' names are not ours
            # to confirm: the same words whoever's folder it is.
            raise ValidationError(FOLDER_NAME_TAKEN)
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
    # The IAM user's access key (the "IAM User access key" rotation method): the id is shown,
    # the secret is write-only like the password.
    access_key_id = forms.CharField(
        label="Access key ID",
        required=False,
        max_length=128,
        help_text="Optional. The IAM user's access key, e.g. AKIAIOSFODNN7EXAMPLE.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    access_secret_key = forms.CharField(
        label="Secret access key",
        required=False,
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    # Plain text, stored in the clear (docs/security.md): not the place for a secret.
    notes = forms.CharField(
        required=False,
        max_length=NOTES_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Shown on the record's page to whoever can open it; not encrypted, so keep "
        "secrets out.",
    )
    managed = forms.BooleanField(
        label="Managed by the vault (rotate this record)",
        required=False,
        initial=True,
        help_text="Untick for an account the vault keeps the password of but must never "
        "rotate: no schedule, Rotate or Rotate all changes it.",
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
                    "notes": instance.notes,
                    "managed": instance.managed,
                    "access_key_id": instance.access_key_id,
                },
            )
        super().__init__(*args, **kw)
        if instance is not None:
            self.fields["password"].help_text = "Leave blank to keep the current password."
        else:
            self.fields["password"].help_text = "Optional. At most 128 printable ASCII characters."
        secret_field = self.fields["access_secret_key"]
        if instance is not None and instance.has_secret("access_secret_key"):
            secret_field.help_text = (
                "Leave blank to keep the current secret. To remove the access key, empty the "
                "access key ID and leave this blank."
            )
        else:
            secret_field.help_text = "Given with the access key ID: both, or neither."

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

    def clean_access_key_id(self) -> str:
        key_id = self.cleaned_data["access_key_id"]
        if key_id:
            _as_sentence(validators.validate_user_access_key_id, key_id)
        return key_id

    def clean_access_secret_key(self) -> str:
        secret = self.cleaned_data["access_secret_key"]
        if secret:
            _as_sentence(validators.validate_secret_key_text, secret)
        return secret

    def _clean_access_key(self, data: dict) -> None:
        """Both the id and the secret, or neither; on edit a blank secret keeps the stored one,
        which belongs to the stored id only."""
        if "access_key_id" not in data or "access_secret_key" not in data:
            return  # the field errors say what is wrong
        key_id, secret = data["access_key_id"], data["access_secret_key"]
        stored_id = self.instance.access_key_id if self.instance is not None else ""
        if secret and not key_id:
            self.add_error("access_key_id", "Give the access key ID this secret belongs to.")
        elif key_id and not secret and key_id != stored_id:
            self.add_error(
                "access_secret_key",
                "Give the secret access key of this access key ID (the stored secret belongs "
                + (f"to {stored_id})." if stored_id else "to no key: there is none)."),
            )

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
        self._clean_access_key(data)
        return data

    def password_for_service(self) -> str | None:
        """The password to store: on edit, blank means keep the current one (None)."""
        password = self.cleaned_data["password"]
        if self.instance is not None and not password:
            return None
        return password

    def access_key_for_service(self) -> tuple[str, str] | None:
        """(key id, secret) to store; None keeps the stored access key (an unchanged id with a
        blank secret), ("", "") removes it."""
        key_id = self.cleaned_data["access_key_id"]
        secret = self.cleaned_data["access_secret_key"]
        stored_id = self.instance.access_key_id if self.instance is not None else ""
        if not secret:
            if key_id == stored_id:
                return None
            return ("", "")  # the id emptied: the key is removed
        return (key_id, secret)


def _unique_title(model, folder: SharedFolder, title: str, instance) -> str:
    """`title`, unless another row of `model` in `folder` has it (titles are unique per folder)."""
    others = model.objects.filter(folder=folder, title=title)
    if instance is not None:
        others = others.exclude(pk=instance.pk)
    if others.exists():
        noun = "record" if model is PamUser else "configuration"
        raise ValidationError(f"Another {noun} in this folder already has this title.")
    return title


# The configuration form's schedule type for Commander's schedule JSON typed as text.
SCHEDULE_JSON = "JSON"


def _with(data, **values):
    """Posted form data with `values` set (a QueryDict's copy may be changed)."""
    data = data.copy()
    for key, value in values.items():
        data[key] = value
    return data


def _schedule_shape(schedule: dict) -> dict:
    """Without the rotation app's check (it registers one): a schedule is an object with a type."""
    if not isinstance(schedule.get("type"), str) or not schedule["type"]:
        raise ValidationError('The schedule needs a "type", e.g. {"type": "ON_DEMAND"}.')
    return schedule


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


class PamConfigurationForm(ScheduleFields):
    # Schedule JSON typed by hand, for those who know Commander's form (the widget is the default).
    extra_types = {SCHEDULE_JSON: ("default_rotation_schedule",)}
    title = forms.CharField(max_length=200)
    environment = forms.ChoiceField(choices=PamConfiguration.ENVIRONMENTS, initial="aws")
    gateway = ObjectChoiceField(
        queryset=Gateway.objects.none(),
        required=False,
        to_field_name="name",
        empty_label="— choose a gateway —",
        label="Gateway",
        help_text="Gateways of the applications you administer, and those already serving "
        "this folder.",
    )
    new_gateway = forms.CharField(
        label="New gateway name",
        max_length=100,
        required=False,
        help_text="Letters, digits, - and _. Leave blank when you chose a gateway above.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    new_gateway_application = ObjectChoiceField(
        label="Application of the new gateway",
        queryset=Application.objects.none(),
        required=False,
        to_field_name="uid",
        help_text="An application you administer; the gateway rotates only the folders shared "
        "to it.",
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
        label="Schedule JSON",
        max_length=2000,
        required=False,
        initial='{"type": "ON_DEMAND"}',
        help_text='Keeper Commander\'s schedule JSON, e.g. {"type": "DAILY", "time": "03:00", '
        '"tz": "Europe/Berlin"}.',
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    scope_path_prefix = forms.CharField(
        label="Target scope: IAM path prefix",
        max_length=512,
        required=False,
        help_text="Rotations touch only IAM users whose path starts with this, e.g. "
        "/rotated/. Checked against AWS by the gateway.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    scope_user_pattern = forms.CharField(
        label="Target scope: user names",
        max_length=512,
        required=False,
        help_text="Comma-separated IAM user names or patterns with * and ?, e.g. svc-*, "
        "alice.admin. A scope is required with USE_INSTANCE_ROLE.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(
        self,
        *args,
        folder: SharedFolder,
        user,
        instance: PamConfiguration | None = None,
        **kw,
    ):
        self.folder = folder
        self.instance = instance
        if args and args[0] is not None and "schedule_type" not in args[0]:
            # A client that posts only the schedule JSON (scripts written for the form before
            # the widget) keeps working: that is the JSON choice.
            args = (_with(args[0], schedule_type=SCHEDULE_JSON), *args[1:])
        if instance is not None:
            kw.setdefault(
                "initial",
                {
                    **schedule_initial(instance.default_rotation_schedule),
                    "title": instance.title,
                    "environment": instance.environment,
                    "gateway": instance.gateway.name,
                    "aws_id": instance.aws_id,
                    "access_key_id": instance.access_key_id,
                    "region_names": ", ".join(instance.region_names),
                    "endpoint_url": instance.endpoint_url,
                    "default_rotation_schedule": json.dumps(instance.default_rotation_schedule),
                    "scope_path_prefix": instance.scope_path_prefix,
                    "scope_user_pattern": instance.scope_user_pattern,
                },
            )
        super().__init__(*args, **kw)
        self.fields["schedule_type"].choices = [
            *self.fields["schedule_type"].choices,
            (SCHEDULE_JSON, "Schedule JSON (advanced)"),
        ]
        self.fields["default_rotation_schedule"].conditional = True
        if instance is None and not self.is_bound:
            self.initial.setdefault("schedule_type", "ON_DEMAND")
        # Only gateways and applications the person may name: nothing else is listed.
        self.fields["gateway"].queryset = access.gateways_for_folder(
            user, folder, also=instance.gateway if instance is not None else None
        )
        if instance is None and not self.is_bound and not self.initial.get("gateway"):
            # A new configuration starts on a gateway that runs, rather than on none.
            online = self._online_gateway()
            if online is not None:
                self.initial["gateway"] = online.name
        applications = access.shareable_applications(user)
        self.fields["new_gateway_application"].queryset = applications.order_by("name")
        if not applications.exists():
            # Creating a gateway is for administrators of an application.
            del self.fields["new_gateway"], self.fields["new_gateway_application"]
        # Required depending on other fields: the label must not call them optional.
        for name in ("gateway", "new_gateway", "new_gateway_application", "access_secret_key"):
            if name in self.fields:
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

    def _online_gateway(self) -> Gateway | None:
        """An online gateway among those listed: one whose application already serves the
        folder first (its rotations can run at once), then the latest heartbeat."""
        cutoff = timezone.now() - timedelta(seconds=settings.GATEWAY_OFFLINE_SECONDS)
        online = list(self.fields["gateway"].queryset.filter(last_seen_at__gte=cutoff))
        if not online:
            return None
        serving = set(
            ApplicationFolder.objects.filter(folder=self.folder).values_list(
                "application_id", flat=True
            )
        )
        return max(online, key=lambda g: (g.application_id in serving, g.last_seen_at))

    def clean_title(self) -> str:
        return _unique_title(
            PamConfiguration, self.folder, self.cleaned_data["title"], self.instance
        )

    def clean_new_gateway(self) -> str:
        name = self.cleaned_data["new_gateway"]
        if name and not GATEWAY_NAME_RE.fullmatch(name):
            raise ValidationError("A gateway name may contain only letters, digits, - and _.")
        if name and Gateway.objects.filter(name=name).exists():
            # Generic: whose gateway it is, or that it exists elsewhere, is not ours to say.
            raise ValidationError("This gateway name is not available; choose another.")
        return name

    def clean_scope_path_prefix(self) -> str:
        prefix = self.cleaned_data["scope_path_prefix"]
        _as_sentence(validators.validate_iam_path_prefix, prefix)
        return prefix

    def clean_scope_user_pattern(self) -> str:
        value = self.cleaned_data["scope_user_pattern"]
        _as_sentence(validators.normalize_scope_user_pattern, value)
        return validators.normalize_scope_user_pattern(value)

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

    def _clean_default_schedule(self, data: dict) -> None:
        """The default schedule, from the widget or (the JSON choice) the typed JSON, checked
        by the rotation app's registered cleaner (vault/schedule_widget.py)."""
        from vault.importer import CONFIGURATION_FIELD_CLEANERS

        stored = self.instance.default_rotation_schedule if self.instance is not None else None
        check = CONFIGURATION_FIELD_CLEANERS.get("default_rotation_schedule") or _schedule_shape
        if data.get("schedule_type") == SCHEDULE_JSON:
            self.clean_schedule_fields(check, stored)  # drops the hidden fields' errors
            if "default_rotation_schedule" in self.errors:
                return
            try:
                data["default_rotation_schedule"] = clean_default_rotation_schedule(
                    data.get("default_rotation_schedule") or ""
                )
            except ValidationError as exc:
                self.add_error("default_rotation_schedule", exc)
            return
        self.errors.pop("default_rotation_schedule", None)
        schedule = self.clean_schedule_fields(check, stored)
        if schedule is not None:
            data["default_rotation_schedule"] = schedule

    def clean(self) -> dict:
        data = super().clean()
        chosen, typed = data.get("gateway"), data.get("new_gateway")
        if "gateway" in data and ("new_gateway" in data or "new_gateway" not in self.fields):
            if chosen and typed:
                self.add_error("new_gateway", "Choose a gateway or type a new name, not both.")
            elif not chosen and not typed:
                self.add_error(
                    "gateway",
                    "Choose a gateway or type a new gateway name."
                    if "new_gateway" in self.fields
                    else "Choose a gateway. If none is listed, ask an administrator of an "
                    "application to share this folder to it.",
                )
            elif typed and not data.get("new_gateway_application"):
                self.add_error(
                    "new_gateway_application", "Choose the application the new gateway serves."
                )
        self._clean_secret(data)
        self._clean_scope(data)
        self._clean_default_schedule(data)
        return data

    def _clean_scope(self, data: dict) -> None:
        if data.get("access_key_id") != USE_INSTANCE_ROLE:
            return
        if not (data.get("scope_path_prefix") or data.get("scope_user_pattern")):
            self.add_error(
                "scope_user_pattern",
                f"With {USE_INSTANCE_ROLE} (the gateway host's own credentials) a target scope "
                "is required: give an IAM path prefix or user names.",
            )
        gateway = data.get("gateway")
        if gateway is not None and not gateway.allow_instance_role:
            self.add_error(
                "access_key_id",
                f"The gateway “{gateway.name}” does not allow {USE_INSTANCE_ROLE}: enter an "
                "access key, or ask a superuser to allow the host's credentials on it.",
            )
        elif gateway is None and data.get("new_gateway"):
            self.add_error(
                "access_key_id",
                f"A new gateway does not allow {USE_INSTANCE_ROLE} until a superuser allows it: "
                "enter an access key.",
            )

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

    def gateway_to_create(self) -> tuple[str, Application] | None:
        """(name, application) of a gateway to create, or None when an existing one was chosen."""
        name = self.cleaned_data.get("new_gateway")
        if not name:
            return None
        return name, self.cleaned_data["new_gateway_application"]

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
        config.scope_path_prefix = data["scope_path_prefix"]
        config.scope_user_pattern = data["scope_user_pattern"]
        if data.get("gateway") is not None:
            config.gateway = data["gateway"]
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
        max_length=150,
        # The members page lists people who may be added (vault.access.member_suggestions).
        widget=forms.TextInput(attrs={"autocomplete": "off", "list": "member-suggestions"}),
    )
    field_order = ["username"]

    def __init__(self, *args, folder: SharedFolder, **kw):
        self.folder = folder
        super().__init__(*args, **kw)

    def clean_username(self) -> AbstractBaseUser:
        username = self.cleaned_data["username"]
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            # Not "there is no such user": the vault's user list is not for members to probe.
            raise ValidationError("This person could not be added. Check the user name.")
        if FolderMember.objects.filter(folder=self.folder, user=user).exists():
            raise ValidationError(f"{username} is already a member of this folder.")
        return user


class FolderShareForm(forms.Form):
    """Share a folder to an application, whose gateways may then rotate the folder's records."""

    application = ObjectChoiceField(
        queryset=Application.objects.none(), to_field_name="uid", label="Application"
    )
    editable = forms.BooleanField(
        required=False,
        initial=True,
        label="Editable (needed for rotation: gateways save new passwords)",
    )

    def __init__(self, *args, folder: SharedFolder, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Only applications the person administers: a share needs authority over both sides.
        self.fields["application"].queryset = access.shareable_applications(user).order_by("name")


# --- people: your own password (the account page), and the People page -------------------------

PASSWORD_INPUT_MAX = 4096  # as the sign-in form (vault.security.MAX_PASSWORD_INPUT)


def _password_field(label: str, autocomplete: str, required: bool = True) -> forms.CharField:
    field = forms.CharField(
        label=label,
        strip=False,
        required=required,
        max_length=PASSWORD_INPUT_MAX,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )
    field.conditional = not required  # _field.html: not "(optional)", needed in one case
    return field


class NewPasswordMixin:
    """new_password1 and new_password2: the same, and accepted by AUTH_PASSWORD_VALIDATORS for
    `self.person` (a user, or an unsaved one named by the form). Required unless the form has
    `temporary` checked."""

    person = None

    def _wants_password(self) -> bool:
        return not self.cleaned_data.get("temporary", False)

    def _clean_new_password(self) -> None:
        from django.contrib.auth.password_validation import validate_password

        if not self._wants_password():
            if self.cleaned_data.get("new_password1") or self.cleaned_data.get("new_password2"):
                # Never drop a password someone typed: they meant one of the two.
                self.add_error(
                    "new_password1",
                    "Clear the password, or untick “Make a temporary password” to set it.",
                )
            return
        first = self.cleaned_data.get("new_password1")
        second = self.cleaned_data.get("new_password2")
        if not first:
            if "new_password1" not in self.errors:
                self.add_error("new_password1", "Enter the new password.")
            return
        if first != second:
            self.add_error("new_password2", "The two passwords differ.")
            return
        try:
            validate_password(first, self.person)
        except ValidationError as exc:
            self.add_error("new_password1", exc)

    def new_password(self) -> str | None:
        """The password chosen, or None for a temporary one made by the service."""
        return self.cleaned_data.get("new_password1") if self._wants_password() else None


class AccountPasswordForm(NewPasswordMixin, forms.Form):
    """Change your own password. The current password is checked by the view, through
    authenticate(), so wrong ones count towards the sign-in lockout."""

    current_password = _password_field("Current password", "current-password")
    new_password1 = _password_field("New password", "new-password")
    new_password2 = _password_field("New password again", "new-password")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.person = user
        self.fields["new_password1"].help_text = " ".join(_validator_help_texts())

    def clean(self):
        cleaned = super().clean()
        self._clean_new_password()
        return cleaned


def _validator_help_texts() -> list[str]:
    from django.contrib.auth.password_validation import password_validators_help_texts

    return password_validators_help_texts()


class PersonPasswordForm(NewPasswordMixin, forms.Form):
    """A superuser sets a person's password, or has a temporary one made (shown once)."""

    temporary = forms.BooleanField(
        required=False,
        initial=True,
        label="Make a temporary password (shown once, for you to pass on)",
    )
    new_password1 = _password_field("New password", "new-password", required=False)
    new_password2 = _password_field("New password again", "new-password", required=False)

    def __init__(self, *args, person=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.person = person
        self.fields["new_password1"].help_text = (
            "Leave empty with a temporary password. " + " ".join(_validator_help_texts())
        )

    def clean(self):
        cleaned = super().clean()
        self._clean_new_password()
        return cleaned


class PersonCreateForm(PersonPasswordForm):
    """A new person: a username, and a password or a temporary one."""

    username = forms.CharField(
        label="Username",
        max_length=150,
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )
    field_order = ["username", "temporary", "new_password1", "new_password2"]

    def clean_username(self) -> str:
        from django.contrib.auth.validators import UnicodeUsernameValidator

        username = self.cleaned_data["username"]
        UnicodeUsernameValidator()(username)
        user_model = get_user_model()
        if user_model.objects.filter(username__iexact=username).exists():
            raise ValidationError(f"Someone already has the username {username}.")
        # The similarity validator compares the password with the username being created.
        self.person = user_model(username=username)
        return username


class FolderRenameForm(forms.Form):
    """A folder's new name: unique across the vault as at creation (FolderForm), except that
    the folder may keep its own name in another case."""

    name = forms.CharField(label="New name", max_length=200)

    def __init__(self, *args, folder: SharedFolder | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.folder = folder

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = SharedFolder.objects.filter(name__iexact=name)
        if self.folder is not None:
            others = others.exclude(pk=self.folder.pk)
        if others.exists():
            raise ValidationError(FOLDER_NAME_TAKEN)
        return name


class FolderDeleteForm(forms.Form):
    """Deleting a folder deletes its records and configurations: the folder's name, typed."""

    confirm_name = forms.CharField(label="Type the folder's name to confirm", max_length=200)

    def __init__(self, *args, folder: SharedFolder, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.folder = folder

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"]
        if typed.strip() != self.folder.name:
            raise ValidationError(f"Type “{self.folder.name}” exactly to delete this folder.")
        return typed


class TimeZoneForm(forms.Form):
    """The account page's choice of the zone pages show times in."""

    time_zone = forms.ChoiceField(label="Time zone", required=False)

    def __init__(self, *args, browser_zone: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        browser = "Your browser's time zone" + (f" ({browser_zone})" if browser_zone else "")
        self.fields["time_zone"].choices = [("", browser), *place_zone_choices()]
