"""The deliveries of each finished report run in PostgreSQL (``report_deliveries``), and sending them all.

A delivery's row is written ``pending`` before the first attempt and finished ``delivered`` or ``failed``
with its attempts and last error once the notifier is done; a row still pending later belongs to a
process that stopped mid-delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg

from core.errors import Conflict, NotFound
from storage.notifier import DeliveryOutcome, Notification, NotificationTarget, Notifier

_COLUMNS = "id, channel, target, status, attempts, last_error, created_at, delivered_at"
# A recorded error is cut to this length: it is for people reading the run's history.
_MAX_ERROR_CHARS = 1000
# Deliveries of one run under way at once (each SMTP attempt holds a worker thread).
_CONCURRENT_DELIVERIES = 8


class ReportDeliveries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def start(self, run_id: str, target: NotificationTarget) -> int:
        """A pending delivery of run ``run_id`` to ``target``; its id."""
        delivery_id: int = await self._pool.fetchval(
            "INSERT INTO report_deliveries (run_id, channel, target, status) VALUES ($1, $2, $3, 'pending') "
            "RETURNING id",
            run_id,
            target.channel.value,
            target.target,
        )
        return delivery_id

    async def finish(self, delivery_id: int, outcome: DeliveryOutcome) -> None:
        """Record how a pending delivery ended; NotFound for an unknown id, Conflict if already finished."""
        error = outcome.error[:_MAX_ERROR_CHARS] if outcome.error is not None else None
        finished = await self._pool.fetchval(
            "UPDATE report_deliveries SET status = $2, attempts = $3, last_error = $4, "
            "delivered_at = CASE WHEN $2 = 'delivered' THEN now() END "
            "WHERE id = $1 AND status = 'pending' RETURNING id",
            delivery_id,
            "delivered" if outcome.delivered else "failed",
            outcome.attempts,
            error,
        )
        if finished is not None:
            return
        status = await self._pool.fetchval("SELECT status FROM report_deliveries WHERE id = $1", delivery_id)
        if status is None:
            raise NotFound(f"delivery {delivery_id} does not exist", details={"field": "delivery_id"})
        raise Conflict(f"delivery {delivery_id} is already {status}", details={"field": "delivery_id"})

    async def of_run(self, run_id: str) -> list[dict[str, Any]]:
        """Every delivery of a run, oldest first."""
        rows = await self._pool.fetch(f"SELECT {_COLUMNS} FROM report_deliveries WHERE run_id = $1 ORDER BY id", run_id)
        return [dict(row) for row in rows]


async def notify_all(
    notifier: Notifier,
    deliveries: ReportDeliveries,
    run_id: str,
    targets: Sequence[NotificationTarget],
    notification: Notification,
) -> list[DeliveryOutcome]:
    """Deliver ``notification`` to every target at once, each recorded; the outcomes in the targets' order.

    A target that fails does not hold back the others. If recording fails (the database is away), the
    other deliveries still run to their end, and the first such error is raised afterwards.
    """
    # Every row first, in the targets' order: the run's history lists them all from the start.
    delivery_ids = [await deliveries.start(run_id, target) for target in targets]
    gate = asyncio.Semaphore(_CONCURRENT_DELIVERIES)

    async def one(delivery_id: int, target: NotificationTarget) -> DeliveryOutcome:
        async with gate:
            outcome = await notifier.deliver(target, notification)
        await deliveries.finish(delivery_id, outcome)
        return outcome

    results = await asyncio.gather(*map(one, delivery_ids, targets), return_exceptions=True)
    outcomes: list[DeliveryOutcome] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        outcomes.append(result)
    return outcomes
