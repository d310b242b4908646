from django import template

from rotation.panel import panel_context

register = template.Library()


@register.inclusion_tag("rotation/_panel.html", takes_context=True)
def rotation_panel(context, record, member):
    data = panel_context(record, member)
    data["request"] = context.get("request")
    data["csrf_token"] = context.get("csrf_token")
    return data
