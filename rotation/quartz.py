"""Quartz cron expressions (6 or 7 fields), read and run exactly as Quartz runs them.

This module owns Keeper's cron form: `second minute hour day-of-month month day-of-week [year]`,
as Quartz's `org.quartz.CronExpression` reads it (Keeper's back end schedules rotations with
Quartz). Pure: no Django, no croniter. `rotation/schedules.py` sends 6- and 7-field expressions
here and keeps croniter for the 5-field form.

The specification is Quartz's behaviour, not its documentation: `parse` accepts exactly the
expressions Quartz's parser accepts and refuses the others with a message in our words that
names the field; `QuartzCron.next_after` returns the instant Quartz's `getTimeAfter` returns.
Both follow Quartz where it surprises: text after a complete value is ignored ("MONDAY" reads as
MON, "3AM" as 3); empty list items are skipped; "L" alone in day-of-week is Saturday; with "#" or
"nL" only the smallest day-of-week counts; "L-n" and plain days are compared by Quartz's own
encoding; a "W" day found before the hour search resets keeps the hour already found.
tests/rotation/test_quartz.py and quartz_vectors.json hold the vectors, taken from Quartz's
CronExpressionTest and from Quartz's CronExpression run on each expression.

Two additions of ours, where Quartz's scheduler itself could not use the expression:
- An expression whose seconds, minutes, hours, months or (for a day-of-week schedule)
  day-of-week select nothing (e.g. month "L" or a field ","), which Quartz's parser passes and
  its scheduler then fails on, is refused.
- A year range Quartz would take forever or run out of memory to list is refused.

Daylight saving time, as Quartz (java.util.GregorianCalendar) resolves a wall-clock time:
- A time that does not exist (spring-forward gap) is read in the offset before the gap and so
  lands after it; the search then finds the hour it asked for missing and moves on. So a fire
  time inside the gap does not fire that day ("0 30 2 * * ?" in Europe/Berlin skips the day the
  clocks go from 02:00 to 03:00), and a range over the gap resumes at the end of the gap.
- A time that occurs twice (fall-back overlap) is read in the offset after the change, the
  second occurrence. A fire time in the repeated hour fires once, at its second occurrence, and
  the first pass through that hour fires nothing.
Each run is strictly after the given instant, at whole seconds. Years run to Quartz's MAX_YEAR
(this year + 100, as Quartz computes it when loaded); after that there is no next run.
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["QuartzCronError", "QuartzCron", "parse", "MAX_YEAR", "FIELD_NAMES"]

FIELD_NAMES = ("seconds", "minutes", "hours", "day-of-month", "month", "day-of-week", "year")
SEC, MIN, HOUR, DOM, MONTH, DOW, YEAR = range(7)

# Quartz's last year, fixed when it is loaded: this year + 100.
MAX_YEAR = datetime.now(UTC).year + 100
_SEARCH_END_YEAR = 2999  # Quartz gives up on a search that passes this year

# Markers Quartz keeps inside the value sets, with the same numbers so that the searches that
# meet them (a ceiling in day-of-month) behave the same.
_ANY = 99  # "*"
_NO_SPEC = 98  # "?"
_LAST_DAY = 62  # "L" in day-of-month; "L-n" is 62 - n
_MAX_LAST_OFFSET = 30
_INT_MAX = 2**31 - 1
_INT_MIN = -(2**31)
_MAX_YEAR_VALUES = 10_000_000  # a year list longer than this is refused (Quartz: out of memory)
_MAX_STEPS = 200_000  # search steps before giving up (Quartz's own search ends by year 3000)

_MONTH_NUMBERS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_DAY_NUMBERS = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)
}
_L_TERM = re.compile(r"L-[0-9]*W?")
# Quartz's range of values per field (the year has none), and the largest step it allows.
_LIMITS = {SEC: (0, 59), MIN: (0, 59), HOUR: (0, 23), DOM: (1, 31), MONTH: (1, 12), DOW: (1, 7)}
_MAX_STEP = {SEC: 59, MIN: 59, HOUR: 23, DOM: 31, MONTH: 12, DOW: 7}
_WRAP = {SEC: 60, MIN: 60, HOUR: 24, DOM: 31, MONTH: 12, DOW: 7}
_VALUES_IN_WORDS = {
    SEC: "from 0 to 59",
    MIN: "from 0 to 59",
    HOUR: "from 0 to 23",
    DOM: "from 1 to 31",
    MONTH: "from 1 to 12 (or JAN to DEC)",
    DOW: "from 1 (SUN) to 7 (SAT)",
}


class QuartzCronError(ValueError):
    """An expression Quartz refuses.

    `reason` says why, as a clause ("in the day-of-week field "8", day-of-week values run from
    1 (SUN) to 7 (SAT)"); `message` is the same as a sentence; `field` is the name of the field
    at fault (one of FIELD_NAMES), or None when it is the number of fields.
    """

    def __init__(self, reason: str, field: str | None = None) -> None:
        self.reason = reason
        self.message = reason[:1].upper() + reason[1:] + "."
        super().__init__(self.message)
        self.field = field


class _Refused(Exception):
    """Raised inside the parser; turned into QuartzCronError naming the field and its text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------------------ numbers


def _java_int(text: str) -> int:
    """A whole number as Java's Integer.parseInt reads it (sign, any Unicode decimal digits)."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body:
        raise _Refused(f'"{text}" is not a number')
    value = 0
    for char in body:
        digit = unicodedata.decimal(char, None)
        if digit is None:
            raise _Refused(f'"{text}" is not a number')
        value = value * 10 + digit
    if text[:1] == "-":
        value = -value
    if not _INT_MIN <= value <= _INT_MAX:
        raise _Refused(f'"{text}" is too large')
    return value


def _is_digit(text: str, index: int) -> bool:
    return index < len(text) and "0" <= text[index] <= "9"


def _digits(text: str, index: int, lead: int) -> tuple[int, int]:
    """The number `lead` continued by the ASCII digits at `index`, and where they end.

    As Quartz: the end is one past the text's length when the digits run to its end.
    """
    if index >= len(text):
        raise _Refused("it ends too early")
    end = index
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    value = int(f"{lead}{text[index:end]}")
    if value > _INT_MAX:
        raise _Refused(f'"{lead}{text[index:end]}" is too large')
    return value, (end if end < len(text) else end + 1)


def _one_digit(text: str, index: int) -> int:
    if index >= len(text):
        raise _Refused("it ends too early")
    value = unicodedata.decimal(text[index], None)
    if value is None:
        raise _Refused(f'"{text[index]}" is not a number')
    return value


def _wrap32(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def _java_remainder(value: int, divisor: int) -> int:
    return int(math.fmod(value, divisor))


# ------------------------------------------------------------------------------ parsing


class _Parser:
    """Builds Quartz's value sets from one expression (upper-cased first, as Quartz does)."""

    def __init__(self) -> None:
        self.sets: list[set[int]] = [set() for _ in range(7)]
        self.nearest: set[int] = set()  # "W" days: 1-31, or 62 - n for "L-nW"
        self.last_weekday = False  # "nL" in day-of-week
        self.nth = 0  # "n#m" in day-of-week: m
        self.years_beyond = False  # some year after MAX_YEAR was asked for

    # Quartz's storeExpressionVals: one comma-separated term of a field.
    def term(self, text: str, field: int) -> None:
        first = text[0]
        if "A" <= first <= "Z" and text not in ("L", "LW") and not _L_TERM.fullmatch(text):
            self._named(text, field)
        elif first == "?":
            self._no_value(text, field)
        elif first in "*/":
            self._every(text, field)
        elif first == "L":
            self._last(text, field)
        elif "0" <= first <= "9":
            self._number(text, field)
        else:
            raise _Refused(f'"{first}" is not allowed here')

    def _named(self, text: str, field: int) -> None:
        if field not in (MONTH, DOW):
            raise _Refused("letters are allowed only in the month and day-of-week fields")
        names = _MONTH_NUMBERS if field == MONTH else _DAY_NUMBERS
        kind = "a month name (JAN to DEC)" if field == MONTH else "a day name (SUN to SAT)"
        if len(text) < 3 or text[:3] not in names:
            raise _Refused(f'"{text[:3]}" is not {kind}')
        start, end = names[text[:3]], -1
        follow = text[3] if len(text) > 3 else ""
        if follow == "-":
            if len(text) < 7 or text[4:7] not in names:
                raise _Refused(f'"{text[4:7]}" after "-" is not {kind}')
            end = names[text[4:7]]
        elif follow == "#" and field == DOW:
            self._set_nth(text[4:])
        elif follow == "L" and field == DOW:
            self.last_weekday = True
        self._add(start, end, 1 if end != -1 else 0, field)

    def _set_nth(self, text: str) -> None:
        try:
            nth = _java_int(text)
        except _Refused:
            nth = 0
        if not 1 <= nth <= 5:
            raise _Refused('the number after "#" must be from 1 to 5')
        self.nth = nth

    def _no_value(self, text: str, field: int) -> None:
        if len(text) > 2:
            raise _Refused('"?" must stand alone')
        if field not in (DOM, DOW):
            raise _Refused('"?" (no specific value) is allowed only in day-of-month or day-of-week')
        if field == DOW and self.sets[DOM] and max(self.sets[DOM]) == _NO_SPEC:
            raise _Refused('"?" may be given in day-of-month or in day-of-week, not in both')
        self._add(_NO_SPEC, -1, 0, field)

    def _every(self, text: str, field: int) -> None:
        if text == "*":
            self._add(_ANY, -1, 0, field)
            return
        if text == "/":
            raise _Refused('"/" must be followed by a number')
        index = 1 if text[0] == "*" else 0
        if text[index] == "/":
            index += 1
            if index >= len(text):
                raise _Refused('"/" must be followed by a number')
            step = _java_int(text[index:])
            self._check_step(step, field)
        else:
            step = 1
        self._add(_ANY, -1, step, field)

    def _last(self, text: str, field: int) -> None:
        if field < DOM:
            raise _Refused('"L" (last) is allowed only in the day-of-month and day-of-week fields')
        if field == DOW:
            self._add(7, 7, 0, field)  # "L" alone is the last day of the week, Saturday
        elif field == DOM:
            value, index, nearest = _LAST_DAY, 1, False
            if len(text) > 1:
                if text[1] == "-":
                    offset, index = _digits(text, 2, 0)
                    if offset > _MAX_LAST_OFFSET:
                        raise _Refused(
                            f"the offset from the last day must be {_MAX_LAST_OFFSET} at most"
                        )
                    value -= offset
                if len(text) > index and text[index] == "W":
                    nearest = True
            (self.nearest if nearest else self.sets[DOM]).add(value)
        # In the month and year fields Quartz reads "L" and adds nothing.

    def _number(self, text: str, field: int) -> None:
        value, index = int(text[0]), 1
        if len(text) == 1:
            self._add(value, -1, -1, field)
            return
        if _is_digit(text, 1):
            value, index = _digits(text, 1, value)
        self._after_number(text, index, value, field)

    def _after_number(self, text: str, index: int, value: int, field: int) -> None:
        if index >= len(text):
            self._add(value, -1, -1, field)
            return
        mark = text[index]
        if mark == "L":
            if field != DOW:
                raise _Refused('"nL" (last such weekday) is allowed only in day-of-week')
            if not 1 <= value <= 7:
                raise _Refused(f"day-of-week values run {_VALUES_IN_WORDS[DOW]}")
            self.last_weekday = True
            self.sets[field].add(value)
        elif mark == "W":
            if field != DOM:
                raise _Refused('"W" (nearest weekday) is allowed only in day-of-month')
            if value > 31:
                raise _Refused('"W" needs a day of the month from 1 to 31')
            self.nearest.add(value)
        elif mark == "#":
            if field != DOW:
                raise _Refused('"#" (nth weekday) is allowed only in day-of-week')
            self._set_nth(text[index + 1 :])
            self.sets[field].add(value)
        elif mark == "-":
            self._range(text, index + 1, value, field)
        elif mark == "/":
            if index + 1 >= len(text):
                raise _Refused('"/" must be followed by a number')
            step, index = _one_digit(text, index + 1), index + 2
            if _is_digit(text, index):
                step = _digits(text, index, step)[0]
            elif index < len(text):
                raise _Refused(f'"{text[index]}" is not allowed after "/"')
            self._check_step(step, field)
            self._add(value, -1, step, field)
        else:
            self._add(value, -1, 0, field)  # Quartz ignores the rest of the term

    def _range(self, text: str, index: int, start: int, field: int) -> None:
        end, index = _one_digit(text, index), index + 1
        if index >= len(text):
            self._add(start, end, 1, field)
            return
        if _is_digit(text, index):
            end, index = _digits(text, index, end)
        if index < len(text) and text[index] == "/":
            step, index = _one_digit(text, index + 1), index + 2
            if _is_digit(text, index):
                step = _digits(text, index, step)[0]
            self._add(start, end, step, field)  # Quartz checks no step size here
            return
        self._add(start, end, 1, field)

    @staticmethod
    def _check_step(step: int, field: int) -> None:
        if field in _MAX_STEP and step > _MAX_STEP[field]:
            raise _Refused(f"the step {step} is larger than {_MAX_STEP[field]}")

    # Quartz's addToSet.
    def _add(self, start: int, end: int, step: int, field: int) -> None:
        values = self.sets[field]
        exempt = (_ANY, _NO_SPEC) if field in (DOM, DOW) else (_ANY,)
        if field in _LIMITS and start not in exempt:
            low, high = _LIMITS[field]
            too_low = start == 0 if field == DOW else start < low
            if too_low or start > high or end > high:
                raise _Refused(f"{FIELD_NAMES[field]} values run {_VALUES_IN_WORDS[field]}")
        if step in (0, -1) and start != _ANY:
            values.add(start)
            return
        if start == _ANY and step <= 0:
            step = 1
            values.add(_ANY)
        if field == YEAR:
            self._add_years(1970 if start == _ANY else start, MAX_YEAR if end == -1 else end, step)
            return
        low, high = _LIMITS[field]
        begin = low if start == _ANY else start
        stop = high if end == -1 else end
        wrap = None
        if stop < begin:  # a range that wraps, e.g. 22-2 or NOV-FEB
            wrap = _WRAP[field]
            stop += wrap
        number = begin
        for _ in range(1_000_000):
            if number > stop:
                return
            if wrap is None:
                values.add(number)
            else:
                value = _java_remainder(number, wrap)
                if value == 0 and field in (MONTH, DOW, DOM):
                    value = wrap
                values.add(value)
            number = _wrap32(number + step)
        raise _Refused("the list of values is too long")

    def _add_years(self, start: int, stop: int, step: int) -> None:
        if stop < start:
            raise _Refused("a year range must not run backwards")
        years = self.sets[YEAR]
        if step <= _INT_MAX - stop:  # no overflow: an arithmetic progression
            if (stop - start) // step + 1 > _MAX_YEAR_VALUES:
                raise _Refused("the year range is too large")
            years.update(range(start, min(stop, MAX_YEAR) + 1, step))
            first_beyond = (
                start if start > MAX_YEAR else start + ((MAX_YEAR - start) // step + 1) * step
            )
            if first_beyond <= stop:
                self.years_beyond = True
            return
        number = start  # Java's int addition overflows: follow it, as Quartz does
        for _ in range(_MAX_YEAR_VALUES):
            if number > stop:
                return
            if number > MAX_YEAR:
                self.years_beyond = True
            else:
                years.add(number)
            number = _wrap32(number + step)
        raise _Refused("the year range is too large")


_JAVA_TRIM = "".join(chr(code) for code in range(33))


def _fields(expression: str) -> list[str]:
    # Quartz separates fields by spaces and tabs only, then trims each as Java's String.trim
    # does (every control character), so "3\n" reads as "3".
    return [part.strip(_JAVA_TRIM) for part in re.split(r"[ \t]+", expression) if part]


@lru_cache(maxsize=1024)
def parse(expression: str) -> QuartzCron:
    """The expression as Quartz reads it; QuartzCronError if Quartz refuses it."""
    text = expression.upper()
    fields = _fields(text)
    if len(fields) > 7 or len(fields) < 6:
        raise QuartzCronError(
            f"it has {len(fields)} fields, and Quartz cron has 6 or 7: second minute hour "
            "day-of-month month day-of-week [year]"
        )
    parser = _Parser()
    for field, part in enumerate(fields):
        try:
            if field == DOW and "L" in part and len(part) > 1 and "," in part:
                raise _Refused('"L" (last) cannot be combined with other days')
            if field == DOW and part.count("#") > 1:
                raise _Refused('only one "#" (nth weekday) term is allowed')
            for term in part.split(","):
                if term:
                    parser.term(term, field)
        except _Refused as exc:
            raise QuartzCronError(
                f'in the {FIELD_NAMES[field]} field "{_shown(fields[field])}", {exc.reason}',
                FIELD_NAMES[field],
            ) from None
    if len(fields) == 6:
        parser.term("*", YEAR)
    dom_given = _NO_SPEC not in parser.sets[DOM]
    dow_given = _NO_SPEC not in parser.sets[DOW]
    if dom_given == dow_given:
        raise QuartzCronError(
            'put "?" in exactly one of the day-of-month and day-of-week fields (Quartz does not '
            "combine them)",
            "day-of-month",
        )
    for field in (SEC, MIN, HOUR, MONTH) + ((DOW,) if dow_given else ()):
        if not parser.sets[field]:
            raise QuartzCronError(
                f'the {FIELD_NAMES[field]} field "{_shown(fields[field])}" selects no value, so '
                "the expression could never run",
                FIELD_NAMES[field],
            )
    return QuartzCron(
        expression=expression,
        sets=tuple(tuple(sorted(values)) for values in parser.sets),
        nearest=tuple(sorted(parser.nearest)),
        last_weekday=parser.last_weekday,
        nth=parser.nth,
        years_beyond=parser.years_beyond,
    )


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------------------ searching


def _ceiling(values: tuple[int, ...], key: int) -> int | None:
    index = bisect_left(values, key)
    return values[index] if index < len(values) else None


def _month_days(month: int, year: int) -> int:
    return calendar.monthrange(year, month)[1]


def _java_weekday(day: date) -> int:
    """1 = Sunday ... 7 = Saturday, as java.util.Calendar numbers them."""
    return (day.weekday() + 1) % 7 + 1


def _instant(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int, second: int):
    """Seconds since the epoch for lenient wall-clock fields, resolved as GregorianCalendar does.

    Fields may overflow (month 13, day 32, minute 60...) and carry over. A wall time in a gap is
    read in the offset before it, one that occurs twice in the offset after the change: either
    way the later of the two readings.
    """
    year += (month - 1) // 12
    wall = datetime(year, (month - 1) % 12 + 1, 1) + timedelta(
        days=day - 1, hours=hour, minutes=minute, seconds=second
    )
    return max(
        int(wall.replace(tzinfo=tz, fold=0).timestamp()),
        int(wall.replace(tzinfo=tz, fold=1).timestamp()),
    )


class _Calendar:
    """A lenient java.util.GregorianCalendar reduced to what the search uses: setting fields
    marks it stale, reading a field resolves the wall time to an instant and back."""

    __slots__ = ("tz", "year", "month", "day", "hour", "minute", "second", "stale")

    def __init__(self, tz: ZoneInfo, epoch: int) -> None:
        self.tz = tz
        self._load(epoch)
        self.stale = True  # Quartz clears the milliseconds with a set(): resolved again

    def _load(self, epoch: int) -> None:
        local = datetime.fromtimestamp(epoch, self.tz)
        self.year, self.month, self.day = local.year, local.month, local.day
        self.hour, self.minute, self.second = local.hour, local.minute, local.second

    def set(self, **fields: int) -> None:
        for name, value in fields.items():
            setattr(self, name, value)
        self.stale = True

    def read(self) -> _Calendar:
        if self.stale:
            self._load(self.epoch())
            self.stale = False
        return self

    def epoch(self) -> int:
        return _instant(
            self.tz, self.year, self.month, self.day, self.hour, self.minute, self.second
        )

    def set_hour(self, hour: int) -> None:
        # Quartz's setCalendarHour: an hour that the clocks skip becomes the next one.
        self.set(hour=hour)
        if self.read().hour != hour and hour != 24:
            self.set(hour=hour + 1)

    def midnight(self, **fields: int) -> None:
        self.set(second=0, minute=0, hour=0, **fields)


@dataclass(frozen=True)
class QuartzCron:
    """A parsed Quartz expression: Quartz's value sets and day-of-week flags."""

    expression: str
    sets: tuple[tuple[int, ...], ...]
    nearest: tuple[int, ...]
    last_weekday: bool
    nth: int
    years_beyond: bool

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """The first fire time strictly after `after` (aware), in UTC; None if there is none."""
        start = math.floor(after.timestamp()) + 1
        try:
            epoch = self._search(start, tz)
        except (OverflowError, ValueError, OSError):  # past year 9999 on the way
            return None
        return None if epoch is None else datetime.fromtimestamp(epoch, UTC)

    def _years(self) -> tuple[int, ...]:
        years = self.sets[YEAR]
        return years + (MAX_YEAR + 1,) if self.years_beyond else years

    def _smallest_day(self, day: int, month: int, year: int, values: tuple[int, ...]):
        """Quartz's findSmallestDay: the first day >= `day` this month among `values`, where
        "L-n" values and plain days are compared the way Quartz encodes them."""
        if not values:
            return None
        last = _month_days(month, year)
        found = _ceiling(values, _LAST_DAY - (last - day))
        last_code = found - 31 if found is not None else None
        plain = _ceiling(values, day)
        if plain is not None and plain < 32:
            if (last_code is None or plain < last_code) and plain <= last:
                return plain
        if last_code is None:
            return None
        return last_code + last - 31

    def _search(self, start: int, tz: ZoneInfo) -> int | None:  # noqa: C901 - Quartz's loop
        seconds, minutes, hours, dom, months, dow, _ = self.sets
        years = self._years()
        cal = _Calendar(tz, start)
        for _ in range(_MAX_STEPS):
            if cal.read().year > _SEARCH_END_YEAR:
                return None
            # Second.
            sec, minute = cal.second, cal.minute
            found = _ceiling(seconds, sec)
            if found is None:
                sec, minute = seconds[0], minute + 1
                cal.set(minute=minute)
            else:
                sec = found
            cal.set(second=sec)
            # Minute.
            minute, hour = cal.read().minute, cal.hour
            found = _ceiling(minutes, minute)
            moved = found is None
            if moved:
                found, hour = minutes[0], hour + 1
            if moved or found != minute:
                cal.set(second=0, minute=found)
                cal.set_hour(hour)
                continue
            cal.set(minute=found)
            # Hour.
            hour, day = cal.read().hour, cal.day
            found = _ceiling(hours, hour)
            moved = found is None
            if moved:
                found, day = hours[0], day + 1
            if moved or found != hour:
                cal.set(second=0, minute=0, day=day)
                cal.set_hour(found)
                continue
            cal.set(hour=found)
            hour = found
            # Day.
            day, month = cal.read().day, cal.month
            year = cal.year
            if _NO_SPEC not in dom:
                step = self._day_of_month(cal, day, month, year, (hour, minute, sec), start)
            else:
                step = self._day_of_week(cal, day, month, year)
            if step is None:
                continue
            cal.set(day=step)
            # Month.
            month, year = cal.read().month, cal.year
            if year > MAX_YEAR:
                return None
            found = _ceiling(months, month)
            if found is None:
                found, year = months[0], year + 1
                cal.midnight(day=1, month=found, year=year)
                continue
            if found != month:
                cal.midnight(day=1, month=found, year=year)
                continue
            cal.set(month=found)
            # Year.
            year = cal.read().year
            found = _ceiling(years, year)
            if found is None:
                return None
            if found != year:
                cal.midnight(day=1, month=1, year=found)
                continue
            cal.set(year=found)
            return cal.epoch()
        return None

    def _day_of_month(self, cal, day, month, year, clock, start):
        """The day to keep, or None after moving the calendar on (Quartz's "continue")."""
        hour, minute, second = clock
        regular = self._smallest_day(day, month, year, self.sets[DOM])
        weekday_day = self._smallest_day(day, month, year, self.nearest)
        current, current_month, chosen = day, month, -1
        if weekday_day is not None:
            chosen = weekday_day
            last = _month_days(month, year)
            # The weekday of that date's midnight as resolved in the zone: a date the zone
            # skips (Pacific/Apia, 2011-12-30) reads as the day after, as in Java.
            midnight = _instant(cal.tz, year, month, chosen, 0, 0, 0)
            weekday = _java_weekday(datetime.fromtimestamp(midnight, cal.tz).date())
            if weekday == 7:  # Saturday: Friday, or Monday the 3rd for the 1st
                chosen += 2 if chosen == 1 else -1
            elif weekday == 1:  # Sunday: Monday, or Friday for the month's last day
                chosen += -2 if chosen == last else 1
            fire = _instant(cal.tz, year, month, chosen, hour, minute, second)
            if fire < start:
                chosen = -1
        advance = False
        if regular is not None:
            if chosen == -1 or regular < chosen:
                chosen, advance = regular, True
        elif chosen == -1:
            chosen, month, advance = 1, month + 1, True
        if advance and (chosen != current or month != current_month):
            cal.midnight(day=chosen, month=month)
            return None
        return chosen

    def _day_of_week(self, cal, day, month, year):
        values = self.sets[DOW]
        wanted = values[0]
        current = _java_weekday(date(cal.year, cal.month, cal.day))
        last = _month_days(month, year)
        if self.last_weekday or self.nth:
            add = wanted - current if current < wanted else 0
            if current > wanted:
                add = wanted + 7 - current
            if self.last_weekday:
                if day + add > last:
                    cal.midnight(day=1, month=month + 1)
                    return None
                while day + add + 7 <= last:
                    add += 7
                day += add
                if add > 0:
                    cal.midnight(day=day, month=month)
                    return None
                return day
            shifted = add > 0
            day += add
            week = day // 7 + (1 if day % 7 > 0 else 0)
            add = (self.nth - week) * 7
            day += add
            if add < 0 or day > last:
                cal.midnight(day=1, month=month + 1)
                return None
            if add > 0 or shifted:
                cal.midnight(day=day, month=month)
                return None
            return day
        following = _ceiling(values, current)
        if following is not None:
            wanted = following
        add = 0
        if current < wanted:
            add = wanted - current
        elif current > wanted:
            add = wanted + 7 - current
        if day + add > last:
            cal.midnight(day=1, month=month + 1)
            return None
        if add > 0:
            cal.midnight(day=day + add, month=month)
            return None
        return day
