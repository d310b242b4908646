"""People's accounts, from the web: changing your own password (on the account page), and the
superusers' People page (/account/people/): create people, deactivate and reactivate them, reset
their passwords and lift their sign-in lockouts, without the admin console.

Who may: vault.access (require_people_manager); a superuser whose session is not verified by a
two-factor code is sent to give one first, as the admin console does. What happens:
vault.services (person_*, account_password_change), each action one audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_otp import user_has_device

from vault import access, services, timezones
from vault.forms import AccountPasswordForm, PersonCreateForm, PersonPasswordForm, TimeZoneForm
from vault.security import recent_password_required, url_with_next
from vault.twofactor import account_context

# --- your own password -------------------------------------------------------------------------


@login_required
@require_POST
@never_cache
def account_password(request: HttpRequest) -> HttpResponse:
    form = AccountPasswordForm(request.POST, user=request.user)
    if form.is_valid():
        # authenticate() rather than check_password(): wrong current passwords count towards
        # the sign-in lockout (django-axes), as on the "confirm your password" page.
        checked = authenticate(
            request,
            username=request.user.get_username(),
            password=form.cleaned_data["current_password"],
        )
        if checked is not None and checked.pk == request.user.pk:
            services.account_password_change(
                user=request.user, password=form.new_password(), request=request
            )
            # The new hash would sign this session out too; it stays, the others end.
            update_session_auth_hash(request, request.user)
            messages.success(
                request,
                "Your password is changed. Your other sessions, if any, are signed out.",
            )
            return redirect("account")
        form.add_error("current_password", "That is not your current password.")
    messages.error(request, "Your password was not changed; see the errors below.")
    context = {**account_context(request), "password_form": form}
    return render(request, "vault/profile.html", context)


@login_required
@require_POST
def account_time_zone(request: HttpRequest) -> HttpResponse:
    form = TimeZoneForm(request.POST, browser_zone=request.COOKIES.get(timezones.COOKIE, ""))
    if form.is_valid():
        chosen = form.cleaned_data["time_zone"]
        services.preference_set_time_zone(user=request.user, time_zone=chosen)
        timezones.remember_time_zone(request, chosen)
        messages.success(
            request,
            f"Times are now shown in {chosen}."
            if chosen
            else "Times now follow your browser's time zone.",
        )
        return redirect("account")
    messages.error(request, "Your time zone was not changed; see the error below.")
    context = {**account_context(request), "time_zone_form": form}
    return render(request, "vault/profile.html", context)


# --- the People page ---------------------------------------------------------------------------


def people_manager_required(view: Callable) -> Callable:
    """Under login_required and the method check: 403 for anyone but a superuser, then (for a superuser whose session
    has no verified code) the code page or two-factor set-up, as the admin console does; POSTs
    also need the password entered recently. All before the view looks at anything."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        access.require_people_manager(request.user)
        if not access.superuser_verified(request.user):
            back = request.get_full_path() if request.method == "GET" else reverse("people")
            if user_has_device(request.user):
                return redirect(url_with_next("twofactor_verify", back))
            messages.info(request, "The People page needs two-factor sign-in: set it up first.")
            return redirect(url_with_next("twofactor_setup", back))
        if request.method == "POST":
            return recent_password_required(return_to="people")(view)(request, *args, **kwargs)
        return view(request, *args, **kwargs)

    return wrapped


def _lockouts() -> dict[str, dict]:
    """{username: {"failures": n, "locked": bool}} for every username with unexpired failed
    sign-ins, as django-axes counts them (one row per username and address)."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = (
        AccessAttempt.objects.filter(attempt_time__gte=since)
        .values("username")
        .annotate(worst=Max("failures_since_start"))
    )
    return {
        row["username"]: {
            "failures": row["worst"],
            "locked": row["worst"] >= settings.AXES_FAILURE_LIMIT,
        }
        for row in rows
        if row["username"]
    }


def _people_page(
    request: HttpRequest,
    create_form: PersonCreateForm | None = None,
    *,
    status: int = 200,
    reset_for: str = "",
    reset_form: PersonPasswordForm | None = None,
) -> HttpResponse:
    lockouts = _lockouts()
    people = list(get_user_model().objects.order_by("username"))
    for person in people:
        person.lockout = lockouts.get(person.get_username())
        person.reset_form = (
            reset_form if reset_form is not None and person.get_username() == reset_for else None
        ) or PersonPasswordForm(prefix=f"reset-{person.pk}")
    context = {
        "people": people,
        "create_form": create_form or PersonCreateForm(),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "locked_count": sum(1 for p in people if p.lockout and p.lockout["locked"]),
    }
    return render(request, "vault/people.html", context, status=status)


def _shown_once(request: HttpRequest, person, password: str, what: str) -> HttpResponse:
    """The temporary password, on a page that is never cached; the only place it is shown."""
    response = render(
        request,
        "vault/people_password.html",
        {"person": person, "password": password, "what": what},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
@people_manager_required
def people(request: HttpRequest) -> HttpResponse:
    return _people_page(request)


@login_required
@require_POST
@never_cache
@people_manager_required
def person_create(request: HttpRequest) -> HttpResponse:
    form = PersonCreateForm(request.POST)
    if form.is_valid():
        try:
            person, temporary = services.person_create(
                username=form.cleaned_data["username"],
                password=form.new_password(),
                actor=request.user,
                request=request,
            )
        except IntegrityError:
            form.add_error("username", "Someone already has this username.")
        else:
            if temporary:
                return _shown_once(request, person, temporary, "created")
            messages.success(request, f"Created {person.get_username()}.")
            return redirect("people")
    messages.error(request, "Nobody was created; see the errors below.")
    return _people_page(request, form)


@login_required
@require_POST
@people_manager_required
def person_deactivate(request: HttpRequest, username: str) -> HttpResponse:
    person = access.person_for_people_manager(request.user, username)
    try:
        services.person_deactivate(person=person, actor=request.user, request=request)
    except services.PersonError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Deactivated {person.get_username()}: they can no longer sign in."
        )
    return redirect("people")


@login_required
@require_POST
@people_manager_required
def person_reactivate(request: HttpRequest, username: str) -> HttpResponse:
    person = access.person_for_people_manager(request.user, username)
    services.person_reactivate(person=person, actor=request.user, request=request)
    messages.success(request, f"Reactivated {person.get_username()}: they can sign in again.")
    return redirect("people")


@login_required
@require_POST
@never_cache
@people_manager_required
def person_password(request: HttpRequest, username: str) -> HttpResponse:
    person = access.person_for_people_manager(request.user, username)
    form = PersonPasswordForm(request.POST, person=person, prefix=f"reset-{person.pk}")
    if not form.is_valid():
        messages.error(
            request, f"The password of {person.get_username()} was not changed; see below."
        )
        return _people_page(request, reset_for=person.get_username(), reset_form=form)
    temporary = services.person_reset_password(
        person=person, password=form.new_password(), actor=request.user, request=request
    )
    if person.pk == request.user.pk:
        update_session_auth_hash(request, person)  # resetting your own keeps you signed in
    if temporary:
        return _shown_once(request, person, temporary, "reset")
    messages.success(
        request, f"Set a new password for {person.get_username()}; their sessions are signed out."
    )
    return redirect("people")


@login_required
@require_POST
@people_manager_required
def person_unlock(request: HttpRequest, username: str) -> HttpResponse:
    person = access.person_for_people_manager(request.user, username)
    services.person_unlock(person=person, actor=request.user, request=request)
    messages.success(request, f"{person.get_username()} may sign in again from every address.")
    return redirect("people")
