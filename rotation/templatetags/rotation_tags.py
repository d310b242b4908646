import json

from django import template
from django.utils import timezone

from rotation import auditlog, dashboard
from rotation.connection import connection_test_state, known_policy
from rotation.models import RotationSettings
from rotation.panel import panel_context
from rotation.passwords import Complexity, ComplexityError, effective_complexity
from rotation.schedules import describe_schedule
from vault.access import has_permission, member_policy_allows, policy_allows
from vault.durations import wait_text

register = template.Library()


@register.inclusion_tag("rotation/_panel.html", takes_context=True)
def rotation_panel(context, record, member):
    data = panel_context(record, member)
    data["request"] = context.get("request")
    data["csrf_token"] = context.get("csrf_token")
    return data


_CLASSES = (
    ("min_upper", "upper"),
    ("min_lower", "lower"),
    ("min_digits", "digits"),
    ("min_symbols", "symbols"),
)


@register.simple_tag
def generated_complexity(rs: RotationSettings) -> dict:
    """What a rotation of `rs` generates: its complexity raised to the AWS account's password
    policy, as the configuration's last Test connection saw it (the gateway reads the policy
    again each time and raises the same way, rotation/passwords.py). "raised" says what the
    settings ask for where the policy asks more; "error" when the two cannot be met at once."""
    asked = Complexity(
        length=rs.length,
        min_upper=rs.min_upper,
        min_lower=rs.min_lower,
        min_digits=rs.min_digits,
        min_symbols=rs.min_symbols,
        symbols=rs.symbols,
    )
    known = known_policy(rs.configuration)
    shown = {"complexity": asked, "known": known, "raised": "", "error": ""}
    if known is None:
        return shown
    try:
        generated = effective_complexity(asked, known.policy)
    except ComplexityError as exc:
        return {**shown, "error": str(exc)}
    asks = [f"{asked.length} characters"] if generated.length != asked.length else []
    asks += [
        f"{getattr(asked, field)} {label}"
        for field, label in _CLASSES
        if getattr(generated, field) != getattr(asked, field)
    ]
    raised = ", ".join(asks[:-1]) + (" and " if len(asks) > 1 else "") + (asks[-1] if asks else "")
    return {**shown, "complexity": generated, "raised": raised}


@register.inclusion_tag("rotation/_configuration_panel.html", takes_context=True)
def configuration_panel(context, config, can_edit):
    # The latest Test connection (run by the gateway); the page polls while it waits.
    return {
        **connection_test_state(config),
        "config": config,
        "can_edit": can_edit,
        "settings_count": RotationSettings.objects.filter(configuration=config).count(),
        # Discover IAM users: for those who may use the configuration and the "discover" policy.
        "can_discover": can_edit
        and policy_allows(getattr(context.get("request"), "user", None), "discover"),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }


@register.inclusion_tag("rotation/_folder_panel.html", takes_context=True)
def folder_rotation_panel(context, folder, member):
    # No query: the folder page's query budget stays as it is.
    return {
        "folder": folder,
        "can_edit": has_permission(member, "can_edit") and member_policy_allows(member, "rotate"),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }


@register.inclusion_tag("rotation/_dashboard.html", takes_context=True)
def rotation_dashboard(context):
    request = context.get("request")
    user = context.get("user") or getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"dash": None}
    return {"dash": dashboard.rotation_dashboard(user=user), "request": request}


@register.filter
def schedule_words(schedule) -> str:
    """A stored schedule in words (the PAM Configuration page's default schedule), or why it
    no longer reads."""
    return describe_schedule(schedule or {"type": "ON_DEMAND"})


@register.filter
def json_text(value) -> str:
    """Audit details as JSON (they never hold a secret); the template escapes the text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@register.filter
def audit_sentence(event) -> str:
    """The audit event as one sentence (plain text: the template escapes it)."""
    return auditlog.event_sentence(event)


@register.filter
def audit_details(event) -> list[tuple[str, str]]:
    return auditlog.event_details(event)


@register.filter
def object_type_label(model_name: str) -> str:
    return auditlog.object_type_label(model_name)


@register.inclusion_tag("rotation/_nav.html", takes_context=True)
def rotation_nav(context):
    """The rotation app's links in the main navigation (templates/base.html): the audit log,
    for those who may read it. One query per page, none for superusers."""
    request = context.get("request")
    user = context.get("user") or getattr(request, "user", None)
    return {
        "can_audit": auditlog.may_read_audit_log(user),
        "path": getattr(request, "path", ""),
    }


@register.filter
def wait_from_now(moment) -> str:
    """How long until `moment`, in words ("5 minutes"); "0 seconds" once it has passed."""
    return wait_text((moment - timezone.now()).total_seconds())


@register.inclusion_tag("rotation/_record_form.html", takes_context=True)
def record_form_rotation(context, folder, record, member, part):
    """What the vault's record form (templates/vault/record_form.html) shows of rotation:
    part "rotate", the Rotate-instead button of the edit form's warning that a typed password
    changes the vault only; part "generate", the password generator's button and where its
    complexity comes from (rotation/generator.py)."""
    rs = None
    if record is not None:
        rs = RotationSettings.objects.filter(pam_user=record).select_related("configuration")
        rs = rs.first()
    may_rotate = has_permission(member, "can_edit") and member_policy_allows(member, "rotate")
    return {
        "part": part,
        "folder": folder,
        "record": record,
        "rotation_settings": rs,
        "can_configure": has_permission(member, "can_edit")
        and member_policy_allows(member, "configure_rotation"),
        # Rotate instead: only where the record's Rotate button would work.
        "may_rotate_instead": bool(rs and may_rotate and record.managed and rs.enabled),
        "csrf_token": context.get("csrf_token"),
    }
