"""A report's schedule: a cron expression read on a time zone's wall clock, and which of its slots to run.

Pure logic, no I/O. ``Schedule.parse`` checks a report's ``schedule_config``; ``slots_between`` and
``next_after`` turn the expression into slot instants (aware UTC datetimes); ``plan`` splits the slots
that came due since a scheduler last looked into those to run and those to record as missed, by the
catch-up policy. Every scheduler computes the same slots from the same configuration, which is what
lets several of them agree on each slot (actors/report_scheduler.py).

The configuration (docs/reports.md#schedules)::

    {"cron": "0 8 * * 1", "timezone": "Europe/Berlin", "start_at": "2025-01-01T00:00:00", "end_at": null}

- ``cron``: five fields (minute hour day-of-month month day-of-week, standard cron meaning: when both
  day fields are restricted, either matching is enough), or a preset: ``hourly`` (``0 * * * *``),
  ``daily`` (``0 0 * * *``), ``weekly`` (``0 0 * * 1``, Mondays) and ``monthly`` (``0 0 1 * *``). A
  seconds or year field, ``@`` aliases and the random (``R``) and hashed (``H``) extensions are refused:
  a schedule runs at most once a minute, and its slots must not depend on who computes them.
- ``timezone``: an IANA name (default ``UTC``). Slots follow that zone's wall clock: ``0 8 * * *`` is
  08:00 local time in winter and in summer.
- ``start_at`` / ``end_at`` (optional): ISO 8601; no slot before the first or after the second. Without
  an offset they are wall-clock times of the schedule's zone.

Clock changes: a wall-clock time the zone skips (spring forward: 02:30 on a day the clock jumps from
02:00 to 03:00) takes place at the jump, so that day's slot runs at 03:00; several skipped times
collapse into that one slot. A wall-clock time the zone shows twice (fall back) is one slot, at its
first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from core.errors import InvalidRequest

CatchUp = Literal["latest", "all", "none"]
CATCH_UP_POLICIES: tuple[str, ...] = get_args(CatchUp)

PRESETS: dict[str, str] = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 1",
    "monthly": "0 0 1 * *",
}
KEYS = ("cron", "timezone", "start_at", "end_at")
DEFAULT_TIMEZONE = "UTC"
# A slot is on time while it is younger than this; twice the default poll interval of the scheduler.
DEFAULT_GRACE = timedelta(seconds=30)
# The newest slots of one report looked at in one pass: a long downtime of a frequent schedule records
# this many missed slots, not an unbounded number; older ones are left out of the history.
MAX_SLOTS_PER_PASS = 10_000

# Longer than any clock change of a zone's rules: the window around a moment whose wall-clock times can
# belong to instants on the other side of it.
_CLOCK_CHANGE_PAD = timedelta(hours=3)
_ONE_SECOND = timedelta(seconds=1)
_ONE_MINUTE = timedelta(minutes=1)
# A single h or r (not part of a month or day name such as THU or MAR): croniter's hashed and random fields.
_HASHED_OR_RANDOM = re.compile(r"(?<![a-z])[hr](?![a-z])")
_CRON_FIELDS = "five fields: minute hour day-of-month month day-of-week (e.g. '0 8 * * 1' = Mondays 08:00)"


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str
    timezone: str = DEFAULT_TIMEZONE
    start_at: datetime | None = None
    end_at: datetime | None = None

    def __post_init__(self) -> None:
        _checked_cron(self.cron)
        _zone(self.timezone)
        for name in ("start_at", "end_at"):
            moment = getattr(self, name)
            if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
                raise InvalidRequest(
                    f"schedule_config.{name} must be a date-time with its offset",
                    details={"field": f"schedule_config.{name}"},
                )
        if self.start_at is not None and self.end_at is not None and self.end_at <= self.start_at:
            raise InvalidRequest(
                "schedule_config.end_at must be after schedule_config.start_at",
                details={"field": "schedule_config.end_at"},
            )

    @classmethod
    def parse(cls, config: object) -> Schedule:
        """A schedule from a report's ``schedule_config``; InvalidRequest naming the field and what is wrong."""
        if not isinstance(config, dict):
            raise InvalidRequest(
                'schedule_config must be an object such as {"cron": "0 8 * * 1", "timezone": "Europe/Berlin"}',
                details={"field": "schedule_config"},
            )
        unknown = sorted(str(key) for key in config if key not in KEYS)
        if unknown:
            raise InvalidRequest(
                f"schedule_config has unknown keys {', '.join(unknown)}; it takes {', '.join(KEYS)}",
                details={"field": "schedule_config", "unknown": unknown},
            )
        cron = config.get("cron")
        if not isinstance(cron, str) or not cron.strip():
            raise InvalidRequest(
                f"schedule_config.cron is required: {_CRON_FIELDS}, or one of {', '.join(PRESETS)}",
                details={"field": "schedule_config.cron"},
            )
        timezone = config.get("timezone", DEFAULT_TIMEZONE)
        zone = _zone(timezone)
        start_at = _moment(config.get("start_at"), "start_at", zone)
        end_at = _moment(config.get("end_at"), "end_at", zone)
        expression = _checked_cron(PRESETS.get(cron.strip().lower(), cron))
        return cls(cron=expression, timezone=zone.key, start_at=start_at, end_at=end_at)

    def to_config(self) -> dict[str, str]:
        """The stored form of this schedule (presets written out as their expression)."""
        config = {"cron": self.cron, "timezone": self.timezone}
        if self.start_at is not None:
            config["start_at"] = self.start_at.isoformat()
        if self.end_at is not None:
            config["end_at"] = self.end_at.isoformat()
        return config

    def slots_between(self, after: datetime, until: datetime, *, limit: int | None = None) -> list[datetime]:
        """The slots with ``after < slot <= until``, oldest first; with ``limit``, only the newest that many."""
        after, until = _utc(after), _utc(until)
        if self.end_at is not None:
            until = min(until, self.end_at)
        if until <= after:
            return []
        zone = ZoneInfo(self.timezone)
        # Walking back from the newest wall-clock time that can still be at or before `until`: a later wall
        # time is never an earlier instant, so the walk stops at the first slot not after `after`.
        wall = _wall(until, zone)
        if _offset(until - _CLOCK_CHANGE_PAD, zone) > _offset(until, zone):
            wall += _CLOCK_CHANGE_PAD
        walk = croniter(self.cron, wall + _ONE_MINUTE)
        slots: list[datetime] = []
        while limit is None or len(slots) < limit:
            try:
                slot = _instant(walk.get_prev(datetime), zone)
            except CroniterBadDateError:
                break
            if slot > until or (slots and slot == slots[-1]):
                continue
            if slot <= after or (self.start_at is not None and slot < self.start_at):
                break
            slots.append(slot)
        slots.reverse()
        return slots

    def next_after(self, moment: datetime) -> datetime | None:
        """The first slot after ``moment``; None when the schedule has ended by then."""
        moment = _utc(moment)
        if self.start_at is not None and self.start_at > moment:
            moment = self.start_at - timedelta(microseconds=1)
        zone = ZoneInfo(self.timezone)
        wall = _wall(moment, zone)
        if _offset(moment + _CLOCK_CHANGE_PAD, zone) < _offset(moment, zone):
            wall -= _CLOCK_CHANGE_PAD
        walk = croniter(self.cron, wall)
        while True:
            try:
                slot = _instant(walk.get_next(datetime), zone)
            except CroniterBadDateError:
                return None
            if slot > moment:
                return None if self.end_at is not None and slot > self.end_at else slot


def plan(
    schedule: Schedule,
    *,
    last_seen: datetime,
    now: datetime,
    policy: str,
    max_slots: int,
    grace: timedelta = DEFAULT_GRACE,
    limit: int = MAX_SLOTS_PER_PASS,
) -> tuple[list[datetime], list[datetime]]:
    """(slots to run, slots to record as missed), each oldest first, of the slots due in ``(last_seen, now]``.

    A slot is on time while ``now - slot < grace``; the others are late (they passed while no scheduler
    looked). On-time slots always run. Of the late ones:

    - ``latest``: when no slot is on time, the newest late one runs; every other late slot is missed.
    - ``all``: the newest ``max_slots`` due slots run (on-time ones included, oldest first, so the current
      slot is always among them); the older ones are missed.
    - ``none``: every late slot is missed; the schedule carries on with its next slot.
    """
    if policy not in CATCH_UP_POLICIES:
        raise ValueError(f"catch-up policy {policy!r} is not one of {', '.join(CATCH_UP_POLICIES)}")
    due = schedule.slots_between(last_seen, now, limit=limit)
    late = len([slot for slot in due if now - slot >= grace])
    on_time = len(due) - late
    if policy == "none":
        run = on_time
    elif policy == "latest":
        run = on_time or min(late, 1)
    else:
        run = min(len(due), max(max_slots, on_time))
    cut = len(due) - run
    return due[cut:], due[:cut]


def starting_point(*, last_slot: datetime | None, updated_at: datetime, grace: timedelta = DEFAULT_GRACE) -> datetime:
    """Where a report's due slots begin (exclusive): after its newest recorded slot, and never before its
    schedule existed.

    Without a recorded slot that is ``updated_at`` (the schedule was set then: earlier slots are not
    missed). With one, an edit of the report moves ``updated_at`` too; slots more than ``grace`` before
    the edit are then not due, while a slot that came due just before an edit still is.
    """
    if last_slot is None:
        return updated_at
    return max(last_slot, updated_at - grace)


def _checked_cron(expression: str) -> str:
    """The five-field expression, single-spaced; InvalidRequest saying what is wrong with it."""

    def refuse(why: str) -> InvalidRequest:
        return InvalidRequest(f"schedule_config.cron {expression!r} {why}", details={"field": "schedule_config.cron"})

    if not isinstance(expression, str):
        raise refuse(f"is not text: {_CRON_FIELDS}")
    text = expression.strip()
    if text.startswith("@"):
        raise refuse(f"is an alias; write {_CRON_FIELDS}, or one of {', '.join(PRESETS)}")
    fields = text.split()
    if len(fields) in (6, 7):
        raise refuse(f"has {len(fields)} fields: a schedule runs at most once a minute, so it takes {_CRON_FIELDS}")
    if len(fields) != 5:
        raise refuse(f"has {len(fields)} fields; it takes {_CRON_FIELDS}, or one of {', '.join(PRESETS)}")
    if any(_HASHED_OR_RANDOM.search(field.lower()) for field in fields):
        raise refuse("uses a random (R) or hashed (H) field: every scheduler must compute the same slots")
    normal = " ".join(fields)
    try:
        croniter(normal, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise refuse("matches no date (e.g. 30 February)") from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise refuse(f"is not a valid cron expression ({exc}); it takes {_CRON_FIELDS}") from None
    return normal


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest(
            "schedule_config.timezone must be an IANA time zone name such as 'Europe/Berlin' or 'UTC'",
            details={"field": "schedule_config.timezone"},
        )
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidRequest(
            f"schedule_config.timezone {name!r} is not a known IANA time zone (e.g. 'Europe/Berlin', 'UTC')",
            details={"field": "schedule_config.timezone"},
        ) from None


def _moment(value: object, name: str, zone: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise InvalidRequest(
            f"schedule_config.{name} must be an ISO 8601 date-time such as '2025-01-06T08:00:00+01:00'",
            details={"field": f"schedule_config.{name}"},
        )
    return _instant(moment, zone) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; slots are compared with aware datetimes")
    return moment.astimezone(UTC)


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    return moment.astimezone(zone).utcoffset() or timedelta(0)


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """The wall-clock time (naive) that ``moment`` shows in ``zone``."""
    return moment.astimezone(zone).replace(tzinfo=None, fold=0)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of a wall-clock time in ``zone``: its first occurrence when the clock shows it
    twice, the moment of the jump when the clock skips it."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first <= second:
        return first
    # Skipped: fold=0 read it with the offset before the jump and fold=1 with the one after, so the
    # jump lies between the two readings.
    return _jump(second, first, zone)


def _jump(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (before, after] that has ``after``'s offset: when the clock jumped."""
    target = _offset(after, zone)
    while after - before > _ONE_SECOND:
        middle = before + _ONE_SECOND * ((after - before) // _ONE_SECOND // 2)
        if _offset(middle, zone) == target:
            after = middle
        else:
            before = middle
    return after
