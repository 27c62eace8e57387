"""Right of access: everything the service holds about one user, as JSON lines (docs/security.md#access-requests).

``GET /api/v1/analytics/users/{user_id}/data`` streams one JSON object per line, each with a ``record``
naming what it is:

- ``request``: the id asked for, the forms it is stored under (core/user_ids.py) and when the export ran;
- ``event``: each stored event of the user (``data``: the event as ``GET /events/{id}`` answers it),
  newest first;
- ``user_day``: the user's daily rollup rows (activity counts, first and last event of each UTC day);
- ``session``: the rollup row of each session the user had (start, end, events, pages);
- ``postgres_row``: rows of the metadata database's tables with a ``user_id`` column (``table`` names it);
- ``erasure_job``: the user's erasure jobs, with their receipts;
- ``suppression``: whether the user is on the suppression list;
- ``summary``: how many lines of each record came before it, last: a stream without it was cut short.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from semantic.erasure import ErasureService, checked_user_id, job_view
from storage.events import MAX_PAGE_SIZE, EventFilter, EventStore

# The user's rows in the metadata database, per table.
PostgresRows = Callable[[list[str]], Awaitable[dict[str, list[dict[str, Any]]]]]

_USER_DAYS = (
    "SELECT day, user_id, sum(events) AS events, sum(views) AS views, sum(completes) AS completes, "
    "sum(searches) AS searches, sum(likes) AS likes, sum(shares) AS shares, sum(bookmarks) AS bookmarks, "
    "sum(comments) AS comments, sum(pages) AS pages, min(first_seen) AS first_seen, max(last_seen) AS last_seen "
    "FROM user_daily WHERE user_id IN {ids:Array(String)} GROUP BY day, user_id ORDER BY day, user_id"
)
# A session's rows merge into one; those not merged yet may name the user in only some of them.
_SESSIONS = (
    "SELECT session_id, max(user_id) AS user_id, min(started) AS started, max(ended) AS ended, "
    "sum(events) AS events, sum(pages) AS pages FROM session_rollup WHERE session_id IN "
    "(SELECT session_id FROM session_rollup WHERE user_id IN {ids:Array(String)}) "
    "GROUP BY session_id ORDER BY started, session_id"
)


def _line(record: str, **fields: Any) -> bytes:
    return orjson.dumps({"record": record, **fields}, option=orjson.OPT_NON_STR_KEYS, default=str) + b"\n"


class AccessRequest:
    def __init__(
        self,
        store: EventStore,
        erasure: ErasureService,
        *,
        suppressed: Callable[[str], bool],
        postgres_rows: PostgresRows | None = None,
    ) -> None:
        self._store = store
        self._erasure = erasure
        self._suppressed = suppressed
        self._postgres_rows = postgres_rows

    def check(self, user_id: str) -> str:
        """The id to export (a 400 before the stream starts when it cannot be one)."""
        return checked_user_id(user_id)

    async def lines(self, user_id: str) -> AsyncIterator[bytes]:
        user_id = checked_user_id(user_id)
        forms = self._erasure.forms(user_id)
        counts: dict[str, int] = {}

        def line(record: str, **fields: Any) -> bytes:
            counts[record] = counts.get(record, 0) + 1
            return _line(record, **fields)

        yield line("request", user_id=user_id, id_forms=forms, generated_at=datetime.now(UTC).isoformat())
        for form in forms:
            cursor: str | None = None
            while True:
                page = await self._store.list(EventFilter(user_id=form), MAX_PAGE_SIZE, cursor)
                for event in page.events:
                    yield line("event", data=event)
                cursor = page.next_cursor
                if cursor is None:
                    break
        for sql, record in ((_USER_DAYS, "user_day"), (_SESSIONS, "session")):
            result = await self._store.query(sql, {"ids": forms})
            for row in result.dicts():
                yield line(record, data=row)
        if self._postgres_rows is not None:
            for table, rows in (await self._postgres_rows(forms)).items():
                for row in rows:
                    yield line("postgres_row", table=table, data=row)
        for job in await self._erasure.jobs_of(user_id):
            yield line("erasure_job", data=job_view(job))
        yield line("suppression", data={"suppressed": any(self._suppressed(form) for form in forms)})
        yield _line("summary", counts=counts)
