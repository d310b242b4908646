"""The outbox consumer `notifications.mail`: for an audit event some people asked to hear
about, a Notice per person (the dedupe ledger), then the mail itself, through Django's email
backend (EMAIL_URL). Also the gateways' tick hook that sends what was left for later: notices
of a gateway offline for longer than a person's N minutes, and the daily digests.

A mail is made from the audit event only (its sentence, the object's name, a link): audit
details never hold a secret, so no mail can. Sending happens on the gateways' workers; an SMTP
error raises, and the outbox retries the event later with backoff (notices already sent are
not sent again).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from events.consumers import Consumer, DeliveryError
from notifications.models import DIGEST, DigestRun, Notice, NotificationPreference
from notifications.preferences import (
    ELIGIBLE,
    GATEWAY_OFFLINE,
    KINDS,
    MAY_BE_LIVE,
    ROTATION_FAILED,
    event_kind,
    folders_of_gateway,
    preference_default,
)
from rotation.auditlog import event_sentence
from vault.models import AuditEvent, FolderMember

logger = logging.getLogger(__name__)

CONSUMER_NAME = "notifications.mail"
# A sender's claim on a notice; one that dies mid-send leaves it to the next after this.
SEND_LEASE = timedelta(minutes=5)
# Per tick: each mail may wait EMAIL_TIMEOUT on a slow server; the rest waits a tick.
TICK_LIMIT = 50
SUBJECT_PREFIX = "[PAM Vault] "


# --- who gets a notice ----------------------------------------------------------------------


def mail_wants(event: AuditEvent) -> bool:
    kind = event_kind(event)
    # Recipients are a folder's members (a gateway's: of the folders it serves); an event
    # in no folder has nobody to tell.
    return kind is not None and (event.folder_id is not None or kind == GATEWAY_OFFLINE)


def _notice_key(event: AuditEvent, kind: str) -> str:
    # A rotation is audited in its record's folder and, when its configuration lives
    # elsewhere, in the configuration's folder too: one mail per person for both copies.
    rotation = (event.details or {}).get("rotation")
    if kind in (ROTATION_FAILED, MAY_BE_LIVE) and rotation:
        return f"{kind}:rotation:{rotation}"[:80]
    return f"{kind}:event:{event.pk}"


def _wanting(
    members: QuerySet[FolderMember], kind: str
) -> list[tuple[int, NotificationPreference]]:
    """(user id, preference) of the members whose choice (or default) includes `kind`."""
    members = members.filter(ELIGIBLE, user__is_active=True).exclude(user__email="")
    chosen = {
        (p.user_id, p.folder_id): p
        for p in NotificationPreference.objects.filter(
            user__in=members.values("user"), folder__in=members.values("folder")
        )
    }
    found = []
    for member in members:
        preference = chosen.get((member.user_id, member.folder_id)) or preference_default(member)
        if getattr(preference, kind):
            found.append((member.user_id, preference))
    return found


def _gateway_last_seen(event: AuditEvent) -> datetime:
    seen = parse_datetime(str((event.details or {}).get("last_seen_at") or ""))
    return seen or event.created_at


def notices_create(event: AuditEvent) -> int:
    """The notices `event` owes, one per person who wants it (none twice). Returns how many
    people want it."""
    kind = event_kind(event)
    if kind is None:
        return 0
    key = _notice_key(event, kind)
    if kind == GATEWAY_OFFLINE:
        folders = folders_of_gateway(event.object_uid)
        members = FolderMember.objects.filter(folder__in=folders)
    elif event.folder_id is None:
        return 0
    else:
        members = FolderMember.objects.filter(folder_id=event.folder_id)
    by_user: dict[int, list[NotificationPreference]] = {}
    for user_id, preference in _wanting(members, kind):
        by_user.setdefault(user_id, []).append(preference)
    rows = []
    for user_id, preferences in by_user.items():
        due = event.created_at
        if kind == GATEWAY_OFFLINE:
            minutes = min(p.gateway_offline_minutes for p in preferences)
            due = max(due, _gateway_last_seen(event) + timedelta(minutes=minutes))
        rows.append(
            Notice(
                event=event,
                user_id=user_id,
                key=key,
                kind=kind,
                # In more than one folder: at once if any of them says so.
                digest=all(p.delivery == DIGEST for p in preferences),
                due_at=due,
            )
        )
    Notice.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --- what a mail says -----------------------------------------------------------------------


def absolute_url(path: str) -> str:
    return settings.VAULT_BASE_URL.rstrip("/") + path


def event_link(event: AuditEvent) -> str:
    """The page that fixes it: the record's (or the configuration's, for its folder's copy),
    or the gateways page."""
    if event.object_type == "pamuser" and event.object_uid:
        return absolute_url(reverse("record_detail", kwargs={"uid": event.object_uid}))
    if event.object_type == "pamconfiguration" and event.object_uid:
        return absolute_url(reverse("configuration_detail", kwargs={"uid": event.object_uid}))
    return absolute_url(reverse("gateways"))


def _one_line(text: str) -> str:
    # A header with a line break is refused by Django (BadHeaderError): titles are free text.
    return " ".join(text.split())


def _name(event: AuditEvent) -> str:
    login = (event.details or {}).get("login")
    if login:  # the copy audited in the configuration's folder
        return f"IAM user “{login}” (configuration “{event.object_repr}”)"
    return f"“{event.object_repr}”"


def notice_subject(notice: Notice) -> str:
    event, name = notice.event, _name(notice.event)
    subjects = {
        ROTATION_FAILED: f"Rotation of {name} failed",
        MAY_BE_LIVE: f"Action needed: a password of {name} may be live in AWS",
        GATEWAY_OFFLINE: f"Gateway “{event.object_repr}” is offline",
    }
    text = subjects.get(notice.kind, f"Test connection of {name} failed")
    return _one_line(SUBJECT_PREFIX + text)[:200]


def _item(notice: Notice) -> dict:
    event = notice.event
    return {
        "notice": notice,
        "kind": KINDS.get(notice.kind, notice.kind),
        "subject": notice_subject(notice),
        "sentence": event_sentence(event),
        "when": event.created_at,
        "folder": event.folder.name if event.folder else "",
        "link": event_link(event),
        "may_be_live": notice.kind == MAY_BE_LIVE,
        "gateway_offline": notice.kind == GATEWAY_OFFLINE,
    }


def _message(user, subject: str, template: str, context: dict) -> EmailMessage:
    body = render_to_string(
        template,
        {**context, "user": user, "preferences": absolute_url(reverse("notification_prefs"))},
    )
    return EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={"Auto-Submitted": "auto-generated"},
    )


def notice_message(notice: Notice) -> EmailMessage:
    item = _item(notice)
    return _message(notice.user, item["subject"], "notifications/mail/event.txt", item)


def digest_message(user, notices: list[Notice]) -> EmailMessage:
    items = [_item(n) for n in notices]
    noun = "event" if len(items) == 1 else "events"
    subject = f"{SUBJECT_PREFIX}Daily digest: {len(items)} {noun} need your attention"
    return _message(user, subject, "notifications/mail/digest.txt", {"items": items})


# --- sending --------------------------------------------------------------------------------


def _still_owed(notice: Notice) -> bool:
    """Whether the notice is still worth a mail when it is sent (later, for some)."""
    user, event = notice.user, notice.event
    if not user.is_active or not user.email:
        return False
    if notice.kind == GATEWAY_OFFLINE:
        back = AuditEvent.objects.filter(
            action="gateway.online", object_uid=event.object_uid, created_at__gt=event.created_at
        )
        return not back.exists()
    # Someone removed from the folder since is told nothing more about it.
    return FolderMember.objects.filter(ELIGIBLE, folder_id=event.folder_id, user=user).exists()


def _claim(notice: Notice, now: datetime) -> bool:
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    return bool(
        Notice.objects.filter(free, pk=notice.pk, status=Notice.PENDING).update(
            claimed_until=now + SEND_LEASE
        )
    )


def _mark(notices: list[Notice], status: str) -> None:
    changes = {"status": status, "claimed_until": None}
    if status == Notice.SENT:
        changes["sent_at"] = timezone.now()
    Notice.objects.filter(pk__in=[n.pk for n in notices]).update(**changes)


def _release(notices: list[Notice]) -> None:
    Notice.objects.filter(pk__in=[n.pk for n in notices]).update(claimed_until=None)


def notices_send(notices: QuerySet[Notice], *, now: datetime | None = None) -> tuple[int, list]:
    """Send each notice (not digests) this sender claims, one mail each, over one connection.
    Returns (how many were sent, the errors of those that were not)."""
    now = now or timezone.now()
    sent, errors = 0, []
    todo = [n for n in notices if _claim(n, now)]
    if not todo:
        return 0, []
    connection = get_connection()
    try:
        for notice in todo:
            if not _still_owed(notice):
                _mark([notice], Notice.DROPPED)
                notice.status = Notice.DROPPED
                continue
            try:
                message = notice_message(notice)
                message.connection = connection
                message.send()
            except Exception as exc:  # the outbox or the next tick tries it again
                logger.warning("mail for notice %s not sent: %s", notice.pk, type(exc).__name__)
                errors.append(exc)
                # The server is likely down for the rest too: each would wait EMAIL_TIMEOUT.
                _release([n for n in todo if n.status == Notice.PENDING])
                break
            _mark([notice], Notice.SENT)
            notice.status = Notice.SENT
            sent += 1
    finally:
        try:
            connection.close()
        except Exception:  # closing a dead SMTP connection: nothing left to lose
            logger.debug("closing the mail connection failed", exc_info=True)
    return sent, errors


def mail_deliver(event: AuditEvent) -> None:
    """The outbox's delivery of one event: its notices, and the mails due now. Raises while
    a mail could not be sent, so the outbox tries again later."""
    notices_create(event)
    now = timezone.now()
    due = Notice.objects.filter(
        event=event, status=Notice.PENDING, digest=False, due_at__lte=now
    ).select_related("event__folder", "user")
    sent, errors = notices_send(due, now=now)
    if errors:
        # Names the error's type only: an SMTP answer may quote addresses.
        kinds = ", ".join(sorted({type(e).__name__ for e in errors}))
        raise DeliveryError(f"{len(errors)} mail(s) not sent ({kinds}); sent {sent}")


# --- the gateways' tick: mails left for later, and the daily digest -------------------------


def _digest_day(now: datetime):
    """Today's date if the digest hour (NOTIFICATIONS_DIGEST_HOUR, in TIME_ZONE) has come."""
    local = timezone.localtime(now)
    return local.date() if local.hour >= settings.NOTIFICATIONS_DIGEST_HOUR else None


def digests_send(*, now: datetime | None = None) -> int:
    """Each person's digest of the digest notices due, at most once a day, from the first
    tick after the digest hour. Returns how many digests were sent."""
    now = now or timezone.now()
    day = _digest_day(now)
    if day is None:
        return 0
    due = Notice.objects.filter(status=Notice.PENDING, digest=True, due_at__lte=now)
    sent = 0
    for user_id in due.values_list("user_id", flat=True).distinct().order_by("user_id"):
        try:
            with transaction.atomic():
                run = DigestRun.objects.create(user_id=user_id, day=day)
        except IntegrityError:
            continue  # sent today already, or another gateway is sending it now
        notices = [
            n
            for n in due.filter(user_id=user_id).select_related("event__folder", "user")
            if _claim(n, now)
        ]
        owed = [n for n in notices if _still_owed(n)]
        _mark([n for n in notices if n not in owed], Notice.DROPPED)
        if not owed:
            run.delete()
            continue
        try:
            digest_message(owed[0].user, owed).send()
        except Exception as exc:  # the next tick tries again (today's run is given back)
            logger.warning("digest for user %s not sent: %s", user_id, type(exc).__name__)
            _release(owed)
            run.delete()
            continue
        _mark(owed, Notice.SENT)
        sent += 1
    return sent


def notifications_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Every gateway's tick: the mails left for later (a gateway offline for longer than
    someone's N minutes) that are due, and the digests. Other mails are the outbox's: it
    retries them with backoff."""
    now = now or timezone.now()
    due = Notice.objects.filter(
        status=Notice.PENDING, digest=False, kind=GATEWAY_OFFLINE, due_at__lte=now
    ).select_related("event__folder", "user")
    sent, errors = notices_send(due.order_by("due_at", "pk")[:TICK_LIMIT], now=now)
    return {"sent": sent, "failed": len(errors), "digests": digests_send(now=now)}


CONSUMER = Consumer(name=CONSUMER_NAME, wants=mail_wants, deliver=mail_deliver)
