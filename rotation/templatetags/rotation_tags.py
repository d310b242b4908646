from django import template

from rotation.models import RotationSettings
from rotation.panel import panel_context

register = template.Library()


@register.inclusion_tag("rotation/_panel.html", takes_context=True)
def rotation_panel(context, record, member):
    data = panel_context(record, member)
    data["request"] = context.get("request")
    data["csrf_token"] = context.get("csrf_token")
    return data


@register.inclusion_tag("rotation/_configuration_panel.html", takes_context=True)
def configuration_panel(context, config, can_edit):
    request = context.get("request")
    test = None
    if request is not None:
        # The result of the last Test connection, shown once, on this configuration only.
        stored = request.session.get("connection_test")
        if stored and stored.get("uid") == config.uid:
            test = request.session.pop("connection_test")
    return {
        "config": config,
        "can_edit": can_edit,
        "test": test,
        "settings_count": RotationSettings.objects.filter(configuration=config).count(),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }
