"""The daily system records of the batch job: the spec's SystemAnalytics of each service and UTC hour of
one day, as ``GET /api/v1/analytics/services`` answers them for that day, from the same code
(``SystemAnalyticsService.services``), every page of it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from semantic.daily_content import day_period
from semantic.service_hours import MAX_LIMIT
from semantic.system import SystemAnalyticsService
from storage.aggregates import SYSTEM_RECORD_COLUMNS


async def system_records(system: SystemAnalyticsService, day: date, *, calculated_at: datetime) -> list[dict[str, Any]]:
    period = day_period(day)
    records: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = await system.services(period, limit=MAX_LIMIT, offset=offset)
        for hour in page.hours:
            values = hour.model_dump()
            values.update(day=hour.date, calculated_at=calculated_at)
            records.append({column: values[column] for column in SYSTEM_RECORD_COLUMNS})
        offset += len(page.hours)
        if not page.hours or offset >= page.total:
            return records
