"""The account pages: /account/ (profile, two-factor sign-in, password confirmation)."""

from django.urls import path

from vault import twofactor

urlpatterns = [
    path("", twofactor.account, name="account"),
    path("confirm/", twofactor.account_confirm, name="account_confirm"),
    path("2fa/setup/", twofactor.twofactor_setup, name="twofactor_setup"),
    path("2fa/verify/", twofactor.twofactor_verify, name="twofactor_verify"),
    path(
        "2fa/recovery-codes/",
        twofactor.twofactor_recovery_codes,
        name="twofactor_recovery_codes",
    ),
    path("2fa/disable/", twofactor.twofactor_disable, name="twofactor_disable"),
]
