"""Analysis windows: the ``start_date`` / ``end_date`` / ``granularity`` / ``timezone`` every analytics route takes.

Dates are calendar days in ``timezone`` and both ends are included, so a period is the half-open
instant range ``[start_date 00:00, end_date + 1 day 00:00)`` in that zone, converted to UTC.
Leaving both dates out means the last ``default_days`` days up to and including today.

The dates a request may name run from 1970-01-01 to 2105-12-31 (``MIN_DATE``, ``MAX_DATE``): ClickHouse's
Date and DateTime hold nothing before the epoch, and the instant after 2105-12-31 in any zone (UTC-12
at the latest) is still inside DateTime's range, which ends on 2106-02-07. A date outside is refused
naming its parameter (``check_date``), before any arithmetic on it. Defaults are cut at 1970-01-01
too: ``end_date=1970-01-10`` alone asks for 1970-01-01 to 1970-01-10, not for days before it.

Periods derived from a requested one (``previous()``, ``shifted()``) keep their true calendar dates,
and answers report them as they are: the previous period of one that starts on 1970-01-01 lies in
1969. But their instants (``start``, ``end``), from which every SQL bound is made, never go before
the epoch: an earlier instant is the epoch itself. So a previous period wholly before 1970 is the
empty range ``[epoch, epoch)``, which compares against zeros (all the store can hold for it), and one
partly before 1970 is cut at the epoch. Nothing out of the engine's range reaches SQL that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import InvalidRequest

Granularity = Literal["hour", "day", "week", "month"]
GRANULARITIES: tuple[str, ...] = get_args(Granularity)
# Hourly series get long quickly: one value per hour.
MAX_HOURLY_DAYS = 31
# The days a request may name (see the module docstring).
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(2105, 12, 31)
# No instant of a period goes before this one: ClickHouse's Date and DateTime start here.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    start_date: date
    end_date: date
    timezone: str = "UTC"
    granularity: Granularity = "day"

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def start(self) -> datetime:
        """The first instant of the period, in UTC, not before the epoch."""
        return max(local_midnight(self.start_date, self.zone), EPOCH)

    @property
    def end(self) -> datetime:
        """The first instant after the period, in UTC, not before the epoch."""
        return max(local_midnight(self.end_date + timedelta(days=1), self.zone), EPOCH)

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    def dates(self) -> list[date]:
        return [self.start_date + timedelta(days=i) for i in range(self.days)]

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts (maybe before 1970:
        its instants are cut at the epoch, see the module docstring)."""
        end = self.start_date - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end, self.timezone, self.granularity)

    def shifted(self, start_date: date, end_date: date) -> Period:
        return Period(start_date, end_date, self.timezone, self.granularity)

    def utc_offsets(self) -> set[timedelta]:
        """Every UTC offset the zone has inside the period (checked at each local midnight and noon)."""
        offsets: set[timedelta] = set()
        for day in [*self.dates(), self.end_date + timedelta(days=1)]:
            for clock in (time(0), time(12)):
                offset = datetime.combine(day, clock, self.zone).utcoffset()
                offsets.add(offset or timedelta(0))
        return offsets

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "timezone": self.timezone,
            "granularity": self.granularity,
        }


# Every zone's offset today is a whole number of quarter hours: local midnights and period bounds fall on these.
QUARTER_HOUR_MS = 900_000


def bounds_ms(periods: list[Period]) -> list[tuple[int, int]]:
    """Each period's [start, end) as UTC epoch milliseconds."""
    return [(int(p.start.timestamp() * 1000), int(p.end.timestamp() * 1000)) for p in periods]


def utc_text(moment: datetime) -> str:
    """An instant as ClickHouse reads a DateTime64(3, 'UTC') parameter."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def period_label(column: str, periods: list[Period], params: dict[str, Any], prefix: str = "lbl") -> str:
    """SQL naming the period ('0', '1', ...) an instant column falls in, '' for none; binds the bounds
    into ``params``."""
    label = "''"
    for index in reversed(range(len(periods))):
        period = periods[index]
        start, end = f"{prefix}{index}s", f"{prefix}{index}e"
        params[start], params[end] = utc_text(period.start), utc_text(period.end)
        within = f"{column} >= {{{start}:DateTime64(3, 'UTC')}} AND {column} < {{{end}:DateTime64(3, 'UTC')}}"
        label = f"if({within}, '{index}', {label})"
    return label


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise InvalidRequest(
            f"timezone {name!r} is not an IANA time zone name (e.g. 'UTC', 'Europe/Berlin', 'Asia/Riyadh')",
            details={"field": "timezone"},
        ) from exc


def check_date(value: date, field: str) -> date:
    """``value``, or InvalidRequest naming ``field`` when it is outside [MIN_DATE, MAX_DATE]."""
    if not MIN_DATE <= value <= MAX_DATE:
        raise InvalidRequest(
            f"{field} {value.isoformat()} is outside the dates the store can hold: "
            f"{MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}",
            details={"field": field},
        )
    return value


def days_before(end: date, days: int) -> date:
    """The first day of the ``days`` days ending on ``end`` (included), cut at MIN_DATE."""
    if days < 1:
        raise ValueError(f"a range has at least one day, not {days}")
    return end - timedelta(days=max(min(days - 1, (end - MIN_DATE).days), 0))


def resolve_period(
    start_date: date | None,
    end_date: date | None,
    *,
    granularity: str = "day",
    timezone: str = "UTC",
    default_days: int,
    max_days: int,
    today: date | None = None,
) -> Period:
    """The period a request asks for, or InvalidRequest naming the parameter that is wrong.

    ``end_date`` defaults to today in ``timezone``; ``start_date`` to ``default_days - 1`` days before it,
    but not before 1970-01-01.
    """
    zone = parse_zone(timezone)
    if granularity not in GRANULARITIES:
        raise InvalidRequest(f"granularity must be one of {', '.join(GRANULARITIES)}", details={"field": "granularity"})
    if start_date is not None:
        check_date(start_date, "start_date")
    end_date = check_date(end_date if end_date is not None else today or datetime.now(zone).date(), "end_date")
    if start_date is None:
        start_date = days_before(end_date, default_days)
    if end_date < start_date:
        raise InvalidRequest(
            f"end_date ({end_date}) is before start_date ({start_date}); both dates are included in the range",
            details={"field": "end_date"},
        )
    days = (end_date - start_date).days + 1
    if days > max_days:
        raise InvalidRequest(
            f"start_date {start_date} is too far before end_date {end_date}: the range spans {days} days, "
            f"and at most {max_days} days may be asked at once",
            details={"field": "start_date", "max_days": max_days},
        )
    if granularity == "hour" and days > MAX_HOURLY_DAYS:
        raise InvalidRequest(
            f"granularity=hour is limited to ranges of {MAX_HOURLY_DAYS} days; this range spans {days}",
            details={"field": "granularity"},
        )
    return Period(start_date, end_date, timezone, granularity)  # type: ignore[arg-type]  # checked above
