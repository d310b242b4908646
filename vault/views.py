"""The vault's pages. Each view resolves its object through vault/access.py on its first line
(404 for outsiders, 403 for a missing permission), calls a service, and renders or redirects."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.deletion import ProtectedError
from django.db.models.functions import Coalesce
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseServerError,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from vault import counting, revealed, security, services
from vault.access import (
    FOLDER_DELETE_NEEDS,
    FOLDER_RENAME_NEEDS,
    configuration_for_user,
    configuration_problem,
    folder_for_user,
    folder_for_user_needing,
    has_permission,
    may_reveal_candidates,
    member_policy_allows,
    member_suggestions,
    record_access_required,
    record_for_user,
    require_policy,
)
from vault.folder_listing import folder_listing
from vault.forms import (
    FOLDER_NAME_TAKEN,
    PERMISSION_LABELS,
    FolderDeleteForm,
    FolderForm,
    FolderRenameForm,
    FolderShareForm,
    MemberAddForm,
    MemberPermissionsForm,
    PamConfigurationForm,
    PamUserForm,
)
from vault.models import (
    ApplicationFolder,
    FolderMember,
    PamConfiguration,
    PamUser,
    PasswordVersion,
    SharedFolder,
)
from vault.search import search_records

CONFIGURATIONS_SHOWN = 50
HISTORY_SHOWN = 50


def _posted(request: HttpRequest):
    # Not `request.POST or None`: an empty submission must still be validated (and fail).
    return request.POST if request.method == "POST" else None


def _permissions(member: FolderMember) -> dict[str, bool]:
    return {
        "can_edit": has_permission(member, "can_edit"),
        "can_manage_records": has_permission(member, "manage_records"),
        "can_manage_users": has_permission(member, "manage_users"),
        "can_share": has_permission(member, "can_share"),
        "can_reveal": member_policy_allows(member, "reveal"),
    }


# --- Sign-in -----------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    authentication_form = security.LoginForm

    def form_valid(self, form):
        response = super().form_valid(form)
        if security.second_factor_pending(self.request):
            # The password was right; the session is not verified until a code is entered.
            return redirect(security.url_with_next("twofactor_verify", self.get_success_url()))
        messages.success(self.request, f"Logged in as {form.get_user().username}.")
        return response


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are logged out.")
        return response


# --- Errors ------------------------------------------------------------------------------------


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = str(exception) if exception and str(exception) else "You may not do this."
    for name, label in PERMISSION_LABELS.items():
        reason = reason.replace(f"“{name}”", f"“{label}” ({name})")
    return render(request, "vault/403.html", {"reason": reason}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "vault/404.html", status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # An address for a host this vault does not answer (ALLOWED_HOSTS), or a malformed request.
    return render(request, "vault/400.html", status=400)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form submitted with a token this session no longer has (it was
    opened before signing in again, or in another session), in the product's words."""
    text = (
        "The form was out of date, so nothing was done: reload the page and try again. "
        "(Its CSRF check protects you from forms sent by other sites.)"
    )
    return render(request, "vault/403.html", {"reason": text, "stale_form": True}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    """The product's 500 page, rendered without the request: the error may be the database's,
    and the page must not need it (no session, no user, no messages)."""
    try:
        return HttpResponseServerError(loader.render_to_string("vault/500.html"))
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        return HttpResponseServerError(
            "Something went wrong on the server. It was logged; try again in a moment.\n",
            content_type="text/plain; charset=utf-8",
        )


# --- Home and folders --------------------------------------------------------------------------


def _count_in_folder(model) -> Coalesce:
    counts = (
        model.objects.filter(folder=OuterRef("folder"))
        .order_by()
        .values("folder")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def _home(request: HttpRequest, form: FolderForm) -> HttpResponse:
    # One query for every folder and its counts, however many folders and records there are.
    memberships = (
        FolderMember.objects.filter(user=request.user)
        .select_related("folder")
        .annotate(
            record_count=counting.record_count(OuterRef("folder")),
            configuration_count=_count_in_folder(PamConfiguration),
        )
        .order_by("folder__name")
    )
    return render(request, "vault/home.html", {"memberships": memberships, "form": form})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return _home(request, FolderForm())


@login_required
@require_POST
def folder_create(request: HttpRequest) -> HttpResponse:
    form = FolderForm(request.POST)
    if form.is_valid():
        try:
            folder = services.folder_create(
                name=form.cleaned_data["name"], owner=request.user, request=request
            )
        except IntegrityError:
            form.add_error("name", FOLDER_NAME_TAKEN)
        else:
            messages.success(request, f"Created the folder “{folder.name}”.")
            return redirect("folder_detail", uid=folder.uid)
    messages.error(request, "The folder was not created; see the error below.")
    return _home(request, form)


@login_required
def folder_detail(request: HttpRequest, uid: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid)
    listing = folder_listing(folder, request.GET)
    configurations = PamConfiguration.objects.filter(folder=folder).select_related("gateway")
    if listing.q:
        configurations = configurations.filter(title__icontains=listing.q)
    # One extra row tells whether there are more, without a second COUNT query.
    configurations = list(configurations.order_by("title")[: CONFIGURATIONS_SHOWN + 1])
    context = {
        "folder": folder,
        "member": member,
        "q": listing.q,
        "listing": listing,
        "page": listing.page,
        "configurations": configurations[:CONFIGURATIONS_SHOWN],
        "more_configurations": len(configurations) > CONFIGURATIONS_SHOWN,
        "rename_form": FolderRenameForm(initial={"name": folder.name}),
        "delete_form": FolderDeleteForm(folder=folder),
        "can_rename_folder": all(has_permission(member, n) for n in FOLDER_RENAME_NEEDS),
        "can_delete_folder": all(has_permission(member, n) for n in FOLDER_DELETE_NEEDS),
        **_permissions(member),
    }
    return render(request, "vault/folder.html", context)


@login_required
@require_POST
def folder_rename(request: HttpRequest, uid: str) -> HttpResponse:
    folder = folder_for_user_needing(request.user, uid, FOLDER_RENAME_NEEDS)
    form = FolderRenameForm(request.POST, folder=folder)
    if form.is_valid():
        old = folder.name
        try:
            with transaction.atomic():
                services.folder_rename(
                    folder=folder,
                    name=form.cleaned_data["name"],
                    actor=request.user,
                    request=request,
                )
        except IntegrityError:
            folder.name = old
            messages.error(request, f"The folder was not renamed: {FOLDER_NAME_TAKEN}")
        else:
            messages.success(request, f"Renamed the folder “{old}” to “{folder.name}”.")
    else:
        messages.error(request, f"The folder was not renamed: {' '.join(form.errors['name'])}")
    return redirect("folder_detail", uid=folder.uid)


@login_required
@require_POST
def folder_delete(request: HttpRequest, uid: str) -> HttpResponse:
    folder = folder_for_user_needing(request.user, uid, FOLDER_DELETE_NEEDS)
    form = FolderDeleteForm(request.POST, folder=folder)
    if not form.is_valid():
        messages.error(
            request, f"The folder was not deleted: {' '.join(form.errors['confirm_name'])}"
        )
        return redirect("folder_detail", uid=folder.uid)
    name = folder.name
    try:
        services.folder_delete(folder=folder, actor=request.user, request=request)
    except ProtectedError as exc:
        reason = services.deletion_refusal_reason(
            exc, "a record of another folder still uses one of its configurations for rotation."
        )
        messages.error(request, f"The folder “{name}” was not deleted: {reason}")
        return redirect("folder_detail", uid=folder.uid)
    messages.success(request, f"Deleted the folder “{name}” with its records and configurations.")
    return redirect("home")


@login_required
def search(request: HttpRequest) -> HttpResponse:
    results = search_records(request.user, request.GET)
    return render(request, "vault/search.html", {"results": results, "q": results.q})


# --- PAM Users ---------------------------------------------------------------------------------


def _record_page(
    request: HttpRequest, record: PamUser, member: FolderMember, **extra
) -> HttpResponse:
    perms = _permissions(member)
    versions, version_count = [], 0
    if perms["can_edit"]:
        history = PasswordVersion.objects.filter(pam_user=record).select_related("set_by")
        versions = list(history.defer("password_enc")[:HISTORY_SHOWN])
        # The newest of each kind is the current one (a password, and an access key's secret).
        seen_kinds: set[str] = set()
        for version in versions:
            version.is_current = version.kind not in seen_kinds
            seen_kinds.add(version.kind)
        version_count = len(versions)
        if version_count == HISTORY_SHOWN:
            version_count = history.count()
    context = {
        "record": record,
        "folder": record.folder,
        "member": member,
        "has_password": record.has_secret("password"),
        "versions": versions,
        "version_count": version_count,
        "revealed_password": None,
        "has_access_key": record.has_secret("access_secret_key"),
        "revealed_access_secret_key": None,
        "revealed_version": None,
        "revealed_version_password": None,
        "revealed_candidates": [],
        "reveal_auto_hide_seconds": max(0, settings.REVEAL_AUTO_HIDE_SECONDS),
        **perms,
        **extra,
    }
    return render(request, "vault/record.html", context)


@login_required
def record_detail(request: HttpRequest, uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid)
    # A reveal that sent the person to confirm their password: done now that they have, so
    # the password shows at once. A visit without confirming forgets it.
    asked, version_uid = revealed.take_asked(request, record.uid)
    if asked and security.password_is_recent(request):
        answer = _resume_reveal(request, uid, version_uid)
        if answer is not None and answer.status_code != 302:
            return answer  # why it was not revealed (the rate limit, a broken value)
        # Revealed and kept for this page, which shows it now rather than redirect to itself.
    # What a Reveal just showed (post/redirect/get): once, and never stored by a cache.
    shown = revealed.take(request, record.uid)
    response = _record_page(request, record, member, **shown)
    if shown:
        add_never_cache_headers(response)
    return response


def _reveal_failed(
    request: HttpRequest, record: PamUser, member: FolderMember, exc: services.RevealError
) -> HttpResponse:
    """The record page (or, for Copy, JSON) saying the password cannot be decrypted. 409: the
    request was fine, the stored value is not; a 500 would hide what to do about it. The
    service already audited the failed reveal, and the rate limiter's transaction commits it."""
    if security.wants_json(request):
        return JsonResponse({"error": "reveal_failed", "message": exc.user_message}, status=409)
    messages.error(request, exc.user_message)
    response = _record_page(request, record, member)
    response.status_code = 409
    return response


def _reveal_address_page(
    request: HttpRequest,
    record: PamUser,
    member: FolderMember,
    *,
    version=None,
    what: str = "the password",
) -> HttpResponse:
    """A GET of a reveal address (typed, bookmarked, or an old tab): reveals are POSTs from
    the record page, so this page says so and offers the button; it reveals nothing. 405, with
    the method that works, for anything that is not a browser."""
    context = {
        "record": record,
        "folder": record.folder,
        "version": version,
        "what": what,
        "action": request.path,
        "can_reveal": member_policy_allows(member, "reveal"),
    }
    response = render(request, "vault/reveal_address.html", context, status=405)
    response["Allow"] = "POST"
    return response


def _resume_reveal(request: HttpRequest, uid: str, version_uid: str | None) -> HttpResponse | None:
    """The reveal asked for before the password was confirmed, now; None when it is no longer
    allowed (a permission or the version gone since): the page then shows nothing revealed."""
    try:
        if version_uid is None:
            return _record_reveal(request, uid=uid)
        return _version_reveal(request, uid=uid, version_uid=version_uid)
    except (Http404, PermissionDenied):
        return None


def _ask_if_unconfirmed(
    request: HttpRequest, member: FolderMember, record: PamUser, version=None
) -> None:
    """A page's reveal that will be sent to confirm the password first is remembered, so the
    record page it comes back to reveals at once (vault/revealed.py). Not for Copy: a script
    cannot write the clipboard after a page load, and the person presses Copy again."""
    allowed = member_policy_allows(member, "reveal")
    if allowed and not security.password_is_recent(request) and not security.wants_json(request):
        revealed.ask(request, record.uid, version.uid if version is not None else None)


@login_required
@never_cache
def record_reveal(request: HttpRequest, uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid)
    if request.method != "POST":
        return _reveal_address_page(request, record, member)
    _ask_if_unconfirmed(request, member, record)
    return _record_reveal(request, uid=uid)


@record_access_required(policy="reveal")
@security.recent_password_required(return_to="record_detail")
@security.reveal_rate_limited
def _record_reveal(request: HttpRequest, uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid)
    try:
        password = services.pam_user_reveal(record=record, actor=request.user, request=request)
    except services.RevealError as exc:
        return _reveal_failed(request, record, member, exc)
    if security.wants_json(request):
        return JsonResponse({"password": password})  # Copy: the current password alone
    # The other passwords AWS may hold (a rotation's pending one), each revealed and audited.
    candidates = []
    if may_reveal_candidates(member):
        candidates = services.pam_user_reveal_candidates(
            record=record, actor=request.user, request=request
        )
    text = "Password revealed"
    if candidates:
        text += f", with {len(candidates)} other password(s) AWS may hold"
    messages.info(request, f"{text}. This was recorded in the audit log.")
    # Post/redirect/get: the record page shows them once (vault/revealed.py).
    revealed.keep(request, record.uid, revealed_password=password, revealed_candidates=candidates)
    return redirect("record_detail", uid=record.uid)


@login_required
@never_cache
def record_reveal_access_key(request: HttpRequest, uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid)
    if request.method != "POST":
        return _reveal_address_page(request, record, member, what="the secret access key")
    return _record_reveal_access_key(request, uid=uid)


@record_access_required(policy="reveal")
@security.recent_password_required(return_to="record_detail")
@security.reveal_rate_limited
def _record_reveal_access_key(request: HttpRequest, uid: str) -> HttpResponse:
    """The current access key's secret, as Reveal and Copy of the password (audited)."""
    record, member = record_for_user(request.user, uid)
    if not record.has_secret("access_secret_key"):
        if security.wants_json(request):
            return JsonResponse(
                {"error": "no_access_key", "message": "This record holds no access key."},
                status=404,
            )
        messages.error(request, "This record holds no access key: nothing was revealed.")
        return redirect("record_detail", uid=record.uid)
    try:
        secret = services.pam_user_reveal_access_key(
            record=record, actor=request.user, request=request
        )
    except services.RevealError as exc:
        return _reveal_failed(request, record, member, exc)
    if security.wants_json(request):
        return JsonResponse({"access_key_id": record.access_key_id, "password": secret})
    messages.info(
        request,
        f"Secret access key of {record.access_key_id} revealed. This was recorded in the "
        "audit log.",
    )
    revealed.keep(request, record.uid, revealed_access_secret_key=secret)
    return redirect("record_detail", uid=record.uid)


@login_required
@never_cache
def version_reveal(request: HttpRequest, uid: str, version_uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid, need="can_edit")
    version = get_object_or_404(PasswordVersion, uid=version_uid, pam_user=record)
    if request.method != "POST":
        return _reveal_address_page(request, record, member, version=version)
    _ask_if_unconfirmed(request, member, record, version)
    return _version_reveal(request, uid=uid, version_uid=version_uid)


@record_access_required("can_edit", policy="reveal")
@security.recent_password_required(return_to="record_detail")
@security.reveal_rate_limited
def _version_reveal(request: HttpRequest, uid: str, version_uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid, need="can_edit")
    version = get_object_or_404(PasswordVersion, uid=version_uid, pam_user=record)
    try:
        password = services.password_version_reveal(
            version=version, actor=request.user, request=request
        )
    except services.RevealError as exc:
        return _reveal_failed(request, record, member, exc)
    if security.wants_json(request):
        return JsonResponse({"password": password})
    when = f"{version.created_at:%Y-%m-%d %H:%M} UTC"
    what = (
        f"the secret of access key {version.access_key_id}"
        if version.kind == PasswordVersion.ACCESS_KEY
        else "the password"
    )
    messages.info(request, f"Revealed {what} set {when}. This was recorded in the audit log.")
    revealed.keep(
        request, record.uid, revealed_version=version.uid, revealed_version_password=password
    )
    return redirect(reverse("record_detail", kwargs={"uid": record.uid}) + "#password-history")


@login_required
@sensitive_post_parameters("password", "access_secret_key")
def record_create(request: HttpRequest, uid: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid, need="manage_records")
    form = PamUserForm(_posted(request), folder=folder)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                record = services.pam_user_create(
                    folder=folder,
                    title=data["title"],
                    login=data["login"],
                    distinguished_name=data["distinguished_name"],
                    password=data["password"],
                    notes=data["notes"],
                    managed=data["managed"],
                    access_key=form.access_key_for_service(),
                    actor=request.user,
                    request=request,
                )
            except IntegrityError:
                form.add_error("title", "Another record in this folder already has this title.")
            else:
                messages.success(request, f"Created the record “{record.title}”.")
                return redirect("record_detail", uid=record.uid)
        messages.error(request, "The record was not saved; see the errors below.")
    context = {"form": form, "folder": folder, "record": None, "member": member}
    return render(request, "vault/record_form.html", context)


def _save_edit(
    request: HttpRequest,
    form: PamUserForm | PamConfigurationForm,
    instance: PamUser | PamConfiguration,
    save: Callable[[], None],
    *,
    noun: str,
    page: str,
) -> HttpResponse | None:
    """An edit page's POST: `save()` a valid form and redirect to `page` (the URL name of the
    `noun`'s page), or say why it was not saved (the form's errors, or a title another `noun`
    of the folder has) and return None for the caller to show the form again, as on GET."""
    if request.method != "POST":
        return None
    if form.is_valid():
        try:
            save()
        except IntegrityError:
            instance.refresh_from_db()  # the failed save had already changed the instance
            form.add_error("title", f"Another {noun} in this folder already has this title.")
        else:
            messages.success(request, f"Saved the {noun} “{instance.title}”.")
            return redirect(page, uid=instance.uid)
    messages.error(request, f"The {noun} was not saved; see the errors below.")
    return None


@login_required
@sensitive_post_parameters("password", "access_secret_key")
def record_edit(request: HttpRequest, uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid, need="can_edit")
    form = PamUserForm(_posted(request), folder=record.folder, instance=record)

    def save() -> None:
        data = form.cleaned_data
        services.pam_user_update(
            record=record,
            title=data["title"],
            login=data["login"],
            distinguished_name=data["distinguished_name"],
            password=form.password_for_service(),
            notes=data["notes"],
            managed=data["managed"],
            access_key=form.access_key_for_service(),
            actor=request.user,
            request=request,
        )

    saved = _save_edit(request, form, record, save, noun="record", page="record_detail")
    return saved or render(
        request,
        "vault/record_form.html",
        {"form": form, "folder": record.folder, "record": record, "member": member},
    )


@login_required
@require_POST
def record_delete(request: HttpRequest, uid: str) -> HttpResponse:
    record, member = record_for_user(request.user, uid, need="manage_records")
    folder, title = record.folder, record.title
    try:
        services.pam_user_delete(record=record, actor=request.user, request=request)
    except ProtectedError as exc:
        reason = services.deletion_refusal_reason(exc, "other rows still refer to it.")
        messages.error(request, f"The record “{title}” was not deleted: {reason}")
        return redirect("record_detail", uid=record.uid)
    messages.success(request, f"Deleted the record “{title}”.")
    return redirect("folder_detail", uid=folder.uid)


# --- PAM Configurations ------------------------------------------------------------------------


def _save_configuration(
    request: HttpRequest, form: PamConfigurationForm, config: PamConfiguration
) -> PamConfiguration:
    # A new gateway and the configuration that names it are saved together or not at all.
    # Saving grants and shares nothing: the application's administrators share folders.
    with transaction.atomic():
        form.apply_to(config)
        new_gateway = form.gateway_to_create()
        if new_gateway is not None:
            name, application = new_gateway
            config.gateway = services.gateway_create(
                name=name, application=application, actor=request.user, request=request
            )
        return services.configuration_save(
            config=config,
            access_secret_key=form.secret_for_service(),
            actor=request.user,
            request=request,
        )


@login_required
@sensitive_post_parameters("password", "access_secret_key")
def configuration_create(request: HttpRequest, uid: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid, need="manage_records")
    form = PamConfigurationForm(_posted(request), folder=folder, user=request.user)
    if request.method == "POST":
        if form.is_valid():
            try:
                config = _save_configuration(request, form, PamConfiguration(folder=folder))
            except IntegrityError:
                form.add_error(
                    "title", "Another configuration in this folder already has this title."
                )
            else:
                messages.success(request, f"Created the configuration “{config.title}”.")
                return redirect("configuration_detail", uid=config.uid)
        messages.error(request, "The configuration was not saved; see the errors below.")
    return render(
        request,
        "vault/configuration_form.html",
        {"form": form, "folder": folder, "config": None},
    )


@login_required
def configuration_detail(request: HttpRequest, uid: str) -> HttpResponse:
    config, member = configuration_for_user(request.user, uid)
    context = {
        "config": config,
        "folder": config.folder,
        "member": member,
        "has_secret_key": config.has_secret("access_secret_key"),
        "schedule_json": json.dumps(config.default_rotation_schedule),
        "authority_problem": configuration_problem(config, config.gateway),
        **_permissions(member),
    }
    return render(request, "vault/configuration.html", context)


@login_required
@sensitive_post_parameters("password", "access_secret_key")
def configuration_edit(request: HttpRequest, uid: str) -> HttpResponse:
    config, member = configuration_for_user(request.user, uid, need="can_edit")
    form = PamConfigurationForm(
        _posted(request), folder=config.folder, user=request.user, instance=config
    )

    def save() -> None:
        _save_configuration(request, form, config)

    saved = _save_edit(
        request, form, config, save, noun="configuration", page="configuration_detail"
    )
    return saved or render(
        request,
        "vault/configuration_form.html",
        {"form": form, "folder": config.folder, "config": config},
    )


@login_required
@require_POST
def configuration_delete(request: HttpRequest, uid: str) -> HttpResponse:
    config, member = configuration_for_user(request.user, uid, need="manage_records")
    folder, title = config.folder, config.title
    try:
        services.configuration_delete(config=config, actor=request.user, request=request)
    except ProtectedError as exc:
        reason = services.deletion_refusal_reason(
            exc, "records still use it for rotation. Point them at another one first."
        )
        messages.error(request, f"The configuration “{title}” was not deleted: {reason}")
        return redirect("configuration_detail", uid=config.uid)
    messages.success(request, f"Deleted the configuration “{title}”.")
    return redirect("folder_detail", uid=folder.uid)


# --- Members -----------------------------------------------------------------------------------


def _members_page(
    request: HttpRequest, folder: SharedFolder, member: FolderMember, add_form: MemberAddForm
) -> HttpResponse:
    members = FolderMember.objects.filter(folder=folder).select_related("user")
    shares = ApplicationFolder.objects.filter(folder=folder).select_related("application")
    context = {
        "folder": folder,
        "member": member,
        "members": members,
        "add_form": add_form,
        # Who may be suggested: vault.access.member_suggestions (nobody the person cannot
        # already see on a Members page of their own folders).
        "suggestions": member_suggestions(request.user, folder),
        "shares": shares,
        "share_form": FolderShareForm(folder=folder, user=request.user),
        "permission_labels": PERMISSION_LABELS,
        **_permissions(member),
    }
    return render(request, "vault/members.html", context)


@login_required
def members(request: HttpRequest, uid: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid)
    return _members_page(request, folder, member, MemberAddForm(folder=folder))


@login_required
@require_POST
def member_add(request: HttpRequest, uid: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid, need="manage_users")
    form = MemberAddForm(request.POST, folder=folder)
    if form.is_valid():
        try:
            added = services.member_add(
                folder=folder,
                user=form.cleaned_data["username"],
                permissions=form.permissions(),
                actor=request.user,
                request=request,
            )
        except IntegrityError:
            form.add_error("username", "This user is already a member of this folder.")
        else:
            messages.success(request, f"Added {added.user.username} to “{folder.name}”.")
            return redirect("members", uid=folder.uid)
    messages.error(request, "The member was not added; see the error below.")
    return _members_page(request, folder, member, form)


@login_required
@require_POST
def folder_share(request: HttpRequest, uid: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid, need="can_share")
    require_policy(request.user, "manage_gateways")
    form = FolderShareForm(request.POST, folder=folder, user=request.user)
    if form.is_valid():
        application = form.cleaned_data["application"]
        services.folder_share(
            folder=folder,
            application=application,
            editable=form.cleaned_data["editable"],
            actor=request.user,
            request=request,
        )
        messages.success(request, f"Shared “{folder.name}” to the application {application.name}.")
    else:
        messages.error(request, "Not shared: " + " ".join(form.errors.get("application", [])))
    return redirect("members", uid=folder.uid)


@login_required
@require_POST
def folder_unshare(request: HttpRequest, uid: str, app_uid: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid, need="can_share")
    share = get_object_or_404(
        ApplicationFolder.objects.select_related("application"),
        folder=folder,
        application__uid=app_uid,
    )
    services.folder_unshare(share=share, actor=request.user, request=request)
    messages.success(
        request,
        f"“{folder.name}” is no longer shared to {share.application.name}; its gateways can no "
        "longer rotate records of this folder.",
    )
    return redirect("members", uid=folder.uid)


def _target_member(folder: SharedFolder, username: str) -> FolderMember:
    return get_object_or_404(
        FolderMember.objects.select_related("user", "folder"),
        folder=folder,
        user__username=username,
    )


@login_required
@require_POST
def member_update(request: HttpRequest, uid: str, username: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid, need="manage_users")
    target = _target_member(folder, username)
    form = MemberPermissionsForm(request.POST)
    form.is_valid()  # checkboxes only: every submission is valid
    try:
        services.member_update(
            member=target, permissions=form.permissions(), actor=request.user, request=request
        )
    except services.LastManagerError as exc:
        messages.error(request, f"Permissions of {username} were not changed. {exc}")
    else:
        messages.success(request, f"Saved the permissions of {username}.")
    return redirect("members", uid=folder.uid)


@login_required
@require_POST
def member_remove(request: HttpRequest, uid: str, username: str) -> HttpResponse:
    folder, member = folder_for_user(request.user, uid, need="manage_users")
    target = _target_member(folder, username)
    try:
        services.member_remove(member=target, actor=request.user, request=request)
    except services.LastManagerError as exc:
        messages.error(request, f"{username} was not removed. {exc}")
        return redirect("members", uid=folder.uid)
    messages.success(request, f"Removed {username} from “{folder.name}”.")
    if target.user_id == request.user.pk:
        return redirect("home")
    return redirect("members", uid=folder.uid)
