"""User analytics: UserAnalytics for one user, the user's preferences, and the aggregated view (DAU/WAU/MAU).

One user's numbers read events_by_user (that user's rows only, sorted by time); the aggregated
numbers read the user_daily and session_rollup rollups (raw events where user_daily's UTC days are
not the local days), through the compiler or, for the overview, in statements of its own that
answer several windows in one pass.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from core.errors import NotFound
from core.models import UserAnalytics, utc_now
from core.taxonomy import CONTENT_VIEW
from semantic import scores
from semantic.answers import PinnedAnswer
from semantic.catalog import USER_EVENT_SOURCES
from semantic.compiler import MetricQuery, compile_query, run_query
from semantic.periods import Period, period_label, utc_text
from semantic.results import MetricChange, PeriodInfo, bucket_label, compare, period_buckets
from semantic.sessions import SessionStats, session_stats
from semantic.user_events import PeriodNumbers, read_user_numbers
from storage.events import EventStore

COMPARED_FIELDS = tuple(
    name for name, info in UserAnalytics.model_fields.items() if info.annotation in (int, float) and name != "user_id"
)


class UserAnalyticsReport(PinnedAnswer):
    user_id: str
    period: PeriodInfo
    previous_period: PeriodInfo
    first_seen: datetime
    last_seen: datetime
    analytics: UserAnalytics
    comparison: dict[str, MetricChange]
    source: str


class Preference(BaseModel):
    value: str
    views: int
    share: float
    previous_views: int


class UserPreferences(PinnedAnswer):
    user_id: str
    period: PeriodInfo
    previous_period: PeriodInfo
    # Views of content with metadata, by the content's category / language / content type.
    categories: list[Preference]
    languages: list[Preference]
    content_types: list[Preference]
    # Views of content without metadata are not attributed to any preference.
    views_without_metadata: int


class ActiveUsersPoint(BaseModel):
    bucket: str
    active_users: int


class UsersOverview(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    active_users: int
    new_users: int
    returning_users: int
    dau: float
    wau: int
    mau: int
    stickiness: float
    sessions: SessionStats
    series: list[ActiveUsersPoint]
    comparison: dict[str, MetricChange]
    source: str


# The fields of the content_metadata view (migration 003) that preferences use, read from its state
# table with the filter on content_id applied before the merge (cheaper than filtering the view).
_METADATA_BY_ID = (
    "SELECT content_id, argMaxMerge(category), argMaxMerge(language), argMaxMerge(content_type) "
    "FROM content_metadata_state"
)


def _sum_by_metadata(
    viewed: list[tuple[int, str, int]], metadata: list[tuple[Any, ...]]
) -> dict[tuple[str, int], dict[str, int]]:
    """(period index, content id, views) rows summed by the content's category / language / content type."""
    fields = {row[0]: (("category", row[1]), ("language", row[2]), ("content_type", row[3])) for row in metadata}
    out: dict[tuple[str, int], dict[str, int]] = {}
    for index, content_id, views in viewed:
        for name, value in fields.get(content_id, ()):
            if value:
                counts = out.setdefault((name, index), {})
                counts[value] = counts.get(value, 0) + int(views)
    return {key: dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))) for key, counts in out.items()}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _local_date(moment: datetime, period: Period) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(period.zone).date()


class UserAnalyticsService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def require_known(self, user_id: str, source: str = "events_by_user") -> tuple[datetime, datetime]:
        """First and last event of the user; NotFound when the user has none."""
        result = await self._store.query(
            f"SELECT count(), min(timestamp), max(timestamp) FROM {USER_EVENT_SOURCES[source]}", {"user": user_id}
        )
        count, first, last = result.rows[0]
        if not count:
            raise self._unknown(user_id)
        return _utc(first), _utc(last)

    @staticmethod
    def _unknown(user_id: str) -> NotFound:
        return NotFound(
            f"user {user_id!r} is unknown: no events with this user_id are stored",
            details={"field": "user_id", "user_id": user_id},
        )

    async def report(self, user_id: str, period: Period, *, source: str = "events_by_user") -> UserAnalyticsReport:
        previous = period.previous()
        periods = [period, previous]
        # The metadata of everything the user viewed is read beside the user's events, not after
        # them: on two cores the two reads overlap, and the lookup needs no ids from the first.
        numbers, metadata = await asyncio.gather(
            read_user_numbers(self._store, user_id, periods, source=source), self._viewed_metadata(user_id, source)
        )
        if numbers is None:
            raise self._unknown(user_id)
        preferences = _sum_by_metadata([(0, c, v) for c, v in numbers.periods[0].content_viewed.items()], metadata)
        now = utc_now()
        analytics = [
            self._analytics(user_id, p, numbers.periods[i], numbers.first_event, now) for i, p in enumerate(periods)
        ]
        current = analytics[0]
        current.preferred_categories = {k: v for k, v in preferences.get(("category", 0), {}).items()}
        current.preferred_languages = {k: v for k, v in preferences.get(("language", 0), {}).items()}
        current.preferred_content_types = {k: v for k, v in preferences.get(("content_type", 0), {}).items()}
        return UserAnalyticsReport(
            user_id=user_id,
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            first_seen=numbers.first_event,
            last_seen=numbers.last_event,
            analytics=current,
            comparison=compare(
                {n: float(getattr(current, n)) for n in COMPARED_FIELDS},
                {n: float(getattr(analytics[1], n)) for n in COMPARED_FIELDS},
            ),
            source=source,
        )

    async def _preference_counts(
        self, user_id: str, periods: list[Period], source: str
    ) -> dict[tuple[str, int], dict[str, int]]:
        """{(field, period index): {value: views}} over the content the user viewed, by its metadata."""
        params: dict[str, Any] = {"user": user_id}
        label = period_label("timestamp", periods, params)
        viewed = await self._store.query(
            f"""SELECT lbl, content_id, count() AS views
            FROM (SELECT {label} AS lbl, content_id FROM {USER_EVENT_SOURCES[source]}
                  WHERE event_type = '{CONTENT_VIEW}' AND content_id != '')
            WHERE lbl != ''
            GROUP BY lbl, content_id""",
            params,
        )
        return await self._by_metadata([(int(lbl), content_id, views) for lbl, content_id, views in viewed.rows])

    async def _by_metadata(self, viewed: list[tuple[int, str, int]]) -> dict[tuple[str, int], dict[str, int]]:
        """(period index, content id, views) rows summed by the content's metadata.

        The user's views per content are few; their metadata is looked up by id, which costs a
        fraction of joining the metadata table in SQL.
        """
        ids = sorted({content_id for _, content_id, _ in viewed})
        if not ids:
            return {}
        return _sum_by_metadata(viewed, await self._metadata("{ids:Array(String)}", {"ids": ids}))

    async def _viewed_metadata(self, user_id: str, source: str) -> list[tuple[Any, ...]]:
        """Category, language and content type of every content the user ever viewed."""
        viewed = (
            f"SELECT content_id FROM {USER_EVENT_SOURCES[source]} "
            f"WHERE event_type = '{CONTENT_VIEW}' AND content_id != ''"
        )
        return await self._metadata(f"({viewed})", {"user": user_id})

    async def _metadata(self, content_ids: str, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        """(content id, category, language, content type) of the content in ``content_ids`` (SQL)."""
        result = await self._store.query(
            f"{_METADATA_BY_ID} WHERE content_id IN {content_ids} GROUP BY content_id", parameters
        )
        return result.rows

    @staticmethod
    def _analytics(
        user_id: str, period: Period, numbers: PeriodNumbers, first_seen: datetime, now: datetime
    ) -> UserAnalytics:
        counts = numbers.counts
        session_count = numbers.sessions
        total_duration = round(numbers.session_ms / 1000, 3)
        views = counts["views"]
        interactions = counts["likes"] + counts["shares"] + counts["bookmarks"] + counts["comments"]
        first_day = _local_date(first_seen, period)
        tenure = (period.end_date - first_day).days + 1 if first_day <= period.end_date else 0
        return UserAnalytics(
            user_id=user_id,
            date=period.end_date,
            sessions=session_count,
            total_session_duration=total_duration,
            average_session_duration=round(total_duration / session_count, 3) if session_count else 0.0,
            content_views=views,
            unique_content_views=len(numbers.content_viewed),
            total_watch_time=round(numbers.watch_seconds, 3),
            content_completions=counts["completions"],
            searches_performed=counts["searches"],
            shares_made=counts["shares"],
            bookmarks_created=counts["bookmarks"],
            comments_made=counts["comments"],
            pages_visited=counts["pages"],
            bounce_rate=numbers.bounces / session_count if session_count else 0.0,
            return_visits=numbers.return_visits,
            device_types=dict(sorted(numbers.devices.items())),
            browser_types=dict(sorted(numbers.browsers.items())),
            engagement_score=scores.user_engagement(views, counts["completions"], interactions),
            loyalty_score=scores.user_loyalty(tenure, session_count, numbers.return_visits),
            activity_score=scores.user_activity(len(numbers.active_days), period.days),
            calculated_at=now,
            last_updated=now,
        )

    async def preferences(self, user_id: str, period: Period, *, source: str = "events_by_user") -> UserPreferences:
        await self.require_known(user_id, source)
        previous = period.previous()
        params: dict[str, Any] = {"user": user_id}
        label = period_label("timestamp", [period], params)
        counts, views = await asyncio.gather(
            self._preference_counts(user_id, [period, previous], source),
            self._store.query(
                f"""SELECT count(), countIf(content_id IN (SELECT content_id FROM content_metadata_updates))
                FROM {USER_EVENT_SOURCES[source]} WHERE event_type = '{CONTENT_VIEW}' AND {label} = '0'""",
                params,
            ),
        )

        def ranked(field: str) -> list[Preference]:
            now = counts.get((field, 0), {})
            before = counts.get((field, 1), {})
            total = sum(now.values())
            return [
                Preference(
                    value=value, views=count, share=count / total if total else 0.0, previous_views=before.get(value, 0)
                )
                for value, count in sorted(now.items(), key=lambda item: (-item[1], item[0]))
            ]

        all_views, with_metadata = views.rows[0]
        return UserPreferences(
            user_id=user_id,
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            categories=ranked("category"),
            languages=ranked("language"),
            content_types=ranked("content_type"),
            views_without_metadata=int(all_views) - int(with_metadata),
        )

    async def overview(self, period: Period) -> UsersOverview:
        """Active, new and returning users, DAU/WAU/MAU and stickiness, sessions, against the previous period.

        Three statements run together: one pass over every user's days gives the distinct users of
        each window (period, previous, their last week and month) and who was new in the periods; the
        users of each day give DAU and a daily series; and the sessions.
        """
        previous = period.previous()
        windows = _OverviewWindows.of(period)
        daily_query = MetricQuery("users", ("users",), period, ("period", "day"), with_previous=True)
        # The rollup answers when its UTC days are the local days of every window; raw events otherwise.
        routed = compile_query(daily_query).source
        from_rollup = all(
            compile_query(MetricQuery("users", ("users",), window)).source == "user_daily" for window in windows.all
        )
        series_query = (
            None
            if period.granularity == "day"
            else run_query(self._store, MetricQuery("users", ("users",), period, ("bucket",)))
        )
        users, daily, sessions, series = await asyncio.gather(
            self._window_users(windows, from_rollup),
            self._daily_users(daily_query, from_rollup),
            session_stats(self._store, [period, previous]),
            series_query if series_query is not None else _no_rows(),
        )
        per_day: dict[str, int] = {}
        for row in daily:
            per_day[row["period"]] = per_day.get(row["period"], 0) + int(row["users"])

        def figures(index: int, days: int, stats: SessionStats) -> dict[str, float]:
            active = users.active[index]
            new = users.new[index]
            dau = per_day.get(_PERIOD_KEYS[index], 0) / days
            mau_value = users.months[index]
            return {
                "active_users": active,
                "new_users": new,
                "returning_users": active - new,
                "dau": round(dau, 4),
                "wau": users.weeks[index],
                "mau": mau_value,
                "stickiness": round(dau / mau_value, 4) if mau_value else 0.0,
                "sessions": stats.sessions,
                "average_session_duration": stats.average_duration,
                "bounce_rate": stats.bounce_rate,
                "pages_per_session": stats.pages_per_session,
            }

        now = figures(0, period.days, sessions[0])
        before = figures(1, previous.days, sessions[1])
        if series is None:
            current = (row for row in daily if row["period"] == "current")
            counts = {bucket_label(row["day"], period): int(row["users"]) for row in current}
        else:
            counts = {bucket_label(row["bucket"], period): int(row["users"]) for row in series.rows}
        return UsersOverview(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            active_users=int(now["active_users"]),
            new_users=int(now["new_users"]),
            returning_users=int(now["returning_users"]),
            dau=now["dau"],
            wau=int(now["wau"]),
            mau=int(now["mau"]),
            stickiness=now["stickiness"],
            sessions=sessions[0],
            series=[
                ActiveUsersPoint(bucket=label, active_users=counts.get(label, 0)) for label in period_buckets(period)
            ],
            comparison=compare(now, before),
            source=routed,
        )

    async def _window_users(self, windows: _OverviewWindows, from_rollup: bool) -> _WindowUsers:
        """Distinct users of each window and new users of the period and the previous one, in one pass
        grouped by user.

        A user is new in a period when the first event of all their history (user_daily's first_seen,
        whatever the windows are read from) falls in it; rows after the period cannot change that.
        """
        params: dict[str, Any] = {}
        flags: list[str] = []
        for index, window in enumerate(windows.all):
            start, end = f"w{index}s", f"w{index}e"
            if from_rollup:
                params[start], params[end] = _utc_day(window.start), _utc_day(window.end)
                within = f"day >= {{{start}:Date}} AND day < {{{end}:Date}}"
            else:
                params[start], params[end] = utc_text(window.start), utc_text(window.end)
                within = f"at >= {{{start}:DateTime64(3, 'UTC')}} AND at < {{{end}:DateTime64(3, 'UTC')}}"
            flags.append(f"max(active AND {within}) AS a{index}")
        # user_daily rows on or after this day have a first event after every window.
        params["days_to"] = _utc_day(windows.period.end) + timedelta(days=1)
        if from_rollup:
            source = "SELECT user_id, day, first_seen, 1 AS active FROM user_daily WHERE day < {days_to:Date}"
        else:
            params["from"] = utc_text(min(window.start for window in windows.all))
            params["to"] = utc_text(windows.period.end)
            source = (
                f"SELECT user_id, timestamp AS at, {_NEVER} AS first_seen, 1 AS active FROM events WHERE user_id != '' "
                "AND timestamp >= {from:DateTime64(3, 'UTC')} AND timestamp < {to:DateTime64(3, 'UTC')} "
                f"UNION ALL SELECT user_id, {_EPOCH_MS} AS at, first_seen, 0 AS active FROM user_daily "
                "WHERE day < {days_to:Date}"
            )
        first_period = period_label("min(first_seen)", [windows.period, windows.previous], params)
        counts = ", ".join(f"countIf(a{index})" for index in range(len(windows.all)))
        result = await self._store.query(
            f"""SELECT {counts}, countIf(first_period = '0'), countIf(first_period = '1')
            FROM (
                SELECT {", ".join(flags)}, {first_period} AS first_period
                FROM ({source})
                GROUP BY user_id
            )""",
            params,
        )
        row = [int(value) for value in result.rows[0]]
        return _WindowUsers(active=row[0:2], weeks=row[2:4], months=row[4:6], new=row[6:8])

    async def _daily_users(self, query: MetricQuery, from_rollup: bool) -> list[dict[str, Any]]:
        """Rows of (period, day, users): the distinct users of each day of the period and the previous one."""
        if not from_rollup:
            return (await run_query(self._store, query)).rows
        assert query.period is not None
        period = query.period
        previous = period.previous()
        # FINAL leaves one row per (day, user): counting rows counts the day's users exactly, at a
        # fraction of the cost of a distinct count of the names.
        result = await self._store.query(
            "SELECT day, count() FROM user_daily FINAL WHERE day >= {from:Date} AND day < {to:Date} GROUP BY day",
            {"from": _utc_day(previous.start), "to": _utc_day(period.end)},
        )
        current_from = _utc_day(period.start)
        return [
            {"period": "current" if day >= current_from else "previous", "day": day, "users": users}
            for day, users in result.rows
        ]


_PERIOD_KEYS = ("current", "previous")
# A first event later than any: user rows read from events take part in the windows only.
_NEVER = "toDateTime64('2299-12-31 23:59:59.999', 3, 'UTC')"
_EPOCH_MS = "toDateTime64(0, 3, 'UTC')"


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


async def _no_rows() -> None:
    return None


@dataclass(frozen=True, slots=True)
class _OverviewWindows:
    """The windows of the users overview: the period, the previous one, and the last week and 30 days
    of each."""

    period: Period
    previous: Period
    week: Period
    month: Period
    week_before: Period
    month_before: Period

    @classmethod
    def of(cls, period: Period) -> _OverviewWindows:
        previous = period.previous()
        return cls(
            period=period,
            previous=previous,
            week=period.shifted(period.end_date - timedelta(days=6), period.end_date),
            month=period.shifted(period.end_date - timedelta(days=29), period.end_date),
            week_before=previous.shifted(previous.end_date - timedelta(days=6), previous.end_date),
            month_before=previous.shifted(previous.end_date - timedelta(days=29), previous.end_date),
        )

    @property
    def all(self) -> tuple[Period, ...]:
        """In the order _WindowUsers reads them."""
        return (self.period, self.previous, self.week, self.week_before, self.month, self.month_before)


@dataclass(frozen=True, slots=True)
class _WindowUsers:
    """Distinct users per window and new users, each as [period, previous]."""

    active: list[int]
    weeks: list[int]
    months: list[int]
    new: list[int]
