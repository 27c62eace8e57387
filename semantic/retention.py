"""Cohorts, retention and churn.

A user's cohort is the day, week (Monday) or month, in the request's timezone, of the user's first
event ever; the period's granularity picks which. Cohorts whose first bucket starts inside the
period are shown. A user is retained in bucket offset k when they have any event (any type is a
return) in the k-th bucket after their cohort's; offset 0 is the whole cohort. Cells run to the
last bucket of the period.

Retention at offset k over all cohorts = retained users at k / users of the cohorts old enough to
have an offset k inside the period. Churn rate = users active in the previous period and not in
this one / users active in the previous period.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from core.errors import InvalidRequest
from semantic.answers import PinnedAnswer
from semantic.compiler import MetricQuery, Route, compile_query
from semantic.periods import MIN_DATE, Period
from semantic.results import PeriodInfo, bucket_label, period_buckets
from storage.events import EventStore

_COHORT_OF = {
    "day": "toDate(f.m_first_seen, {tz:String})",
    "week": "toMonday(toDate(f.m_first_seen, {tz:String}))",
    "month": "toStartOfMonth(toDate(f.m_first_seen, {tz:String}))",
}
_OFFSET = {
    "day": "dateDiff('day', cohort, a.d_bucket)",
    "week": "intDiv(dateDiff('day', cohort, a.d_bucket), 7)",
    "month": "dateDiff('month', cohort, a.d_bucket)",
}


class CohortCell(BaseModel):
    offset: int
    users: int
    rate: float


class Cohort(BaseModel):
    cohort: str
    size: int
    cells: list[CohortCell]


class CohortTable(PinnedAnswer):
    period: PeriodInfo
    cohort_granularity: str
    cohorts: list[Cohort]
    source: str


class RetentionPoint(BaseModel):
    offset: int
    retained_users: int
    eligible_users: int
    rate: float


class RetentionReport(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    cohort_granularity: str
    curve: list[RetentionPoint]
    previous_active_users: int
    churned_users: int
    churn_rate: float
    source: str


def _check(period: Period) -> None:
    if period.granularity == "hour":
        raise InvalidRequest(
            "cohorts are by day, week or month: use granularity=day, week or month", details={"field": "granularity"}
        )


class RetentionService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def cohorts(self, period: Period, *, route: Route = "auto") -> CohortTable:
        _check(period)
        activity = compile_query(
            MetricQuery("users", ("events",), period, ("user_id", "bucket"), route=route), prefix="a"
        )
        first = compile_query(MetricQuery("users", ("first_seen",), None, ("user_id",), route=route), prefix="f")
        granularity = period.granularity
        params: dict[str, Any] = {**activity.parameters, **first.parameters, "tz": period.timezone}
        labels = period_buckets(period)
        params["first_bucket"] = max(labels[0], MIN_DATE.isoformat())
        result = await self._store.query(
            f"""SELECT cohort, offset, count() AS users
            FROM (
                SELECT {_COHORT_OF[granularity]} AS cohort, {_OFFSET[granularity]} AS offset
                FROM ({activity.sql}) AS a
                INNER JOIN ({first.sql}) AS f ON f.d_user_id = a.d_user_id
            )
            WHERE cohort >= {{first_bucket:Date}} AND offset >= 0
            GROUP BY cohort, offset
            ORDER BY cohort, offset""",
            params,
        )
        cells: dict[str, dict[int, int]] = {}
        for cohort, offset, users in result.rows:
            cells.setdefault(bucket_label(cohort, period), {})[int(offset)] = int(users)
        cohorts = []
        for index, label in enumerate(labels):
            found = cells.get(label)
            if not found:
                continue
            size = found.get(0, 0)
            span = len(labels) - index
            cohorts.append(
                Cohort(
                    cohort=label,
                    size=size,
                    cells=[
                        CohortCell(offset=k, users=found.get(k, 0), rate=found.get(k, 0) / size if size else 0.0)
                        for k in range(span)
                    ],
                )
            )
        return CohortTable(
            period=PeriodInfo.of(period), cohort_granularity=granularity, cohorts=cohorts, source=activity.source
        )

    async def retention(self, period: Period, *, route: Route = "auto") -> RetentionReport:
        table, churn = await asyncio.gather(self.cohorts(period, route=route), self._churn(period, route))
        span = len(period_buckets(period))
        curve = []
        for k in range(span):
            eligible = [c for c in table.cohorts if len(c.cells) > k]
            retained = sum(c.cells[k].users for c in eligible)
            size = sum(c.size for c in eligible)
            curve.append(
                RetentionPoint(
                    offset=k, retained_users=retained, eligible_users=size, rate=retained / size if size else 0.0
                )
            )
        before, churned = churn
        return RetentionReport(
            period=table.period,
            previous_period=PeriodInfo.of(period.previous()),
            cohort_granularity=table.cohort_granularity,
            curve=curve,
            previous_active_users=before,
            churned_users=churned,
            churn_rate=churned / before if before else 0.0,
            source=table.source,
        )

    async def _churn(self, period: Period, route: Route) -> tuple[int, int]:
        active = compile_query(
            MetricQuery("users", ("events",), period, ("user_id", "period"), with_previous=True, route=route)
        )
        result = await self._store.query(
            f"""SELECT countIf(has(periods, 'previous')), countIf(periods = ['previous'])
            FROM (SELECT d_user_id, groupUniqArray(d_period) AS periods FROM ({active.sql}) GROUP BY d_user_id)""",
            active.parameters,
        )
        before, churned = result.rows[0]
        return int(before), int(churned)
