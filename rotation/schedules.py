"""Rotation schedules: Keeper Commander's schedule JSON -> the next run times.

Pure module (no Django, no django-q2): the scheduler stores `next_run_at` computed here, the
forms and the CLI validate with `normalize_schedule`, the pages show `describe_schedule`.

Schedule JSON, as Keeper Commander writes it (`pam rotation edit --schedulejson`, `pam import`):

    {"type": "WEEKLY", "utcTime": "15:44", "weekday": "SUNDAY", "intervalCount": 1}
    {"type": "DAILY", "time": "17:00:00", "tz": "Asia/Calcutta", "intervalCount": 2}
    {"type": "MONTHLY_BY_DAY", "time": "02:00", "tz": "Europe/Berlin", "monthDay": 31}
    {"type": "MONTHLY_BY_WEEKDAY", "time": "09:30:00", "weekday": "FRIDAY", "occurrence": "LAST"}
    {"type": "YEARLY", "time": "00:00:00", "month": "MAY", "monthDay": 20}
    {"type": "DAILY", "time": "03:00:00", "tz": "Etc/UTC", "intervalCount": 1, "occurrences": 5}
    {"type": "CRON", "cron": "0 0 3 ? * MON-FRI", "tz": "America/Chicago"}
    {"type": "RUN_ONCE", "time": "2026-05-01T09:00:00", "tz": "Etc/UTC"}
    {"type": "ON_DEMAND"}  (also Keeper import's "on-demand")

The canonical form `normalize_schedule` returns (and the database stores) always has `type`;
the calendar types have `time` ("HH:MM:SS", local wall time in `tz`), `tz` and `intervalCount`;
`utcTime` becomes `time` with `tz` "UTC". CRON keeps the expression as written plus `tz`.
RUN_ONCE has `time` as a local date and time ("YYYY-MM-DDTHH:MM:SS") and `tz`. A key no
Commander schedule has is refused, naming it; keys of another type are ignored (forms post them).
docs/schedules.md maps each type to Commander's meaning.

Decisions worth knowing:
- intervalCount > 1 is anchored to fixed epochs, never to when the schedule was saved, so any
  process computes the same runs: DAILY runs on days whose distance from Monday 1970-01-05 is a
  multiple of N; WEEKLY in the (Monday-based) weeks counted from that Monday; MONTHLY_* in
  months counted from January 1970; YEARLY in years counted from 1970.
- DAILY's `occurrences` is Commander's "every N days" (its importer writes `*/N` days as
  `occurrences: N` beside `intervalCount: 1`): it is the interval. Both above 1 and different is
  an error; on another type it is an error too, rather than silently dropped.
- RUN_ONCE runs once at its date and time, if that is still ahead; Commander writes
  "2000-01-01T00:00:00" as a placeholder, which never runs.
- Times are wall-clock times in `tz`. A time that does not exist that day (spring-forward gap)
  runs once at the first instant after the gap (02:30 -> 03:00); a time that occurs twice
  (fall-back) runs once, at its first occurrence (fold=0). 5-field cron runs the same rules on
  croniter's local naive times, and never returns the same UTC instant twice.
- Cron: 5 fields are standard cron, read by croniter as before. 6 or 7 fields are Quartz
  (Keeper's form: `sec min hour dom mon dow [year]`), read and run by rotation/quartz.py exactly
  as Quartz's CronExpression does, including its daylight-saving rules (a fire time inside a
  gap does not fire that day; one in a repeated hour fires at its second occurrence).
"""

from __future__ import annotations

import calendar
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter

from rotation import quartz

# Keeper's names for days, weeks and months: the schedule widget offers the same ones.
from vault.schedule_widget import MONTHS, OCCURRENCES, WEEKDAYS

logger = logging.getLogger(__name__)

__all__ = [
    "ScheduleError",
    "SCHEDULE_TYPES",
    "WEEKDAYS",
    "OCCURRENCES",
    "MONTHS",
    "normalize_schedule",
    "schedule_problem",
    "schedule_from_cron",
    "next_run",
    "next_runs",
    "describe_schedule",
]

SCHEDULE_TYPES = (
    "ON_DEMAND",
    "RUN_ONCE",
    "DAILY",
    "WEEKLY",
    "MONTHLY_BY_DAY",
    "MONTHLY_BY_WEEKDAY",
    "YEARLY",
    "CRON",
)
MAX_INTERVAL = 365

_CALENDAR_TYPES = ("DAILY", "WEEKLY", "MONTHLY_BY_DAY", "MONTHLY_BY_WEEKDAY", "YEARLY")
_EPOCH_MONDAY = date(1970, 1, 5)
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_DATETIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2}))?$")
# Days in each month at most (February 29 exists in leap years; clamped otherwise).
_MONTH_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# What a person calls each schedule key: the form's labels, so that an error shown beside a
# field names it as the page does (never the JSON key, such as monthDay).
_KEY_LABELS = {
    "time": "Time",
    "utcTime": "Time (UTC)",
    "tz": "Time zone",
    "intervalCount": "The interval",
    "occurrences": "Every N days (occurrences)",
    "weekday": "Weekday",
    "monthDay": "Day of month",
    "occurrence": "Which weekday of the month",
    "month": "Month",
}
# Every key a Commander schedule may carry; any other key is refused.
_KNOWN_KEYS = ("type", *_KEY_LABELS, "cron")
_CRON_FIELD_RE = re.compile(r"^[A-Za-z0-9*?,/#\-]+$")
_CRON_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
# Generous: a day-wide gap (Pacific/Apia 2011) with an every-minute cron stays far below it.
_MAX_CANDIDATES = 100_000


class ScheduleError(ValueError):
    """An invalid schedule; the message is fit to show as a form field error.

    `field` names the schedule key at fault ("type", "time", "tz", "weekday", "monthDay",
    "occurrence", "month", "intervalCount", "cron") or is None for the schedule as a whole.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --------------------------------------------------------------------------- normalization


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _present(data: dict, key: str) -> bool:
    # Forms post empty strings for fields that do not apply; treat them as absent.
    return data.get(key) not in (None, "")


def _parse_time(value: object, key: str) -> str:
    if isinstance(value, time):
        hour, minute, second = value.hour, value.minute, value.second
    else:
        match = _TIME_RE.match(value.strip()) if isinstance(value, str) else None
        if not match:
            raise ScheduleError(
                f'{_KEY_LABELS[key]} must be a time of day as "HH:MM" or "HH:MM:SS" '
                f'(got "{_shown(value)}").',
                key,
            )
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ScheduleError(
                f'{_KEY_LABELS[key]} "{_shown(value)}" is not a time of day (00:00 to 23:59:59).',
                key,
            )
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def _parse_datetime(value: object, key: str) -> str:
    """A local date and time (RUN_ONCE), as "YYYY-MM-DDTHH:MM:SS"."""
    if isinstance(value, datetime):
        value = value.replace(tzinfo=None, microsecond=0).isoformat()
    match = _DATETIME_RE.match(value.strip()) if isinstance(value, str) else None
    moment = None
    if match:
        try:
            moment = datetime(*(int(part or 0) for part in match.groups()))
        except ValueError:
            moment = None
    if moment is None:
        raise ScheduleError(
            f"{_KEY_LABELS[key]} of a RUN_ONCE schedule must be a date and time as "
            f'"YYYY-MM-DDTHH:MM:SS" (got "{_shown(value)}").',
            key,
        )
    return moment.isoformat()


def _check_keys(data: dict) -> None:
    for key in data:
        if key not in _KNOWN_KEYS:
            raise ScheduleError(
                f'Unknown schedule key "{_shown(key)}": a schedule has only '
                f"{', '.join(_KNOWN_KEYS)}.",
                key if isinstance(key, str) else None,
            )


def _daily_interval(data: dict) -> int:
    """DAILY's interval: intervalCount, or Commander's occurrences (every N days)."""
    interval = occurrences = 1
    if _present(data, "intervalCount"):
        interval = _parse_int(data["intervalCount"], "intervalCount", 1, MAX_INTERVAL)
    if _present(data, "occurrences"):
        occurrences = _parse_int(data["occurrences"], "occurrences", 1, MAX_INTERVAL)
    if interval > 1 and occurrences > 1 and interval != occurrences:
        raise ScheduleError(
            f"intervalCount ({interval}) and occurrences ({occurrences}) both give the number of "
            "days between runs and disagree: give one of them.",
            "occurrences",
        )
    return max(interval, occurrences)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _parse_tz(value: object) -> str:
    if value in (None, ""):
        return "UTC"
    if not isinstance(value, str):
        raise ScheduleError("Time zone must be an IANA time zone name such as Europe/Berlin.", "tz")
    name = value.strip()
    try:
        _zone(name)
    except Exception:  # ZoneInfo raises KeyError, ValueError or OSError subclasses
        raise ScheduleError(
            f'Unknown time zone "{_shown(value)}": use an IANA name such as Europe/Berlin or UTC.',
            "tz",
        ) from None
    return name


def _parse_int(value: object, key: str, low: int, high: int, where: str = "") -> int:
    """A whole number from low to high; `where` ends the range in the message ("in February")."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        number = int(value.strip())
    if number is None or not low <= number <= high:
        within = f"{low} to {high}{f' {where}' if where else ''}"
        raise ScheduleError(
            f'{_KEY_LABELS[key]} must be a whole number from {within} (got "{_shown(value)}").',
            key,
        )
    return number


def _parse_name(value: object, key: str, names: tuple[str, ...]) -> str:
    if isinstance(value, str):
        wanted = value.strip().upper()
        for name in names:
            if wanted == name or (len(wanted) == 3 and name.startswith(wanted)):
                return name
    raise ScheduleError(
        f'{_KEY_LABELS[key]} must be one of {", ".join(names)} (got "{_shown(value)}").',
        key,
    )


def _parse_month(value: object) -> str:
    if (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value.strip().isdigit()
    ):
        return MONTHS[_parse_int(value, "month", 1, 12) - 1]
    return _parse_name(value, "month", MONTHS)


def _parse_type(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScheduleError(
            f"The schedule needs a type: one of {', '.join(SCHEDULE_TYPES)}.", "type"
        )
    wanted = re.sub(r"[\s-]+", "_", value.strip().upper())
    if wanted not in SCHEDULE_TYPES:
        raise ScheduleError(
            f'Unknown schedule type "{_shown(value)}": use one of {", ".join(SCHEDULE_TYPES)}.',
            "type",
        )
    return wanted


def _load(data: object) -> dict:
    if isinstance(data, str):
        if not data.strip():
            raise ScheduleError("The schedule is empty; give a schedule JSON object.")
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ScheduleError(f"The schedule is not valid JSON ({exc.msg}).") from None
        except RecursionError:
            raise ScheduleError("The schedule JSON is nested too deeply.") from None
    if not isinstance(data, dict):
        raise ScheduleError(
            'The schedule must be a JSON object such as {"type": "DAILY", "time": "03:00"}.'
        )
    return data


def normalize_schedule(data: dict | str) -> dict:
    """Validate a Keeper-style schedule (dict or JSON text) and return its canonical dict.

    Raises ScheduleError, and only ScheduleError, for anything invalid.
    """
    data = _load(data)
    _check_keys(data)
    kind = _parse_type(data.get("type"))
    if _present(data, "occurrences") and kind != "DAILY":
        raise ScheduleError(
            "occurrences (every N days) belongs to DAILY schedules only; use intervalCount for "
            f"a {kind} schedule.",
            "occurrences",
        )
    if kind == "ON_DEMAND":
        return {"type": "ON_DEMAND"}
    if kind == "CRON":
        if not _present(data, "cron"):
            raise ScheduleError("A CRON schedule needs a cron expression.", "cron")
        expression = _normalize_cron(data["cron"])
        return {"type": "CRON", "cron": expression, "tz": _parse_tz(data.get("tz"))}

    tz = _parse_tz(data.get("tz"))
    if _present(data, "time") and _present(data, "utcTime"):
        raise ScheduleError("Give either time (with tz) or utcTime, not both.", "time")
    if kind == "RUN_ONCE":
        if _present(data, "intervalCount"):  # Commander writes 1; it means nothing here
            _parse_int(data["intervalCount"], "intervalCount", 1, MAX_INTERVAL)
        if _present(data, "utcTime"):
            return {"type": kind, "time": _parse_datetime(data["utcTime"], "utcTime"), "tz": "UTC"}
        if not _present(data, "time"):
            raise ScheduleError(
                "A RUN_ONCE schedule needs the date and time to run (time or utcTime).", "time"
            )
        return {"type": kind, "time": _parse_datetime(data["time"], "time"), "tz": tz}
    if _present(data, "utcTime"):
        at, tz = _parse_time(data["utcTime"], "utcTime"), "UTC"
    elif _present(data, "time"):
        at = _parse_time(data["time"], "time")
    else:
        raise ScheduleError(f"A {kind} schedule needs a time of day (time or utcTime).", "time")
    if kind == "DAILY":
        interval = _daily_interval(data)
    elif _present(data, "intervalCount"):
        interval = _parse_int(data["intervalCount"], "intervalCount", 1, MAX_INTERVAL)
    else:
        interval = 1
    result = {"type": kind, "time": at, "tz": tz, "intervalCount": interval}

    def required(key: str, what: str) -> object:
        if not _present(data, key):
            raise ScheduleError(f"A {kind} schedule needs {what} ({key}).", key)
        return data[key]

    if kind in ("WEEKLY", "MONTHLY_BY_WEEKDAY"):
        result["weekday"] = _parse_name(required("weekday", "a weekday"), "weekday", WEEKDAYS)
    if kind == "MONTHLY_BY_WEEKDAY":
        result["occurrence"] = _parse_name(
            required("occurrence", "an occurrence"), "occurrence", OCCURRENCES
        )
    if kind == "MONTHLY_BY_DAY":
        result["monthDay"] = _parse_int(
            required("monthDay", "a day of the month"), "monthDay", 1, 31
        )
    if kind == "YEARLY":
        month = _parse_month(required("month", "a month"))
        most = _MONTH_MAX_DAYS[MONTHS.index(month)]
        result["month"] = month
        result["monthDay"] = _parse_int(
            required("monthDay", "a day of the month"), "monthDay", 1, most, f"in {month.title()}"
        )
    return result


def schedule_problem(schedule: object) -> str:
    """Why a stored schedule cannot be read (saved under older rules, such as a 6/7-field cron
    the croniter path accepted and Quartz refuses), or "" when it can. Empty or null is on
    demand, as the scheduler and the pages read it."""
    try:
        normalize_schedule(schedule or {"type": "ON_DEMAND"})
    except ScheduleError as exc:
        return exc.message
    return ""


def schedule_from_cron(expression: str, tz: str = "UTC") -> dict:
    """The canonical CRON schedule for a cron expression (5-field or Keeper's Quartz form)."""
    return normalize_schedule({"type": "CRON", "cron": expression, "tz": tz})


# --------------------------------------------------------------------------------- cron


def _fields(expression: str) -> list[str]:
    # Quartz separates its fields by spaces and tabs only.
    return [part for part in re.split(r"[ \t]+", expression) if part]


def _is_quartz(expression: str) -> bool:
    """6 or more fields: Keeper's Quartz form, read by rotation/quartz.py."""
    return len(_fields(expression)) >= 6


def _count_error(expression: str, count: int) -> ScheduleError:
    return ScheduleError(
        "A cron expression has 5 fields (minute hour day month weekday), or Keeper's 6 or 7 "
        f'Quartz fields (second minute hour day month weekday [year]); "{_shown(expression)}" '
        f"has {count}.",
        "cron",
    )


def _quartz(expression: str) -> quartz.QuartzCron:
    try:
        return quartz.parse(expression)
    except quartz.QuartzCronError as exc:
        raise ScheduleError(
            f'The cron expression "{_shown(expression)}" is not valid: {exc.reason}.', "cron"
        ) from None


def _five_field_problem(fields: list[str]) -> str:
    """Which field croniter refuses, in our words (never croniter's own text)."""
    for index, field in enumerate(fields):
        probe = ["*"] * 5
        probe[index] = field
        try:
            croniter(" ".join(probe), datetime(2000, 1, 1)).get_next(datetime)
        except Exception:  # croniter raises several error types
            return (
                f'its {_CRON_FIELD_NAMES[index]} field "{_shown(field)}" is not valid in 5-field '
                "cron"
            )
    return "it never matches a real date"


@lru_cache(maxsize=1024)
def _cron_plan(expression: str) -> str:
    """The croniter expression for a 5-field cron expression (standard cron, as before)."""
    fields = expression.split()
    if len(fields) != 5:
        raise _count_error(expression, len(fields))
    for field in fields:
        if not _CRON_FIELD_RE.match(field):
            raise ScheduleError(
                f'The cron field "{_shown(field)}" in "{expression}" has characters cron does '
                "not use.",
                "cron",
            )
        for term in re.split(r"[,/\-]", field):
            # croniter's H (hashed) and R (random) terms are not cron and not deterministic.
            if term[:1].upper() in ("H", "R"):
                raise ScheduleError(
                    f'The cron field "{field}" in "{expression}" is not supported.', "cron"
                )
    for index, field in enumerate(fields[:3]):
        if "?" in field and not (index == 2 and field == "?"):
            raise ScheduleError(
                f'"?" is only allowed alone in the day-of-month or day-of-week field of '
                f'"{expression}" (not in the {_CRON_FIELD_NAMES[index]} field).',
                "cron",
            )
    minute, hour, dom, month, dow = fields
    dom = "*" if dom == "?" else dom
    dow = "*" if dow == "?" else dow
    five = f"{minute} {hour} {dom} {month} {dow}"
    try:
        croniter(five, datetime(2000, 1, 1)).get_next(datetime)
    except Exception:  # croniter raises several error types
        problem = _five_field_problem([minute, hour, dom, month, dow])
        raise ScheduleError(
            f'The cron expression "{expression}" is not valid: {problem}.', "cron"
        ) from None
    return five


def _normalize_cron(value: object) -> str:
    """The expression to store: 5 fields joined by single spaces; a Quartz expression with its
    fields joined by single spaces, and otherwise as written (Quartz reads it as written)."""
    if not isinstance(value, str) or not value.strip():
        raise ScheduleError("cron must be a cron expression such as 0 3 * * *.", "cron")
    fields = _fields(value)
    if len(fields) > 7:
        raise _count_error(value.strip(), len(fields))
    if len(fields) >= 6:
        expression = " ".join(fields)
        _quartz(expression)
        return expression
    expression = " ".join(value.split())
    _cron_plan(expression)
    return expression


# ----------------------------------------------------------------------------- next runs


def _resolve(naive: datetime, tz: ZoneInfo) -> datetime:
    """Local wall time -> UTC: first occurrence when ambiguous, end of the gap when missing."""
    first = naive.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the earlier of two
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # A spring-forward gap: fold=1 reads the time with the offset after the transition,
    # which lands before the transition; fold=0 with the offset before it, after it.
    low = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    high = int(first.timestamp())
    after_offset = first.astimezone(tz).utcoffset()
    while low < high:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == after_offset:
            high = middle
        else:
            low = middle + 1
    return datetime.fromtimestamp(high, UTC)


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _nth_weekday(year: int, month: int, weekday: int, occurrence: str) -> date:
    if occurrence == "LAST":
        last = calendar.monthrange(year, month)[1]
        return date(year, month, last - (date(year, month, last).weekday() - weekday) % 7)
    first = 1 + (weekday - date(year, month, 1).weekday()) % 7
    return date(year, month, first + 7 * OCCURRENCES.index(occurrence))


def _dates(schedule: dict, start: date) -> Iterator[date]:
    """Run dates of a calendar schedule, in order, from `start` (or shortly before it)."""
    kind, every = schedule["type"], schedule["intervalCount"]
    if kind == "DAILY":
        day = start + timedelta(days=-(start - _EPOCH_MONDAY).days % every)
        while True:
            yield day
            day += timedelta(days=every)
    elif kind == "WEEKLY":
        weekday = WEEKDAYS.index(schedule["weekday"])
        day = start + timedelta(days=(weekday - start.weekday()) % 7)
        day += timedelta(weeks=-((day - _EPOCH_MONDAY).days // 7) % every)
        while True:
            yield day
            day += timedelta(weeks=every)
    elif kind in ("MONTHLY_BY_DAY", "MONTHLY_BY_WEEKDAY"):
        index = _month_index(start)
        index += -(index - 1970 * 12) % every
        while True:
            year, month = divmod(index, 12)
            if kind == "MONTHLY_BY_DAY":
                yield _clamped(year, month + 1, schedule["monthDay"])
            else:
                weekday = WEEKDAYS.index(schedule["weekday"])
                yield _nth_weekday(year, month + 1, weekday, schedule["occurrence"])
            index += every
    elif kind == "YEARLY":
        year = start.year + (-(start.year - 1970) % every)
        month = MONTHS.index(schedule["month"]) + 1
        while True:
            yield _clamped(year, month, schedule["monthDay"])
            year += every


def _next_calendar(schedule: dict, after: datetime) -> datetime | None:
    tz = _zone(schedule["tz"])
    at = time.fromisoformat(schedule["time"])
    local_day = after.astimezone(tz).date()
    start = local_day - timedelta(days=1) if local_day > date.min else local_day
    for count, day in enumerate(_dates(schedule, start)):
        run = _resolve(datetime.combine(day, at), tz)
        if run > after:
            return run
        if count > _MAX_CANDIDATES:
            return None
    return None  # pragma: no cover - _dates never ends


def _next_cron(schedule: dict, after: datetime) -> datetime | None:
    tz = _zone(schedule["tz"])
    if _is_quartz(schedule["cron"]):
        return _quartz(schedule["cron"]).next_after(after, tz)
    five = _cron_plan(schedule["cron"])
    local = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    # Every candidate at or before `after`'s local wall time resolves to at most `after`,
    # so starting just before it misses nothing.
    cron = croniter(five, local - timedelta(minutes=1))
    for _ in range(_MAX_CANDIDATES):
        candidate = cron.get_next(datetime)
        run = _resolve(candidate, tz)
        if run > after:
            return run
    return None


def _next_once(schedule: dict, after: datetime) -> datetime | None:
    run = _resolve(datetime.fromisoformat(schedule["time"]), _zone(schedule["tz"]))
    return run if run > after else None


def _next(schedule: dict, after: datetime) -> datetime | None:
    try:
        if schedule["type"] == "CRON":
            return _next_cron(schedule, after)
        if schedule["type"] == "RUN_ONCE":
            return _next_once(schedule, after)
        return _next_calendar(schedule, after)
    except ScheduleError:
        raise
    except (OverflowError, ValueError):
        # Past the end of the calendar (year 9999), or croniter's CroniterBadDateError
        # (a ValueError) when no later date matches: there is no further run.
        return None


def _check_after(after: datetime) -> None:
    if not isinstance(after, datetime) or after.utcoffset() is None:
        raise ValueError("`after` must be a timezone-aware datetime.")


def next_run(schedule: dict, after: datetime) -> datetime | None:
    """The first run strictly after `after` (aware), as an aware UTC datetime.

    None for ON_DEMAND. Raises ScheduleError if the schedule is invalid.
    """
    _check_after(after)
    canonical = normalize_schedule(schedule)
    if canonical["type"] == "ON_DEMAND":
        return None
    return _next(canonical, after.astimezone(UTC))


def next_run_or_none(schedule: dict, after: datetime, *, settings_pk: int) -> datetime | None:
    """next_run for a schedule already stored: an invalid one (saved under older rules) must
    not stop a rotation from finishing or a scheduler pass from moving on, so it is logged
    and the record gets no next run."""
    try:
        return next_run(schedule, after)
    except ScheduleError:
        logger.warning("rotation settings %s have an invalid schedule", settings_pk)
        return None


def next_runs(schedule: dict, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` runs strictly after `after`, strictly increasing, in UTC."""
    _check_after(after)
    canonical = normalize_schedule(schedule)
    runs: list[datetime] = []
    if canonical["type"] == "ON_DEMAND":
        return runs
    current = after.astimezone(UTC)
    while len(runs) < count:
        found = _next(canonical, current)
        if found is None:
            break
        runs.append(found)
        current = found
    return runs


# ------------------------------------------------------------------------------ describe


def _clock(value: str) -> str:
    return value[:5] if value.endswith(":00") else value


def _ordinal_day(day: int) -> str:
    return f"day {day}" + (" (or the month's last day)" if day > 28 else "")


def describe_schedule(schedule: dict) -> str:
    """A one-line human description, e.g. "Weekly on Sunday at 15:44 (Europe/Berlin)".

    Never raises: an invalid schedule is described as such (pages must render anyway).
    """
    try:
        s = normalize_schedule(schedule)
    except ScheduleError as exc:
        return f"Invalid schedule: {exc.message}"
    kind = s["type"]
    if kind == "ON_DEMAND":
        return "On demand only"
    if kind == "CRON":
        return f"Cron {s['cron']} ({s['tz']})"
    if kind == "RUN_ONCE":
        day, at = s["time"].split("T")
        return f"Once on {day} at {_clock(at)} ({s['tz']})"
    every = s["intervalCount"]
    suffix = f"at {_clock(s['time'])} ({s['tz']})"
    if kind == "DAILY":
        return f"Daily {suffix}" if every == 1 else f"Every {every} days {suffix}"
    if kind == "WEEKLY":
        lead = "Weekly" if every == 1 else f"Every {every} weeks"
        return f"{lead} on {s['weekday'].title()} {suffix}"
    if kind in ("MONTHLY_BY_DAY", "MONTHLY_BY_WEEKDAY"):
        lead = "Monthly" if every == 1 else f"Every {every} months"
        if kind == "MONTHLY_BY_DAY":
            return f"{lead} on {_ordinal_day(s['monthDay'])} {suffix}"
        return f"{lead} on the {s['occurrence'].lower()} {s['weekday'].title()} {suffix}"
    lead = "Yearly" if every == 1 else f"Every {every} years"
    return f"{lead} on {s['month'].title()} {s['monthDay']} {suffix}"
