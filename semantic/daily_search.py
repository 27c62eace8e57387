"""The daily search record of the batch job: the spec's search analytics of one UTC day, as
``GET /api/v1/analytics/search/overview`` answers it for that day alone, from the same code
(``SearchAnalyticsService.overview``). The comparison with the day before is left out: a record holds
the day's own figures, and the day before has its own record."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from semantic.daily_content import day_period
from semantic.search import SearchAnalyticsService
from storage.aggregates import SEARCH_RECORD_COLUMNS


async def search_record(search: SearchAnalyticsService, day: date, *, calculated_at: datetime) -> dict[str, Any]:
    overview = await search.overview(day_period(day))
    values = overview.model_dump()
    values.update(
        day=day,
        # JSON object keys are text: positions as "1", "2", ...
        click_positions={str(position): clicks for position, clicks in overview.click_positions.items()},
        calculated_at=calculated_at,
    )
    return {column: values[column] for column in SEARCH_RECORD_COLUMNS}
