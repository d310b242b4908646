"""The account pages: /account/ (profile, your password, two-factor sign-in, password
confirmation) and the superusers' People page (/account/people/)."""

from django.urls import path

from vault import people, twofactor

urlpatterns = [
    path("", twofactor.account, name="account"),
    path("password/", people.account_password, name="account_password"),
    path("time-zone/", people.account_time_zone, name="account_time_zone"),
    path("confirm/", twofactor.account_confirm, name="account_confirm"),
    path("2fa/setup/", twofactor.twofactor_setup, name="twofactor_setup"),
    path("2fa/verify/", twofactor.twofactor_verify, name="twofactor_verify"),
    path(
        "2fa/recovery-codes/",
        twofactor.twofactor_recovery_codes,
        name="twofactor_recovery_codes",
    ),
    path("2fa/disable/", twofactor.twofactor_disable, name="twofactor_disable"),
    path("people/", people.people, name="people"),
    path("people/new/", people.person_create, name="person_create"),
    path("people/<str:username>/deactivate/", people.person_deactivate, name="person_deactivate"),
    path("people/<str:username>/reactivate/", people.person_reactivate, name="person_reactivate"),
    path("people/<str:username>/password/", people.person_password, name="person_password"),
    path("people/<str:username>/unlock/", people.person_unlock, name="person_unlock"),
]
