"""The secrets API's endpoint, `/aws/secretsmanager/` (vault/root_urls.py includes every app's
`urls` module). Without the trailing slash it answers too: botocore posts to the endpoint URL's
own path, so an endpoint_url given without the slash must not meet APPEND_SLASH's redirect,
which no SDK follows for a POST."""

from django.urls import re_path

from secretsapi import views

urlpatterns = [
    re_path(r"^aws/secretsmanager/?$", views.endpoint, name="secretsapi_endpoint"),
]
