"""The reader of Keeper Commander's project import format (`pam project import`, as defined by
Commander's keepercommander/commands/pam_import/README.md) into the import model
(vault/import_model.py), with Commander's meaning:

- the project NAME (``--name``, else ``"project"``) makes the folders "NAME - Users" and
  "NAME - Resources" (or their ``folder_name``), the application "NAME Application"
  (``pam_configuration.ksm_app_name``) sharing both, editable, the gateway "NAME Gateway"
  (``gateway_name``) of that application, and the PAM Configuration "NAME Configuration"
  (``title``) in the Users folder;
- ``shared_folder_users`` / ``shared_folder_resources``: ``permissions[]`` name the people
  who become members, with their ``manage_users`` / ``manage_records`` (false unless true) and
  the folder's ``can_edit`` / ``can_share`` (all four true when the section sets none of them,
  else false unless true), as Commander grants them;
- ``pam_data.users[]`` of type pamUser that are AWS IAM users (``distinguished_name`` is the
  user's ARN, or ``rotation_settings.rotation`` is iam_user) become PAM Users in the Users
  folder, with their ``notes`` and ``managed`` flag; their ``rotation_settings`` (iam_user) go
  to the "rotation" extension with the format's own value (see below). A record whose
  ``managed`` is false keeps its rotation settings but is never rotated (the vault refuses to
  rotate a record it does not manage, by schedule or on demand); ``managed`` or ``notes`` left
  out keep the stored value (a new record: managed, no notes).

What the vault cannot hold or rotate (resources and their users, login records, users that
are not IAM users, general and scripts_only rotation, connections, tunnels, session
recording, KeeperAI, scripts, attachments, one-time codes, teams, environments other than
aws) is listed item by item in ``Plan.skipped`` with its JSON path and the reason, and
nothing else changes for it. Unknown keys and wrong types are errors, one line each.

The "rotation" extension gets, for a managed IAM user with rotation_settings:

    {"configuration": TITLE, "configuration_folder": USERS FOLDER,
     "schedule": ..., "password_complexity": ..., "enabled": "on"|"off"|"default",
     "rotation_off": true}      (each key only when the file gives it; rotation_off when
                                 pam_configuration.rotation is "off")

whether the record is managed or not; the path it reports errors under is the
rotation_settings' own (or its rotation profile's). Keys left out mean what they mean in
Commander: a new record's settings take the configuration's default schedule, the default
complexity and enabled; stored settings keep their value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from vault.import_model import (
    MISSING,
    ApplicationItem,
    Checker,
    ConfigurationItem,
    FolderItem,
    GatewayItem,
    ImportContext,
    ImportProblems,
    MemberItem,
    Plan,
    Skipped,
    UserItem,
    check_credentials,
    check_document,
    check_folder_case,
    check_login_and_arn,
    check_new_gateway_name,
    check_notes,
    check_password,
    check_regions,
    check_schedule,
    json_type,
    owner_of,
)
from vault.models import USE_INSTANCE_ROLE, Application, Gateway

TOP_KEYS = (
    "project",
    "shared_folder_users",
    "shared_folder_resources",
    "pam_configuration",
    "pam_data",
    # Written by Commander's `pam project export`; read as in Commander.
    "tool_version",
    # Commander's CyberArk import (per-safe folders) and sample data.
    "safe_folders",
    "options",
)
FOLDER_KEYS = (
    "folder_name",
    "manage_users",
    "manage_records",
    "can_edit",
    "can_share",
    "permissions",
)
FOLDER_FLAGS = ("manage_users", "manage_records", "can_edit", "can_share")
PERMISSION_KEYS = ("name", "uid", "manage_users", "manage_records")
TOGGLES = ("on", "off", "default")
# pam_configuration: the keys every environment has, then each environment's own.
CONFIGURATION_KEYS = (
    "environment",
    "title",
    "gateway_name",
    "ksm_app_name",
    "connections",
    "rotation",
    "tunneling",
    "remote_browser_isolation",
    "graphical_session_recording",
    "text_session_recording",
    "ai_threat_detection",
    "ai_terminate_session_on_detection",
    "port_mapping",
    "default_rotation_schedule",
    "scripts",
    "attachments",
    "identity_provider_uid",
)
ENVIRONMENT_KEYS = {
    "local": ("network_id", "network_cidr"),
    "aws": ("aws_id", "aws_access_key_id", "aws_secret_access_key", "aws_region_names"),
    "azure": (
        "az_entra_id",
        "az_client_id",
        "az_client_secret",
        "az_subscription_id",
        "az_tenant_id",
        "az_resource_groups",
    ),
    "domain": (
        "dom_domain_id",
        "dom_hostname",
        "dom_port",
        "dom_use_ssl",
        "dom_scan_dc_cidr",
        "dom_network_cidr",
        "dom_user_match",
        "dom_administrative_credential",
    ),
    "gcp": ("gcp_id", "gcp_service_account_key", "gcp_google_admin_email", "gcp_region_names"),
    "oci": (
        "oci_id",
        "oci_admin_id",
        "oci_admin_public_key",
        "oci_admin_private_key",
        "oci_tenancy",
        "oci_region",
    ),
}
# Features of a PAM Configuration the vault does not have, and why each is not imported.
NOT_HELD_TOGGLES = {
    "connections": "the vault has no connections (remote sessions)",
    "tunneling": "the vault has no tunnels",
    "remote_browser_isolation": "the vault has no remote browser isolation",
    "graphical_session_recording": "the vault records no sessions",
    "text_session_recording": "the vault records no sessions",
    "ai_threat_detection": "the vault has no KeeperAI threat detection",
    "ai_terminate_session_on_detection": "the vault has no KeeperAI threat detection",
}
NOT_HELD_CONFIGURATION = {
    "port_mapping": "port mappings are for discovery and connections, which the vault does not do",
    "scripts": "the vault runs no post-rotation scripts",
    "attachments": "the vault keeps no file attachments",
    "identity_provider_uid": "the vault has no identity providers",
}
PAM_DATA_KEYS = ("resources", "users", "rotation_profiles")
PAM_USER_KEYS = (
    "type",
    "title",
    "notes",
    "login",
    "password",
    "private_pem_key",
    "distinguished_name",
    "connect_database",
    "managed",
    "otp",
    "attachments",
    "scripts",
    "rotation_settings",
    "folder_path",
    "uid",
)
LOGIN_KEYS = (
    "type",
    "title",
    "notes",
    "login",
    "password",
    "url",
    "otp",
    "attachments",
    "folder_path",
    "uid",
)
# Keys whose presence makes an untyped user a pamUser (as Commander decides).
PAM_USER_HINTS = (
    "private_pem_key",
    "distinguished_name",
    "connect_database",
    "managed",
    "scripts",
    "rotation_settings",
)
NOT_HELD_USER = {
    "private_pem_key": "the vault keeps no SSH keys (it rotates AWS console passwords)",
    "connect_database": "the vault has no database connections",
    "otp": "the vault keeps no one-time codes",
    "folder_path": "the project's PAM Users all go to its Users folder",
}
ROTATION_KEYS = ("rotation", "resource", "enabled", "schedule", "password_complexity")
ROTATION_TYPES = ("general", "iam_user", "scripts_only")
RESOURCE_TYPES = ("pamMachine", "pamDatabase", "pamDirectory", "pamRemoteBrowser")
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def read(
    data: Any,
    context: ImportContext,
    *,
    project_name: str | None = None,
    owner_username: str | None = None,
) -> tuple[Plan, str]:
    """Check everything; raise ImportProblems with every problem (one per line) if any.
    Returns the plan and the project's name."""
    check_document(data)
    check = Checker()
    context.data, context.format = data, "keeper"
    plan = Plan(format="keeper")
    for key in data:
        if key not in TOP_KEYS:
            check.add(key, f"unknown key (expected: {', '.join(TOP_KEYS)})")
    plan.owner = context.owner = owner_of(check, owner_username)

    project, project_path = _project(check, data, project_name)
    _extras(check, data, plan)
    users_folder = _folder(check, data, "shared_folder_users", project, "Users", plan)
    resources_folder = _folder(check, data, "shared_folder_resources", project, "Resources", plan)
    if users_folder and resources_folder and users_folder.name == resources_folder.name:
        check.add(
            "shared_folder_resources.folder_name",
            f'the Users and Resources folders must differ (both "{users_folder.name}")',
        )
    folders = [f for f in (users_folder, resources_folder) if f is not None]
    check_folder_case(check, [(f.path, f.name) for f in folders])
    plan.folders = folders

    cfg = data.get("pam_configuration", MISSING)
    if cfg is not MISSING and not isinstance(cfg, dict):
        check.add("pam_configuration", f"must be an object, not {json_type(cfg)}")
        cfg = {}
    section = cfg if isinstance(cfg, dict) else {}
    names = _names(check, section, project, project_path)
    gateway_name, app_name, title = names.gateway, names.app, names.title
    if gateway_name and app_name:
        plan.gateways = [GatewayItem(names.gateway_path, gateway_name)]
        plan.applications = [
            ApplicationItem(
                names.app_path,
                app_name,
                [(f.name, True) for f in folders],
                [gateway_name],
            )
        ]
    environment = _environment(check, cfg, plan)
    config = None
    rotation_off = False
    if environment == "aws" and users_folder and gateway_name and title:
        config = _configuration(check, section, users_folder.name, gateway_name, title, context)
        rotation_off = (
            _toggle(check, section.get("rotation", "on"), "pam_configuration.rotation") == "off"
        )
        if config is not None and rotation_off:
            plan.notes.append(
                'pam_configuration.rotation: "off": rotation is not allowed through this '
                "configuration, so the rotation settings of its PAM Users are saved disabled"
            )
    if config is not None:
        context.configuration_entries.append({"title": title, "folder": users_folder.name})
    _configuration_extras(check, section, environment, plan)

    pam_data = data.get("pam_data", {})
    if not isinstance(pam_data, dict):
        check.add("pam_data", f"must be an object, not {json_type(pam_data)}")
        pam_data = {}
    check.keys(pam_data, PAM_DATA_KEYS, "pam_data")
    profiles = pam_data.get("rotation_profiles", {})
    if not isinstance(profiles, dict):
        check.add("pam_data.rotation_profiles", f"must be an object, not {json_type(profiles)}")
        profiles = {}
    _resources(check, pam_data, plan)
    reader = _UserReader(
        check,
        context,
        plan,
        folder=users_folder.name if users_folder else None,
        config=config,
        rotation_off=rotation_off,
        profiles=profiles,
    )
    for path, entry in check.entries(pam_data, "users", "pam_data.users"):
        reader.read(entry, path)

    if config is not None and config.access_key_id == USE_INSTANCE_ROLE:
        logins = sorted({u.login for u in plan.users})
        scope = ", ".join(logins)
        if any("," in login for login in logins) or len(scope) > 512:
            # A name with a comma would read as two patterns; the field holds 512 characters.
            check.add(
                "pam_configuration.aws_access_key_id",
                f"{USE_INSTANCE_ROLE} needs a target scope, and the project's IAM user names "
                "cannot make one (a name with a comma, or more than 512 characters in all): "
                "give access keys instead",
            )
        elif logins:
            config.scope_user_pattern = scope
            plan.notes.append(
                f"pam_configuration.aws_access_key_id: {USE_INSTANCE_ROLE}: the gateway host's "
                "own credentials may touch only this project's IAM users (target scope "
                f'"{config.scope_user_pattern}"), and only once a superuser allows that '
                "gateway to use them"
            )
        else:
            check.add(
                "pam_configuration.aws_access_key_id",
                f"{USE_INSTANCE_ROLE} needs a target scope: the vault limits it to the "
                "project's IAM users, and this file has none (give access keys instead)",
            )
    if config is not None:
        plan.configurations = [config]

    if check.errors:  # a rotation profile several users name is reported once
        raise ImportProblems(*dict.fromkeys(check.errors))
    return plan, project


# --- the project, its folders, gateway, application ------------------------------------------


def _project(check: Checker, data: dict, project_name: str | None) -> tuple[str, str]:
    in_file = data.get("project", MISSING)
    if in_file is not MISSING and not isinstance(in_file, str):
        check.add("project", f"must be a string, not {json_type(in_file)}")
        in_file = None
    name, path = project_name, "--name"
    if name is None:
        name, path = (None if in_file in (MISSING, None) else in_file), "project"
    if name is None or not name.strip():
        if in_file is not None or project_name is not None:  # not reported already
            check.add(path, "required: the project's name (or give --name)")
        return "", path
    name = name.strip()
    longest = 200 - len(" - Resources")
    if len(name) > longest:
        check.add(path, f'longer than {longest} characters (its folders add " - Resources")')
    return name, path


def _extras(check: Checker, data: dict, plan: Plan) -> None:
    version = data.get("tool_version", "")
    if not isinstance(version, str):
        check.add("tool_version", f"must be a string, not {json_type(version)}")
    safe = data.get("safe_folders")
    if safe is not None:
        if not isinstance(safe, list):
            check.add("safe_folders", f"must be a list, not {json_type(safe)}")
        else:
            for i, _ in enumerate(safe):
                plan.skipped.append(
                    Skipped(
                        f"safe_folders[{i}]",
                        "per-safe folders (Commander's CyberArk import) are not made: the "
                        "project has its Users and Resources folders",
                    )
                )
    options = data.get("options", {})
    if not isinstance(options, dict):
        check.add("options", f"must be an object, not {json_type(options)}")
        return
    check.keys(options, ("generate_sample_data",), "options")
    if options.get("generate_sample_data"):
        plan.skipped.append(
            Skipped(
                "options.generate_sample_data",
                "the vault makes no sample data (Commander's discovery playground)",
            )
        )


def _flag(check: Checker, value: Any, where: str, *, words=("true", "false")) -> bool | None:
    """A JSON boolean, or one of `words` ("true"/"false" ...) as Commander accepts them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in words:
        return value.strip().lower() in TRUE_WORDS
    check.add(where, f"must be true or false, not {_shown(value)}")
    return None


def _folder(
    check: Checker, data: dict, key: str, project: str, suffix: str, plan: Plan
) -> FolderItem | None:
    """The project's Users or Resources folder ("NAME - Users", or the section's
    folder_name) and its members."""
    section = data.get(key, {})
    if not isinstance(section, dict):
        check.add(key, f"must be an object, not {json_type(section)}")
        return None
    check.keys(section, FOLDER_KEYS, key)
    name, path = f"{project} - {suffix}", key
    if "folder_name" in section:
        given = check.string(section, "folder_name", key, max_length=200)
        if isinstance(given, str):
            name, path = given.strip(), f"{key}.folder_name"
    given = {f: section[f] for f in FOLDER_FLAGS if f in section}
    flags = dict.fromkeys(FOLDER_FLAGS, True)
    if given:
        flags = {f: f in given and bool(_flag(check, given[f], f"{key}.{f}")) for f in FOLDER_FLAGS}
    for f in ("manage_users", "manage_records"):
        if f in given:
            plan.notes.append(
                f"{key}.{f}: Keeper's default for members added later; the vault has no "
                "folder defaults (each member of permissions[] has its own)"
            )
    folder = FolderItem(path, name) if project else None
    seen: dict[Any, str] = {}
    for where, entry in check.entries(section, "permissions", f"{key}.permissions"):
        member = _member(check, entry, where, flags, plan)
        if member is None:
            continue
        if member.user.pk in seen:
            check.add(
                where, f'"{member.user.username}" is given twice (also {seen[member.user.pk]})'
            )
            continue
        seen[member.user.pk] = where
        if folder is not None:
            folder.members.append(member)
    return folder


def _member(check: Checker, entry: dict, where: str, flags: dict, plan: Plan) -> MemberItem | None:
    check.keys(entry, PERMISSION_KEYS, where)
    perms = {}
    for f in ("manage_users", "manage_records"):
        perms[f] = bool(_flag(check, entry[f], f"{where}.{f}")) if f in entry else False
    name = check.string(entry, "name", where, required=False, max_length=254)
    uid = check.string(entry, "uid", where, required=False, max_length=64)
    if name is None or uid is None:
        return None
    if name is MISSING:
        if uid is MISSING:
            check.add(where, "give the name of a person (user name or email) or a team")
        else:
            plan.skipped.append(
                Skipped(where, "a team (by uid): the vault shares folders with people, not teams")
            )
        return None
    users = get_user_model().objects.filter(is_active=True)
    found = list(users.filter(username=name)) or list(users.filter(email__iexact=name))
    if len(found) != 1:
        why = (
            f'{len(found)} vault users have the email "{name}"'
            if found
            else f'no vault user is named "{name}" (a Keeper team, or a person without a '
            "vault login)"
        )
        plan.skipped.append(Skipped(where, f"{why}: not made a member"))
        return None
    perms["can_edit"], perms["can_share"] = flags["can_edit"], flags["can_share"]
    return MemberItem(where, found[0], perms)


@dataclass
class _Names:
    """The gateway's, application's and configuration's names and where each came from."""

    gateway: str | None = None
    app: str | None = None
    title: str | None = None
    gateway_path: str = "pam_configuration"
    app_path: str = "pam_configuration"


def _names(check: Checker, section: dict, project: str, project_path: str) -> _Names:
    """Given, or made from the project's name as Commander makes them ("NAME Gateway",
    "NAME Application", "NAME Configuration"); a gateway of another application is refused."""
    names = _Names()
    if not project:
        return names
    for attr, key, suffix, limit in (
        ("gateway", "gateway_name", "Gateway", 100),
        ("app", "ksm_app_name", "Application", 200),
        ("title", "title", "Configuration", 200),
    ):
        given = check.string(section, key, "pam_configuration", required=False, max_length=limit)
        if given is None:
            continue
        if given is MISSING:
            value, where = f"{project} {suffix}", project_path
        else:
            value, where = given.strip(), f"pam_configuration.{key}"
        setattr(names, attr, value)
        if attr != "title":
            setattr(names, f"{attr}_path", where)
    if names.gateway is not None and not _gateway_ok(check, names, project_path):
        names.gateway = None
    if names.app is not None:
        other = (
            Application.objects.filter(name__iexact=names.app)
            .exclude(name=names.app)
            .values_list("name", flat=True)
            .first()
        )
        if other is not None:
            check.add(
                names.app_path,
                f'an application named "{other}" already exists (application names are '
                "matched exactly; they differ only in case)",
            )
            names.app = None
    return names


def _gateway_ok(check: Checker, names: _Names, project_path: str) -> bool:
    where = names.gateway_path
    marker = len(check.errors)
    if not check_new_gateway_name(check, names.gateway, where):
        if where == project_path:  # say which name, and how to choose another
            check.errors[marker:] = [
                line.replace(
                    f"{where}: ",
                    f'{where}: the gateway name "{names.gateway}" made from it: ',
                    1,
                )
                + " (or give pam_configuration.gateway_name)"
                for line in check.errors[marker:]
            ]
        return False
    gateway = Gateway.objects.filter(name=names.gateway).select_related("application").first()
    owner = gateway.application if gateway is not None else None
    if owner is not None and names.app is not None and owner.name != names.app:
        check.add(
            where,
            f'the gateway "{names.gateway}" belongs to the application "{owner.name}" (a '
            f'gateway never changes hands): give pam_configuration.ksm_app_name "{owner.name}" '
            "to use it, or another gateway_name",
        )
        return False
    return True


# --- the configuration -------------------------------------------------------------------------


def _environment(check: Checker, cfg: Any, plan: Plan) -> str | None:
    if cfg is MISSING:
        plan.skipped.append(
            Skipped(
                "pam_configuration",
                "(not given) Commander would make a local network configuration; the vault "
                "rotates only AWS IAM users, so no configuration is made",
            )
        )
        return None
    if not isinstance(cfg, dict):
        return None
    environment = check.string(cfg, "environment", "pam_configuration", max_length=20)
    if not isinstance(environment, str):
        return None
    if environment not in ENVIRONMENT_KEYS:
        check.add(
            "pam_configuration.environment",
            f'must be one of {", ".join(ENVIRONMENT_KEYS)} (got "{environment}")',
        )
        return None
    if environment != "aws":
        plan.skipped.append(
            Skipped(
                "pam_configuration",
                f'environment "{environment}": the vault rotates only AWS IAM users '
                "(environment aws), so no configuration is made",
            )
        )
    return environment


def _configuration(
    check: Checker,
    section: dict,
    folder: str,
    gateway: str,
    title: str,
    context: ImportContext,
) -> ConfigurationItem | None:
    path = "pam_configuration"
    before = len(check.errors)
    aws_id = check.string(section, "aws_id", path, required=False, allow_empty=True)
    key_id = check.string(section, "aws_access_key_id", path, max_length=128)
    secret = check.string(
        section, "aws_secret_access_key", path, required=False, max_length=256, allow_empty=True
    )
    key_id, secret = check_credentials(
        check,
        key_id,
        secret,
        path=path,
        key_id_key="aws_access_key_id",
        secret_key="aws_secret_access_key",
    )
    regions = MISSING
    if "aws_region_names" in section:
        value = section["aws_region_names"]
        where = f"{path}.aws_region_names"
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            check.add(where, f"must be a region name or a list of them, not {json_type(value)}")
            regions = None
        elif not all(isinstance(r, str) for r in value):
            for i, region in enumerate(value):
                if not isinstance(region, str):
                    check.add(f"{where}[{i}]", f"must be a region name, not {json_type(region)}")
            regions = None
        else:
            regions = check_regions(check, value, where)
    schedule = check_schedule(
        check,
        section.get("default_rotation_schedule", MISSING),
        f"{path}.default_rotation_schedule",
        context,
    )
    if len(check.errors) != before:
        return None
    return ConfigurationItem(
        path=path,
        title=title,
        folder=folder,
        gateway=gateway,
        access_key_id=key_id,
        access_secret_key=secret,
        aws_id=aws_id,
        region_names=regions,
        default_rotation_schedule=schedule,
    )


def _toggle(check: Checker, value: Any, where: str) -> str | None:
    if isinstance(value, str) and value.strip().lower() in TOGGLES:
        return value.strip().lower()
    check.add(where, f'must be "on", "off" or "default", not {_shown(value)}')
    return None


def _shown(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else json_type(value)


def _configuration_extras(
    check: Checker, section: dict, environment: str | None, plan: Plan
) -> None:
    """Unknown keys are errors; what the vault does not have is listed (for aws only: another
    environment's configuration is not made at all)."""
    path = "pam_configuration"
    known = CONFIGURATION_KEYS + tuple(k for keys in ENVIRONMENT_KEYS.values() for k in keys)
    check.keys(section, known, path)
    if environment != "aws":
        return
    for key, why in NOT_HELD_TOGGLES.items():
        if key in section and _toggle(check, section[key], f"{path}.{key}") == "on":
            plan.skipped.append(Skipped(f"{path}.{key}", why))
    for key, why in NOT_HELD_CONFIGURATION.items():
        value = section.get(key)
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item:
                    plan.skipped.append(Skipped(f"{path}.{key}[{i}]", why))
        elif value:
            plan.skipped.append(Skipped(f"{path}.{key}", why))
    for other, keys in ENVIRONMENT_KEYS.items():
        if other == "aws":
            continue
        for key in keys:
            if key in section:
                plan.skipped.append(
                    Skipped(
                        f"{path}.{key}",
                        f"a setting of environment {other}; this configuration's is aws",
                    )
                )


# --- pam_data ----------------------------------------------------------------------------------


def _resources(check: Checker, pam_data: dict, plan: Plan) -> None:
    for path, entry in check.entries(pam_data, "resources", "pam_data.resources"):
        kind = entry.get("type")
        wanted = {t.lower(): t for t in RESOURCE_TYPES}
        if not isinstance(kind, str) or kind.strip().lower() not in wanted:
            check.add(f"{path}.type", f"must be one of {', '.join(RESOURCE_TYPES)}")
            continue
        kind = wanted[kind.strip().lower()]
        title = entry.get("title")
        named = f' "{title}"' if isinstance(title, str) and title else ""
        plan.skipped.append(
            Skipped(
                path,
                f"{kind}{named}: the vault holds only AWS IAM users; resources (machines, "
                "databases, directories, remote browsers) and their connections, tunnels, "
                "rotation and settings are not imported",
            )
        )
        users = entry.get("users", [])
        if not isinstance(users, list):
            check.add(f"{path}.users", f"must be a list, not {json_type(users)}")
            continue
        for i, _ in enumerate(users):
            plan.skipped.append(
                Skipped(
                    f"{path}.users[{i}]",
                    "a user of a resource: it is rotated through that resource, which the "
                    "vault does not hold",
                )
            )


class _UserReader:
    def __init__(
        self,
        check: Checker,
        context: ImportContext,
        plan: Plan,
        *,
        folder: str | None,
        config: ConfigurationItem | None,
        rotation_off: bool,
        profiles: dict,
    ) -> None:
        self.check, self.context, self.plan = check, context, plan
        self.folder, self.config = folder, config
        self.rotation_off, self.profiles = rotation_off, profiles
        self.seen: dict[str, str] = {}

    def read(self, entry: dict, path: str) -> None:
        check = self.check
        kind = entry.get("type", MISSING)
        if kind is MISSING:
            kind = "pamUser" if any(k in entry for k in PAM_USER_HINTS) else "login"
        elif not isinstance(kind, str) or kind.strip().lower() not in ("pamuser", "login"):
            check.add(f"{path}.type", f'must be "pamUser" or "login", not {_shown(kind)}')
            return
        if kind.strip().lower() == "login":
            check.keys(entry, LOGIN_KEYS, path)
            title = entry.get("title")
            named = f' "{title}"' if isinstance(title, str) and title else ""
            self.plan.skipped.append(
                Skipped(
                    path,
                    f"a login record{named}: the vault holds only PAM Users that are AWS IAM users",
                )
            )
            return
        self._pam_user(entry, path)

    def _pam_user(self, entry: dict, path: str) -> None:
        check, plan = self.check, self.plan
        before = len(check.errors)
        check.keys(entry, PAM_USER_KEYS, path)
        title = check.string(entry, "title", path, required=False)
        login = check.string(entry, "login", path, required=False, max_length=64)
        arn = check.string(entry, "distinguished_name", path, required=False, max_length=2048)
        password = check.string(
            entry, "password", path, required=False, max_length=10_000, allow_empty=True
        )
        managed = MISSING  # left out: the stored value (a new record is managed)
        if "managed" in entry:
            managed = _flag(
                check, entry["managed"], f"{path}.managed", words=TRUE_WORDS + FALSE_WORDS
            )
        notes = check_notes(check, entry, path)
        settings, settings_path = self._rotation_settings(entry, path)
        for key in ("uid",):
            if key in entry and not isinstance(entry[key], str):
                check.add(f"{path}.{key}", f"must be a string, not {json_type(entry[key])}")
        # Listed only when the record itself is held (else the record is listed, once).
        parts: list[Skipped] = []
        for key in NOT_HELD_USER:
            if key in entry:
                value = check.string(
                    entry, key, path, required=False, max_length=100_000, allow_empty=True
                )
                if value:
                    parts.append(Skipped(f"{path}.{key}", NOT_HELD_USER[key]))
        for key, why in (
            ("attachments", "the vault keeps no file attachments"),
            ("scripts", "the vault runs no post-rotation scripts"),
        ):
            value = entry.get(key)
            if value is None:
                continue
            if not isinstance(value, list):
                check.add(f"{path}.{key}", f"must be a list, not {json_type(value)}")
                continue
            for i, _ in enumerate(value):
                parts.append(Skipped(f"{path}.{key}[{i}]", why))

        method = (settings or {}).get("rotation")
        is_iam = method == "iam_user" or (isinstance(arn, str) and arn.startswith("arn:"))
        named = title if isinstance(title, str) else login if isinstance(login, str) else ""
        if not is_iam:
            why = "its distinguished_name is not an IAM user ARN"
            if method in ("general", "scripts_only"):
                why += f', and its rotation is "{method}"'
            shown = f' "{named}"' if named else ""
            plan.skipped.append(
                Skipped(
                    path,
                    f"pamUser{shown} is not an AWS IAM user ({why}): the vault holds only AWS "
                    "IAM users",
                )
            )
            return
        if login is MISSING:
            check.add(f"{path}.login", "required: the IAM user's name")
        if arn is MISSING:
            check.add(
                f"{path}.distinguished_name",
                "required: the IAM user's ARN, arn:aws:iam::<12-digit account>:user/<name> "
                "(the vault rotates it through the AWS IAM API)",
            )
        if login in (MISSING, None) or arn in (MISSING, None):
            return
        if not check_login_and_arn(check, login, arn, path=path):
            return
        password = check_password(check, password, f"{path}.password")
        if password is None or notes is None or managed is None or len(check.errors) != before:
            return
        if title is MISSING or not title.strip():
            title = f"PAM User - {login}"
        if self.folder is None:
            return
        if title in self.seen:
            check.add(
                f"{path}.title",
                f'duplicate user title "{title}" in folder "{self.folder}" (also {self.seen[title]})',
            )
            return
        self.seen[title] = path
        plan.skipped.extend(parts)
        item = UserItem(
            path=path,
            title=title,
            folder=self.folder,
            login=login,
            distinguished_name=arn,
            password=password,
            notes=notes,
            managed=managed,
        )
        self._rotation(item, settings, settings_path)
        plan.users.append(item)

    def _rotation_settings(self, entry: dict, path: str) -> tuple[dict | None, str]:
        """The rotation_settings object (a profile's, when it names one) and its path; None
        when there are none."""
        check = self.check
        where = f"{path}.rotation_settings"
        value = entry.get("rotation_settings")
        if value is None:
            return None, where
        if isinstance(value, str):
            if value not in self.profiles:
                check.add(
                    where, f'unknown rotation profile "{value}" (not in pam_data.rotation_profiles)'
                )
                return None, where
            where = f"pam_data.rotation_profiles.{value}"
            value = self.profiles[value]
        if not isinstance(value, dict):
            check.add(
                where, f"must be an object (or a rotation profile's name), not {json_type(value)}"
            )
            return None, where
        if not value:
            return None, where  # Commander's template: {} is no rotation settings
        check.keys(value, ROTATION_KEYS, where)
        settings = dict(value)
        method = value.get("rotation", MISSING)
        if method is MISSING:
            check.add(f"{where}.rotation", f"required: one of {', '.join(ROTATION_TYPES)}")
        elif not isinstance(method, str) or method.strip().lower() not in ROTATION_TYPES:
            check.add(
                f"{where}.rotation",
                f"must be one of {', '.join(ROTATION_TYPES)}, not {_shown(method)}",
            )
        else:
            settings["rotation"] = method.strip().lower()
        if "enabled" in value:
            settings["enabled"] = _toggle(check, value["enabled"], f"{where}.enabled")
        for key in ("resource", "password_complexity"):
            if key in value and not isinstance(value[key], str):
                check.add(f"{where}.{key}", f"must be a string, not {json_type(value[key])}")
        if "schedule" in value and not isinstance(value["schedule"], dict | str):
            check.add(f"{where}.schedule", f"must be an object, not {json_type(value['schedule'])}")
        return settings, where

    def _rotation(self, item: UserItem, settings, where: str) -> None:
        """`where` is the settings' own path (a rotation profile's, when the user names one):
        problems in them are reported there, once; what is not imported is listed under the
        user's rotation_settings. An unmanaged record's settings are imported as given: the
        record is never rotated while unmanaged, and follows them once marked managed."""
        extension = self.context.extensions.get("rotation")
        listed = f"{item.path}.rotation_settings"
        if settings is None:
            return
        method = settings.get("rotation")
        if method != "iam_user":
            self.plan.skipped.append(
                Skipped(
                    listed,
                    f'rotation "{method}": the vault rotates AWS IAM users through their '
                    "PAM Configuration (iam_user) only",
                )
            )
            return
        if self.config is None:
            self.plan.skipped.append(
                Skipped(
                    listed,
                    "no AWS PAM Configuration is imported (pam_configuration), so there is "
                    "nothing to rotate it through",
                )
            )
            return
        if extension is None:
            self.plan.skipped.append(Skipped(listed, "rotation is not installed in this vault"))
            return
        value: dict[str, Any] = {
            "configuration": self.config.title,
            "configuration_folder": self.config.folder,
        }
        for key in ("schedule", "password_complexity", "enabled"):
            if key in settings:
                value[key] = settings[key]
        if self.rotation_off:
            value["rotation_off"] = True
        self.check.errors.extend(extension.validate(value, where, self.context))
        item.extensions["rotation"] = (value, where)
