"""What the Gateways page shows about each gateway a person may see (which ones is
vault.access.gateways_visible_to's rule): its application, whether it is online and its last
heartbeat and the version it reported, the configurations naming it in the person's own folders, the rotations queued and
running on it, and how to run it: the command and the names of the environment it needs, never
their values. A fixed number of queries, however many gateways there are.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, QuerySet

import vault
from rotation.models import Rotation
from vault.access import folders_for_user
from vault.models import Gateway, PamConfiguration

RUN_COMMAND = "python manage.py pam gateway run {name}"
# What a gateway process reads from its environment, by name: the same values as the web app's.
RUN_ENVIRONMENT = (
    ("DATABASE_URL", "the vault's database"),
    ("REDIS_URL", "the task queue, when the web app has one (without it, the database)"),
    ("VAULT_ENCRYPTION_KEYS", "the key ring that decrypts the configurations' secret keys"),
    ("SECRET_KEY", "the web app's: django-q2 signs the task messages with it"),
)
# Rotations named per gateway; the counts include every one.
ROTATIONS_LISTED = 10

ONLINE, OFFLINE, NEVER_SEEN = "online", "offline", "never seen"


@dataclass
class GatewayRow:
    gateway: Gateway
    state: str
    command: str
    # Configurations naming the gateway, in folders the person is a member of.
    configurations: list[PamConfiguration] = field(default_factory=list)
    # For superusers, who see every gateway: how many others name it.
    unseen_configurations: int = 0
    queued: int = 0
    running: int = 0
    # Queued and running rotations of records in the person's folders, oldest first.
    rotations: list[Rotation] = field(default_factory=list)

    @property
    def web_version(self) -> str:
        return vault.__version__

    @property
    def version_differs(self) -> bool:
        """The gateway's last heartbeat came from code other than this web app's."""
        return bool(self.gateway.version) and self.gateway.version != vault.__version__

    @property
    def more_rotations(self) -> int:
        """Active rotations on the gateway not listed (other folders', or beyond the list)."""
        return self.queued + self.running - len(self.rotations)


def _state(gateway: Gateway) -> str:
    if gateway.last_seen_at is None:
        return NEVER_SEEN
    return ONLINE if gateway.is_online else OFFLINE


def gateway_rows(user, gateways: QuerySet[Gateway]) -> list[GatewayRow]:
    """One row per gateway of `gateways` (already limited to what `user` may see)."""
    rows = {
        g.pk: GatewayRow(gateway=g, state=_state(g), command=RUN_COMMAND.format(name=g.name))
        for g in gateways.select_related("application").order_by("name")
    }
    if not rows:
        return []
    by_name = {row.gateway.name: row for row in rows.values()}
    folders = folders_for_user(user)
    configurations = (
        PamConfiguration.objects.filter(gateway_id__in=rows, folder__in=folders)
        .select_related("folder")
        .order_by("title", "pk")
    )
    for config in configurations:
        rows[config.gateway_id].configurations.append(config)
    if user.is_superuser:
        unseen = (
            PamConfiguration.objects.filter(gateway_id__in=rows)
            .exclude(folder__in=folders)
            .values("gateway_id")
            .annotate(n=Count("pk"))
        )
        for entry in unseen:
            rows[entry["gateway_id"]].unseen_configurations = entry["n"]
    active = Rotation.objects.filter(status__in=Rotation.ACTIVE, gateway_name__in=by_name)
    for entry in active.order_by().values("gateway_name", "status").annotate(n=Count("pk")):
        row = by_name[entry["gateway_name"]]
        if entry["status"] == Rotation.QUEUED:
            row.queued = entry["n"]
        else:
            row.running = entry["n"]
    listed: dict[str, list[Rotation]] = defaultdict(list)
    mine = (
        active.filter(pam_user__folder__in=folders)
        .select_related("pam_user__folder")
        .order_by("created_at", "pk")
    )
    for rotation in mine[: ROTATIONS_LISTED * len(by_name)]:
        if len(listed[rotation.gateway_name]) < ROTATIONS_LISTED:
            listed[rotation.gateway_name].append(rotation)
    for name, rotations in listed.items():
        by_name[name].rotations = rotations
    return list(rows.values())
