"""The people's pages of the secrets API: an application's client credentials. (The endpoint
the applications call is secretsapi/urls.py's; vault/root_urls.py includes both.)"""

from django.urls import path

from secretsapi import manage_views

urlpatterns = [
    path(
        "applications/<str:app_uid>/credentials/",
        manage_views.app_credentials,
        name="app_credentials",
    ),
    path(
        "applications/<str:app_uid>/credentials/create/",
        manage_views.app_credential_create,
        name="app_credential_create",
    ),
    path(
        "applications/<str:app_uid>/credentials/<str:access_key_id>/revoke/",
        manage_views.app_credential_revoke,
        name="app_credential_revoke",
    ),
]
