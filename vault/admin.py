"""The admin console (superusers). Secrets are never shown here, in plaintext or ciphertext:
every `*_enc` column is left out of forms and lists, and a secret can only be replaced through
a write-only field. Changes to records, configurations and members go through
vault/services.py, so password history and audit events happen as they do in the UI."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.validators import slug_re as SLUG_RE
from django.forms.models import BaseInlineFormSet

from vault import services, validators
from vault.models import (
    USE_INSTANCE_ROLE,
    Application,
    ApplicationFolder,
    AuditEvent,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    PasswordVersion,
    SharedFolder,
)


def _copy_saved(target, saved) -> None:
    """Make the admin's unsaved instance the row a service created (for redirects and logs)."""
    for f in saved._meta.concrete_fields:
        setattr(target, f.attname, getattr(saved, f.attname))
    target._state.adding = False
    target._state.db = saved._state.db


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- folders and members --------------------------------------------------------------------


class MembersFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if self.instance.pk is None:
            return
        had_manager = FolderMember.objects.filter(folder=self.instance, manage_users=True).exists()
        if not had_manager:
            return
        keeps_manager = any(
            form.cleaned_data.get("manage_users") and not form.cleaned_data.get("DELETE")
            for form in self.forms
            if hasattr(form, "cleaned_data") and form.cleaned_data
        )
        if not keeps_manager:
            raise ValidationError("A folder must keep at least one member who can manage members.")


class FolderMemberInline(admin.TabularInline):
    model = FolderMember
    formset = MembersFormSet
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "can_edit", "can_share", "manage_records", "manage_users"]


class SharedToApplicationInline(admin.TabularInline):
    model = ApplicationFolder
    extra = 0
    fields = ["application", "editable"]
    verbose_name = "shared to application"
    verbose_name_plural = "shared to applications"


class ApplicationFolderInline(admin.TabularInline):
    model = ApplicationFolder
    extra = 0
    fields = ["folder", "editable"]
    verbose_name = "shared folder"
    verbose_name_plural = "shared folders"


@admin.register(SharedFolder)
class SharedFolderAdmin(admin.ModelAdmin):
    list_display = ["name", "uid", "created_at"]
    search_fields = ["name", "uid"]
    readonly_fields = ["uid", "created_at"]
    fields = ["name", "uid", "created_at"]
    inlines = [FolderMemberInline, SharedToApplicationInline]

    def save_model(self, request, obj, form, change) -> None:
        if change:
            obj.save()
            return
        folder = services.folder_create(name=obj.name, actor=request.user, request=request)
        _copy_saved(obj, folder)

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not FolderMember:
            super().save_formset(request, form, formset, change)
            return
        # Members change through the services (audit, last-manager rule). Additions and
        # promotions first, removals last, so a hand-over between managers never trips the
        # "keep one manager" rule half-way.
        changed = formset.save(commit=False)
        changed.sort(key=lambda m: (m.pk is not None, not m.manage_users))
        try:
            for member in changed:
                permissions = {p: getattr(member, p) for p in FolderMember.PERMISSIONS}
                if member.pk is None:
                    services.member_add(
                        folder=form.instance,
                        user=member.user,
                        permissions=permissions,
                        actor=request.user,
                        request=request,
                    )
                else:
                    services.member_update(
                        member=member, permissions=permissions, actor=request.user, request=request
                    )
            for member in formset.deleted_objects:
                services.member_remove(member=member, actor=request.user, request=request)
        except services.LastManagerError as exc:
            self.message_user(request, str(exc), messages.ERROR)


@admin.register(FolderMember)
class FolderMemberAdmin(admin.ModelAdmin):
    list_display = ["user", "folder", "can_edit", "can_share", "manage_records", "manage_users"]
    list_filter = ["folder"]
    search_fields = ["user__username", "folder__name"]
    autocomplete_fields = ["user", "folder"]
    fields = ["folder", "user", "can_edit", "can_share", "manage_records", "manage_users"]

    def get_readonly_fields(self, request, obj=None):
        return ["folder", "user"] if obj is not None else []

    def save_model(self, request, obj, form, change) -> None:
        permissions = {p: getattr(obj, p) for p in FolderMember.PERMISSIONS}
        try:
            if change:
                member = FolderMember.objects.get(pk=obj.pk)
                saved = services.member_update(
                    member=member, permissions=permissions, actor=request.user, request=request
                )
            else:
                saved = services.member_add(
                    folder=obj.folder,
                    user=obj.user,
                    permissions=permissions,
                    actor=request.user,
                    request=request,
                )
        except services.LastManagerError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        _copy_saved(obj, saved)

    def delete_model(self, request, obj) -> None:
        try:
            services.member_remove(member=obj, actor=request.user, request=request)
        except services.LastManagerError as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def delete_queryset(self, request, queryset) -> None:
        for member in queryset:
            self.delete_model(request, member)


# --- applications and gateways --------------------------------------------------------------


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ["name", "uid"]
    search_fields = ["name"]
    readonly_fields = ["uid"]
    fields = ["name", "uid", "administrators"]
    filter_horizontal = ["administrators"]
    inlines = [ApplicationFolderInline]


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    list_display = ["name", "application", "online", "last_seen_at"]
    search_fields = ["name"]
    readonly_fields = ["uid", "last_seen_at"]
    fields = ["name", "uid", "application", "allow_instance_role", "last_seen_at"]

    def get_readonly_fields(self, request, obj=None):
        # A gateway imported with a display name ("Project1 Gateway", vault/validators.py) is
        # not a slug, which the model field's own validation would refuse on every save; its
        # name stays as it is (it is also its cluster's name), its other fields can change.
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not SLUG_RE.fullmatch(obj.name):
            fields.append("name")
        return fields

    @admin.display(boolean=True, description="online")
    def online(self, obj: Gateway) -> bool:
        return obj.is_online


# --- PAM Configurations ---------------------------------------------------------------------


class PamConfigurationAdminForm(forms.ModelForm):
    replace_secret_key = forms.CharField(
        label="Replace access secret key",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=(
            "Leave empty to keep the stored secret key, which is never shown. "
            f"Not needed when the access key ID is {USE_INSTANCE_ROLE}."
        ),
    )

    class Meta:
        model = PamConfiguration
        fields = [
            "folder",
            "title",
            "environment",
            "gateway",
            "aws_id",
            "access_key_id",
            "region_names",
            "endpoint_url",
            "default_rotation_schedule",
            "scope_path_prefix",
            "scope_user_pattern",
        ]

    def clean_scope_path_prefix(self) -> str:
        value = self.cleaned_data["scope_path_prefix"]
        validators.validate_iam_path_prefix(value)
        return value

    def clean_scope_user_pattern(self) -> str:
        return validators.normalize_scope_user_pattern(self.cleaned_data["scope_user_pattern"])

    def clean_access_key_id(self) -> str:
        value = self.cleaned_data["access_key_id"]
        validators.validate_access_key_id(value)
        return value

    def clean_region_names(self) -> list:
        value = self.cleaned_data["region_names"]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError('A JSON list of region names, e.g. ["us-east-1"].')
        for name in value:
            validators.validate_region_name(name)
        return value

    def clean_endpoint_url(self) -> str:
        value = self.cleaned_data["endpoint_url"]
        validators.validate_endpoint_url(value)
        return value

    def clean_default_rotation_schedule(self) -> dict:
        value = self.cleaned_data["default_rotation_schedule"]
        if not isinstance(value, dict):
            raise ValidationError('A JSON object, e.g. {"type": "ON_DEMAND"}.')
        from vault.importer import CONFIGURATION_FIELD_CLEANERS

        cleaner = CONFIGURATION_FIELD_CLEANERS.get("default_rotation_schedule")
        return cleaner(value) if cleaner else value

    def clean(self) -> dict:
        data = super().clean()
        key_id, secret = data.get("access_key_id"), data.get("replace_secret_key", "")
        if key_id is None:
            return data
        stored = self.instance.pk is not None and self.instance.has_secret("access_secret_key")
        if key_id == USE_INSTANCE_ROLE and not (
            data.get("scope_path_prefix") or data.get("scope_user_pattern")
        ):
            self.add_error(
                "scope_user_pattern",
                f"With {USE_INSTANCE_ROLE} a target scope is required: an IAM path prefix "
                "or user names.",
            )
        if key_id == USE_INSTANCE_ROLE:
            if secret and secret != USE_INSTANCE_ROLE:
                self.add_error(
                    "replace_secret_key",
                    f"With the access key ID {USE_INSTANCE_ROLE}, leave this empty.",
                )
        elif secret == USE_INSTANCE_ROLE:
            self.add_error(
                "replace_secret_key",
                f"{USE_INSTANCE_ROLE} needs the access key ID {USE_INSTANCE_ROLE} as well.",
            )
        elif not secret and (not stored or self.instance.uses_instance_role):
            self.add_error(
                "replace_secret_key",
                f"The secret key is required unless the access key ID is {USE_INSTANCE_ROLE}.",
            )
        elif secret:
            try:
                validators.validate_secret_key_text(secret)
            except ValidationError as exc:
                self.add_error("replace_secret_key", exc)
        return data

    def secret_for_service(self) -> str | None:
        """The secret to store; None keeps the stored one."""
        if self.cleaned_data["access_key_id"] == USE_INSTANCE_ROLE:
            return USE_INSTANCE_ROLE
        return self.cleaned_data.get("replace_secret_key") or None


@admin.register(PamConfiguration)
class PamConfigurationAdmin(admin.ModelAdmin):
    form = PamConfigurationAdminForm
    list_display = ["title", "folder", "gateway", "aws_id", "access_key_id", "updated_at"]
    list_filter = ["folder", "gateway"]
    search_fields = ["title", "aws_id", "uid"]
    readonly_fields = ["uid", "created_at", "updated_at"]
    fields = [
        "uid",
        "folder",
        "title",
        "environment",
        "gateway",
        "aws_id",
        "access_key_id",
        "replace_secret_key",
        "region_names",
        "endpoint_url",
        "default_rotation_schedule",
        "scope_path_prefix",
        "scope_user_pattern",
        "created_at",
        "updated_at",
    ]

    def save_model(self, request, obj, form, change) -> None:
        services.configuration_save(
            config=obj,
            access_secret_key=form.secret_for_service(),
            actor=request.user,
            request=request,
        )

    def delete_model(self, request, obj) -> None:
        services.configuration_delete(config=obj, actor=request.user, request=request)

    def delete_queryset(self, request, queryset) -> None:
        for config in queryset:
            self.delete_model(request, config)


# --- PAM Users ------------------------------------------------------------------------------


class PamUserAdminForm(forms.ModelForm):
    replace_password = forms.CharField(
        label="Replace password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored password, which is never shown here.",
        validators=[validators.validate_password_text],
    )

    class Meta:
        model = PamUser
        fields = ["folder", "title", "login", "distinguished_name", "notes", "managed"]

    def clean_login(self) -> str:
        value = self.cleaned_data["login"]
        validators.validate_iam_login(value)
        return value

    def clean_distinguished_name(self) -> str:
        value = self.cleaned_data["distinguished_name"]
        validators.validate_iam_user_arn(value)
        return value

    def clean(self) -> dict:
        data = super().clean()
        login, arn = data.get("login"), data.get("distinguished_name")
        if login and arn:
            try:
                validators.validate_arn_matches_login(arn, login)
            except ValidationError as exc:
                self.add_error("distinguished_name", exc)
        folder = data.get("folder") or getattr(self.instance, "folder", None)
        title = data.get("title")
        if folder is not None and title:
            others = PamUser.objects.filter(folder=folder, title=title)
            if self.instance.pk is not None:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error("title", "Another record in this folder already has this title.")
        return data


@admin.register(PamUser)
class PamUserAdmin(admin.ModelAdmin):
    form = PamUserAdminForm
    list_display = ["title", "login", "folder", "distinguished_name", "managed", "updated_at"]
    list_filter = ["folder", "managed"]
    search_fields = ["title", "login", "uid"]
    fields = [
        "uid",
        "folder",
        "title",
        "login",
        "distinguished_name",
        "notes",
        "managed",
        "replace_password",
        "created_at",
        "updated_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        # Moving a record between folders changes who may see it: not an admin form edit.
        base = ["uid", "created_at", "updated_at"]
        return base + ["folder"] if obj is not None else base

    def save_model(self, request, obj, form, change) -> None:
        password = form.cleaned_data.get("replace_password") or None
        if change:
            original = PamUser.objects.get(pk=obj.pk)
            saved = services.pam_user_update(
                record=original,
                title=obj.title,
                login=obj.login,
                distinguished_name=obj.distinguished_name,
                password=password,
                notes=obj.notes,
                managed=obj.managed,
                actor=request.user,
                request=request,
            )
        else:
            saved = services.pam_user_create(
                folder=obj.folder,
                title=obj.title,
                login=obj.login,
                distinguished_name=obj.distinguished_name,
                password=password or "",
                notes=obj.notes,
                managed=obj.managed,
                actor=request.user,
                request=request,
            )
        _copy_saved(obj, saved)

    def delete_model(self, request, obj) -> None:
        services.pam_user_delete(record=obj, actor=request.user, request=request)

    def delete_queryset(self, request, queryset) -> None:
        for record in queryset:
            self.delete_model(request, record)


# --- history and audit: read-only -----------------------------------------------------------


@admin.register(PasswordVersion)
class PasswordVersionAdmin(ReadOnlyAdmin):
    list_display = ["pam_user", "source", "set_by", "reason", "created_at"]
    list_filter = ["source"]
    search_fields = ["pam_user__title", "pam_user__login"]
    fields = ["uid", "pam_user", "source", "set_by", "reason", "created_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "action",
        "actor",
        "actor_kind",
        "object_type",
        "object_repr",
        "folder",
        "source_ip",
    ]
    list_filter = ["action", "actor_kind", "created_at"]
    search_fields = ["action", "object_repr", "object_uid", "actor__username"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "action",
        "actor",
        "actor_kind",
        "object_type",
        "object_uid",
        "object_repr",
        "folder",
        "source_ip",
        "details",
    ]
