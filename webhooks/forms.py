"""The form that adds a webhook (folder or global)."""

from __future__ import annotations

from django import forms

from webhooks.models import EVENT_TYPES
from webhooks.outbound import MAX_URL_LENGTH, validate_webhook_url

DEFAULT_EVENTS = ["rotation.failed", "rotation.may_be_live"]


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=MAX_URL_LENGTH,
        validators=[validate_webhook_url],
        help_text="Where the vault posts signed events (https://, or an allowed host).",
    )
    events = forms.MultipleChoiceField(
        choices=list(EVENT_TYPES.items()),
        widget=forms.CheckboxSelectMultiple,
        initial=DEFAULT_EVENTS,
    )
