"""The root URLconf (ROOT_URLCONF): the `urls` (and `manage_urls`) module of every app of this
repository, in INSTALLED_APPS order, lowest layer first.

It names no app. An app adds its pages by having a `urls` module, as it adds `pam` subcommands
by having a `cli` module (vault/cli.py), so the vault imports nothing above it and adding an app
above changes nothing here (docs/architecture.md, "Layers").
"""

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.urls import include, path
from django.utils.module_loading import module_has_submodule

# The product's own error pages, as production (DEBUG off, `make run` included) shows them.
handler400 = "vault.views.bad_request"
handler403 = "vault.views.permission_denied"
handler404 = "vault.views.page_not_found"
handler500 = "vault.views.server_error"


# The URLconf modules an app may have. An app that serves software as well as people (the
# secrets API: SigV4-signed calls, no session or CSRF) keeps the people's pages in
# `manage_urls`, so each module has one audience and one set of rules.
URLCONF_MODULES = ("urls", "manage_urls")


def app_urlconfs() -> list[str]:
    """The URLconf modules (URLCONF_MODULES) of the installed apps that live in this
    repository (not Django's or a library's: django.contrib.auth has a `urls` module too)."""
    return [
        f"{config.name}.{module}"
        for config in apps.get_app_configs()
        if Path(config.path).parent == Path(settings.BASE_DIR)
        for module in URLCONF_MODULES
        if module_has_submodule(config.module, module)
    ]


urlpatterns = [path("", include(urlconf)) for urlconf in app_urlconfs()]
# Single sign-on's sign-in and callback (mozilla-django-oidc's views, answering 404 while
# OIDC_RP_CLIENT_ID is unset).
urlpatterns.append(path("oidc/", include("vault.oidc")))
