"""`pam webhook add|list|remove`: the operator's webhooks, through the same services (and
audit) as the pages, with actor "cli"."""

from __future__ import annotations

import argparse

from vault import cli as vault_cli
from vault.cli import CliError, OutputHelper, add_format_argument
from webhooks import services
from webhooks.forms import DEFAULT_EVENTS
from webhooks.models import EVENT_TYPES, Webhook


def webhook_row(webhook: Webhook) -> dict:
    return {
        "uid": webhook.uid,
        "url": webhook.url,
        "folder": webhook.folder.uid if webhook.folder else None,
        "folder_name": webhook.folder.name if webhook.folder else None,
        "events": list(webhook.events),
        "enabled": webhook.enabled,
        "disabled_reason": webhook.disabled_reason or None,
        "created_at": webhook.created_at.isoformat(),
    }


def cmd_add(options: argparse.Namespace, out: OutputHelper) -> int:
    folder = vault_cli.find_folder(options.folder) if options.folder else None
    events = options.events.split(",") if options.events is not None else DEFAULT_EVENTS
    try:
        webhook, secret = services.webhook_create(
            url=options.url, events=events, folder=folder, actor_kind="cli"
        )
    except services.WebhookError as exc:
        raise CliError(str(exc)) from None
    out.json_line({**webhook_row(webhook), "secret": secret})
    return 0


def cmd_list(options: argparse.Namespace, out: OutputHelper) -> int:
    rows = [webhook_row(w) for w in Webhook.objects.select_related("folder").order_by("pk")]
    columns = [("uid", "UID"), ("url", "URL"), ("folder_name", "Folder"), ("events", "Events")]
    out.output(rows, options.format, columns + [("enabled", "Enabled")])
    return 0


def cmd_remove(options: argparse.Namespace, out: OutputHelper) -> int:
    webhook = Webhook.objects.select_related("folder").filter(uid=options.uid).first()
    if webhook is None:
        raise CliError(f"no webhook with uid {options.uid} (see `pam webhook list`)")
    services.webhook_delete(webhook=webhook, actor_kind="cli")
    out.line(f"removed webhook {options.uid}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("webhook", help="signed webhooks (docs/webhooks.md)")
    commands = group.add_subparsers(dest="webhook_command", required=True)
    p = commands.add_parser("add", help="add a webhook; prints its uid and secret (once)")
    p.add_argument("--url", required=True)
    p.add_argument("--folder", metavar="NAME|UID", help="the folder's webhook (default: global)")
    p.add_argument(
        "--events",
        metavar="EVENT,...",
        help=f"of {', '.join(EVENT_TYPES)} (default: {','.join(DEFAULT_EVENTS)})",
    )
    p.set_defaults(func=cmd_add)
    p = commands.add_parser("list", help="the webhooks")
    add_format_argument(p)
    p.set_defaults(func=cmd_list)
    p = commands.add_parser("remove", help="delete a webhook and its delivery log")
    p.add_argument("uid")
    p.set_defaults(func=cmd_remove)
