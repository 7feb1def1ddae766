"""When a schedule fires: cron (in an IANA time zone), intervals and one-off times.

Pure functions of their arguments (no database, no clock): the caller passes
``now``, so tests inject any time they like.

Cron is evaluated on the local wall clock of the schedule's time zone and
stored in UTC. Each local wall-clock match fires once:

- a match inside the spring-forward gap (02:30 on the night clocks jump from
  02:00 to 03:00) fires at the same distance after the gap (03:30 local);
- a match inside the repeated fall-back hour fires once, at its first
  occurrence (the daylight-saving one).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter

from accounts.errors import InvalidInput

# A cron expression that matches nothing within this horizon is refused ("30 2 30 2 *").
HORIZON = timedelta(days=366 * 5)
# Wall-clock candidates examined per step before giving up (covers a repeated hour of minutely runs).
_MAX_STEPS = 5000
_SECOND = timedelta(seconds=1)

KIND_CRON = "cron"
KIND_INTERVAL = "interval"
KIND_ONE_OFF = "one_off"
KIND_EVENT = "event"
MIN_INTERVAL_SECONDS = 10
MAX_INTERVAL_SECONDS = 366 * 24 * 3600


@lru_cache(maxsize=512)
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; InvalidInput naming the field if there is none."""
    if not name or name not in _zone_names():
        raise InvalidInput(f"{name!r} is not an IANA time zone (for example Europe/Berlin)", field="timezone")
    return zoneinfo.ZoneInfo(name)


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_cron(expression: str, timezone_name: str, *, now: datetime) -> str:
    """Normalize a five-field cron expression (or an alias like ``@daily``), or raise naming the problem."""
    expression = " ".join((expression or "").split())
    if not expression:
        raise InvalidInput("a cron schedule needs a cron expression", field="cron_expression")
    if not expression.startswith("@") and len(expression.split(" ")) != 5:
        raise InvalidInput(
            f"{expression!r} is not a five-field cron expression (minute hour day-of-month month day-of-week)",
            field="cron_expression",
        )
    if expression.startswith("@") and expression not in ("@hourly", "@daily", "@weekly", "@monthly", "@yearly",
                                                            "@annually", "@midnight"):
        raise InvalidInput(f"{expression!r} is not a cron alias this scheduler knows", field="cron_expression")
    if not croniter.is_valid(expression):
        raise InvalidInput(f"{expression!r} is not a valid cron expression", field="cron_expression")
    zone(timezone_name)
    if next_cron(expression, timezone_name, after=now) is None:
        raise InvalidInput(f"{expression!r} never fires in the next five years", field="cron_expression")
    return expression


def _to_utc(naive_local: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    # fold=0: the first of a repeated time; a time in a gap gets the offset before the gap (so it lands after it).
    return naive_local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _naive_local(moment: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None, fold=0)


def next_cron(expression: str, timezone_name: str, *, after: datetime) -> datetime | None:
    """The first firing strictly after ``after`` (UTC), or None within the horizon."""
    tz = zone(timezone_name)
    try:
        iterator = croniter(expression, _naive_local(after, tz).replace(microsecond=0))
        for _ in range(_MAX_STEPS):
            candidate = _to_utc(iterator.get_next(datetime), tz)
            if candidate - after > HORIZON:
                return None
            if candidate > after:
                return candidate
    except (CroniterBadDateError, CroniterBadCronError, CroniterNotAlphaError):
        return None
    return None


def prev_cron(expression: str, timezone_name: str, *, at_or_before: datetime) -> datetime | None:
    """The latest firing at or before ``at_or_before`` (UTC), or None within the horizon."""
    tz = zone(timezone_name)
    try:
        iterator = croniter(expression, _naive_local(at_or_before, tz).replace(microsecond=0) + _SECOND)
        for _ in range(_MAX_STEPS):
            candidate = _to_utc(iterator.get_prev(datetime), tz)
            if at_or_before - candidate > HORIZON:
                return None
            if candidate <= at_or_before:
                return candidate
    except (CroniterBadDateError, CroniterBadCronError, CroniterNotAlphaError):
        return None
    return None


@dataclass(frozen=True)
class Timing:
    """How a schedule (or reminder) recurs. ``anchor`` is the one-off time or the first interval run."""

    kind: str
    cron_expression: str = ""
    timezone: str = "UTC"
    interval_seconds: int | None = None
    anchor: datetime | None = None

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment``; None when there is none (a past one-off, an event)."""
        if self.kind == KIND_CRON:
            return next_cron(self.cron_expression, self.timezone, after=moment)
        if self.kind == KIND_INTERVAL:
            anchor, step = self._interval()
            if moment < anchor:
                return anchor
            periods = int((moment - anchor) // step) + 1
            return anchor + periods * step
        if self.kind == KIND_ONE_OFF:
            return self.anchor if self.anchor is not None and self.anchor > moment else None
        return None

    def at_or_before(self, moment: datetime) -> datetime | None:
        """The latest firing at or before ``moment``; None when there is none."""
        if self.kind == KIND_CRON:
            return prev_cron(self.cron_expression, self.timezone, at_or_before=moment)
        if self.kind == KIND_INTERVAL:
            anchor, step = self._interval()
            if moment < anchor:
                return None
            return anchor + int((moment - anchor) // step) * step
        if self.kind == KIND_ONE_OFF:
            return self.anchor if self.anchor is not None and self.anchor <= moment else None
        return None

    def due_between(self, first: datetime, now: datetime, *, limit: int) -> tuple[list[datetime], bool]:
        """Firings in ``[first, now]``, the most recent ``limit`` of them, oldest first.

        The flag says whether older firings were left out.
        """
        found: list[datetime] = []
        cursor = self.at_or_before(now)
        while cursor is not None and cursor >= first and len(found) < limit:
            found.append(cursor)
            cursor = self.at_or_before(cursor - timedelta(microseconds=1))
        more = cursor is not None and cursor >= first
        if not found and first <= now:
            found.append(first)  # the stored next run, even if the timing no longer lands on it
        found.reverse()
        return found, more

    def _interval(self) -> tuple[datetime, timedelta]:
        if not self.interval_seconds or self.anchor is None:
            raise ValueError("an interval timing needs interval_seconds and an anchor")
        return self.anchor, timedelta(seconds=self.interval_seconds)
