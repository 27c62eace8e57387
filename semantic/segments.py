"""Rule-based user segments over a period.

Every user active in the period (at least one event) falls in exactly one segment, the first rule
that matches, in this order:
- new: the user's first event ever is in the period;
- churning: active in the period, but not in its last ``churn_inactive_days`` days;
- power: active on at least ``power_min_share`` of the period's days (rounded up);
- regular: active on at least ``regular_min_share`` of the period's days (rounded up);
- casual: everyone else.
The thresholds come from Settings (ANALYTICS_SEGMENT_*) and can be changed per request.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from core.errors import InvalidRequest
from semantic.answers import PinnedAnswer
from semantic.compiler import MetricQuery, Route, compile_query
from semantic.periods import Period, utc_text
from semantic.results import MetricChange, PeriodInfo
from storage.events import EventStore

SEGMENTS = ("new", "churning", "power", "regular", "casual")


@dataclass(frozen=True, slots=True)
class SegmentRules:
    power_min_share: float = 0.5
    regular_min_share: float = 0.25
    churn_inactive_days: int = 7

    def check(self) -> SegmentRules:
        if not 0 < self.power_min_share <= 1:
            raise InvalidRequest("power_min_share must be in (0, 1]", details={"field": "power_min_share"})
        if not 0 < self.regular_min_share <= self.power_min_share:
            raise InvalidRequest(
                "regular_min_share must be in (0, power_min_share]", details={"field": "regular_min_share"}
            )
        if self.churn_inactive_days < 1:
            raise InvalidRequest("churn_inactive_days must be 1 or more", details={"field": "churn_inactive_days"})
        return self

    def thresholds(self, period: Period) -> dict[str, int]:
        return {
            "power_min_days": math.ceil(self.power_min_share * period.days),
            "regular_min_days": math.ceil(self.regular_min_share * period.days),
            "churn_inactive_days": self.churn_inactive_days,
        }

    def describe(self, period: Period) -> dict[str, str]:
        t = self.thresholds(period)
        return {
            "new": "first event ever falls in the period",
            "churning": f"active in the period but not in its last {t['churn_inactive_days']} days",
            "power": f"active on at least {t['power_min_days']} of the period's {period.days} days",
            "regular": f"active on at least {t['regular_min_days']} of the period's {period.days} days",
            "casual": "any other user active in the period",
        }


class Segment(BaseModel):
    name: str
    rule: str
    users: int
    share: float
    average_active_days: float
    average_events: float
    previous_users: int
    comparison: MetricChange


class UserSegments(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    rules: dict[str, float]
    total_users: int
    segments: list[Segment]
    source: str


class SegmentService:
    def __init__(self, store: EventStore, defaults: SegmentRules) -> None:
        self._store = store
        self._defaults = defaults

    def rules(
        self,
        power_min_share: float | None = None,
        regular_min_share: float | None = None,
        churn_inactive_days: int | None = None,
    ) -> SegmentRules:
        """The configured rules, with any of the thresholds a request gives instead."""
        d = self._defaults
        return SegmentRules(
            power_min_share=d.power_min_share if power_min_share is None else power_min_share,
            regular_min_share=d.regular_min_share if regular_min_share is None else regular_min_share,
            churn_inactive_days=d.churn_inactive_days if churn_inactive_days is None else churn_inactive_days,
        ).check()

    async def segments(
        self, period: Period, rules: SegmentRules | None = None, *, route: Route = "auto"
    ) -> UserSegments:
        rules = (rules or self._defaults).check()
        (current, source), (previous, _) = await asyncio.gather(
            self._count(period, rules, route), self._count(period.previous(), rules, route)
        )
        total = sum(c["users"] for c in current.values())
        items = []
        for name in SEGMENTS:
            now = current.get(name, {"users": 0, "active_days": 0.0, "events": 0.0})
            before = previous.get(name, {"users": 0})
            items.append(
                Segment(
                    name=name,
                    rule=rules.describe(period)[name],
                    users=now["users"],
                    share=now["users"] / total if total else 0.0,
                    average_active_days=round(now["active_days"], 4),
                    average_events=round(now["events"], 4),
                    previous_users=before["users"],
                    comparison=MetricChange.of(now["users"], before["users"]),
                )
            )
        return UserSegments(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            rules={
                "power_min_share": rules.power_min_share,
                "regular_min_share": rules.regular_min_share,
                "churn_inactive_days": rules.churn_inactive_days,
                **rules.thresholds(period),
            },
            total_users=total,
            segments=items,
            source=source,
        )

    async def _count(self, period: Period, rules: SegmentRules, route: Route) -> tuple[dict[str, dict[str, Any]], str]:
        activity = compile_query(
            MetricQuery("users", ("active_days", "events", "last_seen"), period, ("user_id",), route=route), prefix="a"
        )
        first = compile_query(MetricQuery("users", ("first_seen",), None, ("user_id",), route=route), prefix="f")
        limits = rules.thresholds(period)
        churn_from = period.end_date - timedelta(days=rules.churn_inactive_days - 1)
        params: dict[str, Any] = {
            **activity.parameters,
            **first.parameters,
            "tz": period.timezone,
            "start": utc_text(period.start),
            "churn_from": utc_text(period.shifted(churn_from, churn_from).start),
            "power": limits["power_min_days"],
            "regular": limits["regular_min_days"],
        }
        result = await self._store.query(
            f"""SELECT segment, count(), avg(active_days), avg(events)
            FROM (
                SELECT
                    a.m_active_days AS active_days,
                    a.m_events AS events,
                    multiIf(
                        f.m_first_seen >= {{start:DateTime64(3, 'UTC')}}, 'new',
                        a.m_last_seen < {{churn_from:DateTime64(3, 'UTC')}}, 'churning',
                        a.m_active_days >= {{power:UInt32}}, 'power',
                        a.m_active_days >= {{regular:UInt32}}, 'regular',
                        'casual') AS segment
                FROM ({activity.sql}) AS a
                INNER JOIN ({first.sql}) AS f ON f.d_user_id = a.d_user_id
            )
            GROUP BY segment""",
            params,
        )
        counts = {
            row[0]: {"users": int(row[1]), "active_days": float(row[2]), "events": float(row[3])} for row in result.rows
        }
        return counts, activity.source
