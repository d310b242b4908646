"""`users[].rotation` in `pam import`: Keeper-style rotation settings for imported PAM Users.

    "rotation": {"configuration": "<title or uid>", "schedule": {"type": "ON_DEMAND"},
                 "complexity": "32,5,5,5,5[,SYMBOLS]", "enabled": true}

`schedule` may also be the text "config" (use the configuration's default schedule). A key left
out takes the default: on-demand schedule, complexity 32,5,5,5,5 with AWS's symbols, enabled.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from rotation.models import RotationSettings
from rotation.passwords import Complexity, ComplexityError, parse_complexity
from rotation.rotation_settings import rotation_settings_save
from rotation.schedules import ScheduleError, normalize_schedule
from vault.importer import CONFIGURATION_FIELD_CLEANERS, USER_EXTENSIONS, ImportContext
from vault.models import PamUser

KEYS = ("configuration", "schedule", "complexity", "enabled")
USE_CONFIG = "config"


class RotationImport:
    def validate(self, value: Any, path: str, context: ImportContext) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: must be an object"]
        errors = [f"{path}.{key}: unknown key" for key in value if key not in KEYS]
        problem = context.configuration_error(value.get("configuration"))
        if problem:
            errors.append(f"{path}.configuration: {problem}")
        schedule = value.get("schedule", {"type": "ON_DEMAND"})
        if schedule != USE_CONFIG:
            try:
                normalize_schedule(schedule)
            except ScheduleError as exc:
                errors.append(f"{path}.schedule: {exc}")
        complexity = value.get("complexity")
        if complexity is not None:
            try:
                if not isinstance(complexity, str):
                    raise ComplexityError('must be text like "32,5,5,5,5"')
                parse_complexity(complexity)
            except ComplexityError as exc:
                errors.append(f"{path}.complexity: {exc}")
        if not isinstance(value.get("enabled", True), bool):
            errors.append(f"{path}.enabled: must be true or false")
        return errors

    def apply(self, record: PamUser, value: dict, context: ImportContext) -> None:
        config = context.configuration(value["configuration"])
        schedule = value.get("schedule", {"type": "ON_DEMAND"})
        use_config = schedule == USE_CONFIG
        normalized = {"type": "ON_DEMAND"} if use_config else normalize_schedule(schedule)
        complexity = (
            parse_complexity(value["complexity"]) if value.get("complexity") else Complexity()
        )
        enabled = value.get("enabled", True)
        current = RotationSettings.objects.filter(pam_user=record).first()
        if current is not None and _same(
            current, config, normalized, use_config, complexity, enabled
        ):
            return
        rotation_settings_save(
            record=record,
            configuration=config,
            schedule=normalized,
            use_configuration_schedule=use_config,
            complexity=complexity,
            enabled=enabled,
            actor_kind=context.actor_kind,
        )


def _same(rs: RotationSettings, config, schedule, use_config, complexity, enabled) -> bool:
    return (
        rs.configuration_id == config.pk
        and rs.schedule == schedule
        and rs.use_configuration_schedule == use_config
        and rs.complexity_text == complexity.as_text()
        and rs.enabled == enabled
    )


def clean_schedule(value: Any) -> dict:
    """A configuration's default rotation schedule, normalised, or a ValidationError."""
    try:
        return normalize_schedule(value)
    except ScheduleError as exc:
        raise ValidationError(str(exc)) from None


def install() -> None:
    USER_EXTENSIONS["rotation"] = RotationImport()
    CONFIGURATION_FIELD_CLEANERS["default_rotation_schedule"] = clean_schedule
