"""The pages where an application's administrators manage its client credentials for the
Secrets Manager-compatible API: the list, create (the secret is shown once) and revoke. Each
view's first line resolves the application through secretsapi/credentials.py's access helper
(vault/access.py's rule: 404 for anyone who does not administer it)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from secretsapi import credentials
from secretsapi.credentials import CredentialError
from vault import access
from vault.models import Application


class CredentialForm(forms.Form):
    name = forms.CharField(
        required=False,
        max_length=credentials.NAME_MAX,
        help_text="What uses it, e.g. “billing service, production”.",
    )
    expires_days = forms.CharField(
        required=False,
        label="Expires in (days)",
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
        help_text=f"1 to {credentials.EXPIRES_DAYS_MAX}; empty: it does not expire.",
    )
    allowed_networks = forms.CharField(
        required=False,
        label="Allowed networks",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "10.0.0.0/8\n2001:db8::/32"}),
        help_text="One address or CIDR block per line; empty: any address.",
    )

    def _checked(self, parse, value):
        try:
            return parse(value)
        except CredentialError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_expires_days(self):
        return self._checked(credentials.parse_expires_days, self.cleaned_data["expires_days"])

    def clean_allowed_networks(self):
        return self._checked(credentials.parse_networks, self.cleaned_data["allowed_networks"])


def _list_page(
    request: HttpRequest, application: Application, form: CredentialForm | None = None, status=200
) -> HttpResponse:
    context = {
        "application": application,
        "credentials": application.client_credentials.select_related("created_by", "revoked_by"),
        "form": form or CredentialForm(),
        "endpoint_url": credentials.endpoint_url(),
    }
    return render(request, "secretsapi/credentials.html", context, status=status)


@login_required
@require_GET
def app_credentials(request: HttpRequest, app_uid: str) -> HttpResponse:
    application = access.application_for_administrator(request.user, app_uid)
    return _list_page(request, application)


@login_required
@require_POST
@never_cache
def app_credential_create(request: HttpRequest, app_uid: str) -> HttpResponse:
    application = access.application_for_administrator(request.user, app_uid)
    form = CredentialForm(request.POST)
    if form.is_valid():
        try:
            credential, secret = credentials.credential_create(
                application=application,
                name=form.cleaned_data["name"],
                expires_days=form.cleaned_data["expires_days"],
                allowed_networks=form.cleaned_data["allowed_networks"],
                actor=request.user,
                request=request,
            )
        except CredentialError as exc:
            form.add_error("name", str(exc))
        else:
            context = {
                "application": application,
                "credential": credential,
                "secret": secret,
                "endpoint_url": credentials.endpoint_url(),
                "region": credentials.EXAMPLE_REGION,
            }
            response = render(request, "secretsapi/credential_created.html", context)
            response["Cache-Control"] = "no-store"  # the only place the secret is shown
            return response
    messages.error(request, "No credential was created; see the errors below.")
    return _list_page(request, application, form, status=400)


@login_required
@require_POST
def app_credential_revoke(request: HttpRequest, app_uid: str, access_key_id: str) -> HttpResponse:
    credential = credentials.credential_for_administrator(request.user, app_uid, access_key_id)
    if credentials.credential_revoke(credential=credential, actor=request.user, request=request):
        messages.success(
            request,
            f"Revoked {credential.access_key_id}: the API refuses it from the next request.",
        )
    else:
        messages.info(request, credentials.already_revoked_message(credential))
    return redirect("app_credentials", app_uid=credential.application.uid)
