"""`pam app list|share` and `pam app credential create|list|revoke`: applications and their
client credentials for the Secrets Manager-compatible API, from the vault host. The CLI is the
operator's: it acts with actor "cli" through the same services (and audit) as the pages.
Applications and folders are found by uid or name through vault/cli.py's find_one."""

from __future__ import annotations

import argparse

from secretsapi import credentials
from secretsapi.credentials import CredentialError
from secretsapi.models import ClientCredential
from vault import cli as vault_cli
from vault import services
from vault.cli import CliError, OutputHelper, add_format_argument
from vault.models import Application


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def find_application(ref: str) -> Application:
    return vault_cli.find_one(ref, Application.objects.all(), noun="application", field="name")


def credential_row(credential: ClientCredential) -> dict:
    """What `pam app credential list` shows of a credential: never its secret."""
    return {
        "access_key_id": credential.access_key_id,
        "name": credential.name,
        "application": credential.application.name,
        "created_at": _iso(credential.created_at),
        "created_by": credential.created_by.username if credential.created_by else None,
        "expires_at": _iso(credential.expires_at),
        "allowed_networks": list(credential.allowed_networks),
        "last_used_at": _iso(credential.last_used_at),
        "last_used_ip": credential.last_used_ip,
        "revoked_at": _iso(credential.revoked_at),
        "state": (
            "revoked"
            if credential.revoked_at
            else ("active" if credential.is_usable() else "expired")
        ),
    }


def cmd_credential_create(options: argparse.Namespace, out: OutputHelper) -> int:
    application = find_application(options.app)
    try:
        credential, secret = credentials.credential_create(
            application=application,
            name=options.name or "",
            expires_days=options.expires,
            allowed_networks=options.allowed_networks or (),
            actor=None,
            actor_kind="cli",
        )
    except CredentialError as exc:
        raise CliError(str(exc)) from None
    out.json_line(
        {
            "access_key_id": credential.access_key_id,
            "secret_access_key": secret,
            "endpoint_url": credentials.endpoint_url(),
            "region": credentials.EXAMPLE_REGION,
            "application": application.name,
            "name": credential.name,
            "expires_at": _iso(credential.expires_at),
            "allowed_networks": list(credential.allowed_networks),
        }
    )
    return 0


def cmd_credential_list(options: argparse.Namespace, out: OutputHelper) -> int:
    application = find_application(options.app)
    rows = [
        credential_row(c)
        for c in application.client_credentials.select_related("application", "created_by")
    ]
    columns = [
        ("access_key_id", "ACCESS KEY ID"),
        ("name", "NAME"),
        ("state", "STATE"),
        ("expires_at", "EXPIRES"),
        ("last_used_at", "LAST USED"),
        ("last_used_ip", "FROM"),
    ]
    out.output(rows, options.format, columns)
    return 0


def cmd_credential_revoke(options: argparse.Namespace, out: OutputHelper) -> int:
    key = options.access_key_id
    credential = (
        ClientCredential.objects.select_related("application", "revoked_by")
        .filter(access_key_id=key)
        .first()
        if isinstance(key, str) and "\x00" not in key
        else None
    )
    if credential is None:
        raise CliError(
            f"no client credential with access key id {key} (see `pam app credential list`)"
        )
    if credentials.credential_revoke(credential=credential, actor=None, actor_kind="cli"):
        out.line(f"revoked {credential.access_key_id} of application {credential.application.name}")
    else:
        out.note(credentials.already_revoked_message(credential))
    return 0


def cmd_share(options: argparse.Namespace, out: OutputHelper) -> int:
    application = find_application(options.app)
    folder = vault_cli.find_folder(options.folder)
    services.folder_share(
        folder=folder, application=application, editable=options.editable, actor_kind="cli"
    )
    access = "editable" if options.editable else "read-only"
    out.line(f'shared folder "{folder.name}" to application "{application.name}" ({access})')
    return 0


def cmd_list(options: argparse.Namespace, out: OutputHelper) -> int:
    rows = []
    apps = Application.objects.prefetch_related("administrators", "applicationfolder_set__folder")
    for application in apps.order_by("name"):
        shares = sorted(application.applicationfolder_set.all(), key=lambda s: s.folder.name)
        rows.append(
            {
                "uid": application.uid,
                "name": application.name,
                "folders": [
                    {"uid": s.folder.uid, "name": s.folder.name, "editable": s.editable}
                    for s in shares
                ],
                "administrators": sorted(u.username for u in application.administrators.all()),
            }
        )
    if options.format == "json":
        out.json(rows)
        return 0
    table = [
        {
            **row,
            "folders": ", ".join(f["name"] for f in row["folders"]),
            "administrators": ", ".join(row["administrators"]),
        }
        for row in rows
    ]
    columns = [
        ("uid", "UID"),
        ("name", "NAME"),
        ("folders", "FOLDERS"),
        ("administrators", "ADMINISTRATORS"),
    ]
    out.table(table, columns)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "app", help="applications: shared folders and client credentials (docs/secrets-api.md)"
    )
    commands = group.add_subparsers(dest="app_command", metavar="COMMAND", required=True)

    p = commands.add_parser("list", help="applications, their folders and administrators")
    add_format_argument(p)
    p.set_defaults(func=cmd_list)

    p = commands.add_parser("share", help="share a folder to an application")
    p.add_argument("--app", required=True, metavar="NAME|UID", help="the application")
    p.add_argument("--folder", required=True, metavar="NAME|UID", help="the folder")
    p.add_argument(
        "--editable",
        action="store_true",
        help="rotations on the application's gateways may save new passwords (default: read-only)",
    )
    p.set_defaults(func=cmd_share)

    credential = commands.add_parser(
        "credential", help="client credentials for the Secrets Manager-compatible API"
    )
    creds = credential.add_subparsers(dest="credential_command", metavar="COMMAND", required=True)
    p = creds.add_parser(
        "create",
        help="create one; prints access_key_id, secret_access_key (shown once) and endpoint_url",
    )
    p.add_argument("--app", required=True, metavar="NAME|UID", help="the application")
    p.add_argument("--name", metavar="TEXT", help="what uses it")
    p.add_argument(
        "--expires",
        metavar="DAYS",
        help=f"expire after DAYS days (1-{credentials.EXPIRES_DAYS_MAX}; default: never)",
    )
    p.add_argument(
        "--allowed-network",
        dest="allowed_networks",
        action="extend",
        nargs="+",
        metavar="CIDR",
        help="accept requests only from these networks (repeatable; default: any address)",
    )
    p.set_defaults(func=cmd_credential_create)
    p = creds.add_parser("list", help="an application's credentials (never their secrets)")
    p.add_argument("--app", required=True, metavar="NAME|UID", help="the application")
    add_format_argument(p)
    p.set_defaults(func=cmd_credential_list)
    p = creds.add_parser("revoke", help="revoke a credential at once")
    p.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
    p.set_defaults(func=cmd_credential_revoke)
