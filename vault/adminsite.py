"""The admin console's app config: Django's admin, whose default site is
vault.twofactor.VaultAdminSite (superusers need a verified two-factor session).

Kept apart from vault/twofactor.py because INSTALLED_APPS imports this module before any
model can be loaded; the site class is named as a string and imported later.
"""

from django.contrib.admin.apps import AdminConfig


class VaultAdminConfig(AdminConfig):
    default_site = "vault.twofactor.VaultAdminSite"
