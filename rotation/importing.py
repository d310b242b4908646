"""Rotation settings in imports, and in exports.

`pam import` (``context.format == "native"``), ``users[].rotation``:

    "rotation": {"configuration": "<title or uid>", "configuration_folder": "<folder name>",
                 "method": "iam_user", "schedule": {"type": "ON_DEMAND"},
                 "complexity": "32,5,5,5,5[,SYMBOLS]", "key_deactivate_after_hours": 24,
                 "key_delete_after_hours": 168, "enabled": true}

`schedule` may also be the text "config" (use the configuration's default schedule);
`configuration_folder` (optional) picks the configuration of that title in that folder. A key
left out takes the default: method iam_user (the console password; iam_access_key rotates the
access key), on-demand schedule, complexity 32,5,5,5,5 with AWS's symbols, grace periods of 24
and 168 hours (the access-key method's), enabled.

`pam project import` (``context.format == "keeper"``): the value vault/import_keeper.py makes
from Commander's ``rotation_settings`` (method iam_user):

    {"configuration": ..., "configuration_folder": ..., "schedule": {...},
     "password_complexity": "32,5,5,5,5", "enabled": "on"|"off"|"default", "rotation_off": true}

with Commander's meaning: "on"/"off" enable or disable, "default" (or no `enabled`) keeps
what is stored (a new record's settings are enabled); no `schedule` keeps the stored
schedule, and a new record's follows the configuration's default; no `password_complexity`
keeps the stored one (new: 32,5,5,5,5). ``rotation_off`` (the configuration's rotation is
"off") saves the settings disabled. (A record that is not managed keeps its settings: the
record's own ``managed`` flag stops every rotation, see vault/import_keeper.py.)

Exports (vault/exporter.py): ``export_rotation`` gives each record's settings in the native
form above, every key written.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from rotation.models import RotationSettings
from rotation.passwords import Complexity, ComplexityError, parse_complexity
from rotation.rotation_settings import (
    METHOD_NAMES,
    grace_hours_problem,
    rotation_settings_save,
    settings_complexity,
)
from rotation.schedules import ScheduleError, normalize_schedule
from vault.exporter import USER_EXPORTERS
from vault.importer import CONFIGURATION_FIELD_CLEANERS, USER_EXTENSIONS, ImportContext
from vault.models import PamUser

KEYS = (
    "configuration",
    "configuration_folder",
    "method",
    "schedule",
    "complexity",
    "key_deactivate_after_hours",
    "key_delete_after_hours",
    "enabled",
)
GRACE_KEYS = ("key_deactivate_after_hours", "key_delete_after_hours")
USE_CONFIG = "config"
DEFAULT_SCHEDULE = {"type": "ON_DEMAND"}


class RotationImport:
    def validate(self, value: Any, path: str, context: ImportContext) -> list[str]:
        if context.format == "keeper":
            return self._validate_keeper(value, path, context)
        if not isinstance(value, dict):
            return [f"{path}: must be an object"]
        errors = [f"{path}.{key}: unknown key" for key in value if key not in KEYS]
        problem = context.configuration_error(
            value.get("configuration"), value.get("configuration_folder")
        )
        if problem:
            errors.append(f"{path}.configuration: {problem}")
        schedule = value.get("schedule", DEFAULT_SCHEDULE)
        if schedule != USE_CONFIG:
            errors += _schedule_errors(schedule, f"{path}.schedule")
        complexity = value.get("complexity")
        if complexity is not None:
            errors += _complexity_errors(complexity, f"{path}.complexity")
        if not isinstance(value.get("enabled", True), bool):
            errors.append(f"{path}.enabled: must be true or false")
        if value.get("method", "iam_user") not in METHOD_NAMES:
            errors.append(f"{path}.method: must be one of {', '.join(METHOD_NAMES)}")
        for key in GRACE_KEYS:
            problem = grace_hours_problem(value[key]) if key in value else None
            if problem:
                errors.append(f"{path}.{key}: {problem}")
        return errors

    def _validate_keeper(self, value: dict, path: str, context: ImportContext) -> list[str]:
        errors = []
        problem = context.configuration_error(
            value.get("configuration"), value.get("configuration_folder")
        )
        if problem:
            errors.append(f"{path}: {problem}")
        if "schedule" in value:
            errors += _schedule_errors(value["schedule"], f"{path}.schedule")
        if value.get("password_complexity") is not None:
            errors += _complexity_errors(
                value["password_complexity"], f"{path}.password_complexity"
            )
        return errors

    def apply(self, record: PamUser, value: dict, context: ImportContext) -> None:
        current = (
            RotationSettings.objects.filter(pam_user=record).select_related("configuration").first()
        )
        if context.format == "keeper":
            wanted = self._keeper_wanted(record, value, context, current)
        else:
            wanted = self._native_wanted(value, context)
        if wanted is None:
            return
        config, normalized, use_config, complexity, enabled = wanted
        method = self._method_wanted(value, context)
        if current is not None and _same(
            current, config, normalized, use_config, complexity, enabled, method
        ):
            return
        rotation_settings_save(
            record=record,
            configuration=config,
            schedule=normalized,
            use_configuration_schedule=use_config,
            complexity=complexity,
            enabled=enabled,
            **method,
            actor_kind=context.actor_kind,
        )
        if current is None:
            action = "create"
        elif current.enabled and not enabled:
            action = "disable"
        else:
            action = "update"
        context.change(
            action,
            "rotation settings",
            record.title,
            folder=record.folder.name,
            configuration=config.title,
            enabled=enabled,
        )

    def _method_wanted(self, value: dict, context: ImportContext) -> dict:
        """The method and the access key's grace periods: native, a key left out is the
        default (console password, 24 h, 168 h); Commander's format has none (kept)."""
        if context.format == "keeper":
            return {}
        return {
            "method": value.get("method", "iam_user"),
            **{
                key: value.get(key, RotationSettings._meta.get_field(key).default)
                for key in GRACE_KEYS
            },
        }

    def _native_wanted(self, value: dict, context: ImportContext):
        config = context.configuration(value["configuration"], value.get("configuration_folder"))
        schedule = value.get("schedule", DEFAULT_SCHEDULE)
        use_config = schedule == USE_CONFIG
        normalized = DEFAULT_SCHEDULE if use_config else normalize_schedule(schedule)
        complexity = (
            parse_complexity(value["complexity"]) if value.get("complexity") else Complexity()
        )
        return config, normalized, use_config, complexity, value.get("enabled", True)

    def _keeper_wanted(self, record, value: dict, context: ImportContext, current):
        config = context.configuration(value["configuration"], value.get("configuration_folder"))
        if "schedule" in value:
            normalized, use_config = normalize_schedule(value["schedule"]), False
        elif current is not None:
            normalized, use_config = current.schedule, current.use_configuration_schedule
        else:
            normalized, use_config = DEFAULT_SCHEDULE, True
        if value.get("password_complexity"):
            complexity = parse_complexity(value["password_complexity"])
        elif current is not None:
            complexity = settings_complexity(current)
        else:
            complexity = Complexity()
        enabled = {"on": True, "off": False}.get(value.get("enabled"))
        if enabled is None:
            enabled = current.enabled if current is not None else True
        if value.get("rotation_off"):
            enabled = False
        return config, normalized, use_config, complexity, enabled


def _schedule_errors(schedule: Any, where: str) -> list[str]:
    try:
        normalize_schedule(schedule)
    except ScheduleError as exc:
        return [f"{where}: {exc}"]
    return []


def _complexity_errors(complexity: Any, where: str) -> list[str]:
    try:
        if not isinstance(complexity, str):
            raise ComplexityError('must be text like "32,5,5,5,5"')
        parse_complexity(complexity)
    except ComplexityError as exc:
        return [f"{where}: {exc}"]
    return []


def _same(
    rs: RotationSettings, config, schedule, use_config, complexity, enabled, method: dict
) -> bool:
    return (
        all(getattr(rs, key) == v for key, v in method.items())
        and rs.configuration_id == config.pk
        and rs.schedule == schedule
        and rs.use_configuration_schedule == use_config
        and rs.complexity_text == complexity.as_text()
        and rs.enabled == enabled
    )


def clean_schedule(value: Any) -> dict:
    """A configuration's default rotation schedule, normalised, or a ValidationError whose
    code is the schedule key at fault ("cron", "time"...; the schedule widget puts the message
    beside that field, vault/schedule_widget.py)."""
    try:
        return normalize_schedule(value)
    except ScheduleError as exc:
        raise ValidationError(str(exc), code=exc.field or "schedule") from None


def export_rotation(records: list[PamUser], fmt: str = "native") -> dict[int, dict]:
    """Each record's rotation settings (by record pk): in the native import form, every key
    written, so that importing them gives the same settings; or (`fmt` "keeper") as
    Commander's rotation_settings with the configuration they rotate through."""
    found = {}
    rows = RotationSettings.objects.filter(pam_user__in=records).select_related(
        "configuration__folder"
    )
    for rs in rows.iterator(chunk_size=500):
        where = {
            "configuration": rs.configuration.title,
            "configuration_folder": rs.configuration.folder.name,
        }
        if fmt == "keeper":
            settings = {"rotation": "iam_user", "enabled": "on" if rs.enabled else "off"}
            if not rs.use_configuration_schedule:  # left out: the configuration's default
                settings["schedule"] = rs.schedule or DEFAULT_SCHEDULE
            complexity = settings_complexity(rs)
            numbers = (
                complexity.length,
                complexity.min_upper,
                complexity.min_lower,
                complexity.min_digits,
                complexity.min_symbols,
            )
            settings["password_complexity"] = (
                ",".join(map(str, numbers))  # Commander's five numbers
                if complexity.symbols == Complexity().symbols
                else complexity.as_text()
            )
            found[rs.pam_user_id] = where | {"rotation_settings": settings}
            continue
        found[rs.pam_user_id] = where | {
            "method": rs.method,
            "schedule": USE_CONFIG if rs.use_configuration_schedule else rs.schedule,
            "complexity": rs.complexity_text,
            "key_deactivate_after_hours": rs.key_deactivate_after_hours,
            "key_delete_after_hours": rs.key_delete_after_hours,
            "enabled": rs.enabled,
        }
    return found


def install() -> None:
    USER_EXTENSIONS["rotation"] = RotationImport()
    CONFIGURATION_FIELD_CLEANERS["default_rotation_schedule"] = clean_schedule
    USER_EXPORTERS["rotation"] = export_rotation
