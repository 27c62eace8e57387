"""storage/report_deliveries.py against the real PostgreSQL (a fresh, migrated database for the module), and
notify_all sending to a real HTTP receiver on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import orjson
import pytest
from aiohttp import web

from core.errors import Conflict, NotFound
from core.settings import Settings
from storage.metadata import MetadataStore
from storage.notifier import Channel, DeliveryOutcome, Notification, NotificationTarget, Notifier, verify
from storage.report_deliveries import ReportDeliveries, notify_all

SECRET = "whsec_" + "s" * 32


@pytest.fixture
def deliveries(migrated: MetadataStore) -> ReportDeliveries:
    return ReportDeliveries(migrated.pool)


@pytest.fixture
async def run_id(migrated: MetadataStore, unique: str) -> str:
    """A report and one completed run of it: the rows a delivery refers to."""
    pool = migrated.pool
    await pool.execute(
        "INSERT INTO reports (id, name, report_type, report_format, data_source, date_range, created_by, "
        "owner_key_id, owner_role) VALUES ($1, 'Weekly performance', 'content_performance', 'pdf', 'events', "
        "'{\"preset\": \"last_7_days\"}', 'alice', 'key_alice', 'analyst')",
        f"rep_{unique}",
    )
    await pool.execute(
        "INSERT INTO report_runs (id, report_id, status, trigger, report_format, requested_by, requested_role) "
        "VALUES ($1, $2, 'completed', 'manual', 'pdf', 'key_alice', 'analyst')",
        f"run_{unique}",
        f"rep_{unique}",
    )
    return f"run_{unique}"


async def now(pool: asyncpg.Pool) -> datetime:
    return await pool.fetchval("SELECT clock_timestamp()")


EMAIL = NotificationTarget(Channel.EMAIL, "ops@example.com")
HOOK = NotificationTarget(Channel.WEBHOOK, "https://hooks.example.com/analytics")


async def test_start_records_a_pending_delivery(deliveries, migrated, run_id):
    before = await now(migrated.pool)
    delivery_id = await deliveries.start(run_id, EMAIL)
    after = await now(migrated.pool)

    [row] = await deliveries.of_run(run_id)
    created_at = row.pop("created_at")
    assert before <= created_at <= after
    assert row == {
        "id": delivery_id,
        "channel": "email",
        "target": "ops@example.com",
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "delivered_at": None,
    }


async def test_finish_records_the_outcome(deliveries, migrated, run_id):
    delivered_id = await deliveries.start(run_id, EMAIL)
    failed_id = await deliveries.start(run_id, HOOK)
    before = await now(migrated.pool)
    await deliveries.finish(delivered_id, DeliveryOutcome(True, 3, None))
    after = await now(migrated.pool)
    await deliveries.finish(failed_id, DeliveryOutcome(False, 1, "the receiver answered HTTP 400: bad"))

    delivered, failed = await deliveries.of_run(run_id)
    assert before <= delivered["delivered_at"] <= after
    assert {k: delivered[k] for k in ("id", "channel", "target", "status", "attempts", "last_error")} == {
        "id": delivered_id,
        "channel": "email",
        "target": "ops@example.com",
        "status": "delivered",
        "attempts": 3,
        "last_error": None,
    }
    assert {k: failed[k] for k in ("id", "channel", "target", "status", "attempts", "last_error", "delivered_at")} == {
        "id": failed_id,
        "channel": "webhook",
        "target": "https://hooks.example.com/analytics",
        "status": "failed",
        "attempts": 1,
        "last_error": "the receiver answered HTTP 400: bad",
        "delivered_at": None,
    }
    assert delivered["created_at"] <= failed["created_at"]


async def test_a_long_error_is_cut(deliveries, run_id):
    delivery_id = await deliveries.start(run_id, HOOK)
    await deliveries.finish(delivery_id, DeliveryOutcome(False, 5, "e" * 5000))
    [row] = await deliveries.of_run(run_id)
    assert row["last_error"] == "e" * 1000


async def test_a_delivery_is_finished_once(deliveries, run_id):
    delivery_id = await deliveries.start(run_id, EMAIL)
    await deliveries.finish(delivery_id, DeliveryOutcome(False, 2, "x"))
    with pytest.raises(Conflict) as conflict:
        await deliveries.finish(delivery_id, DeliveryOutcome(True, 3, None))
    assert conflict.value.message == f"delivery {delivery_id} is already failed"
    with pytest.raises(NotFound):
        await deliveries.finish(delivery_id + 1_000_000, DeliveryOutcome(True, 1, None))
    [row] = await deliveries.of_run(run_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 2, "x")


async def test_of_run_lists_only_that_run_oldest_first(deliveries, migrated, run_id, unique):
    await migrated.pool.execute(
        "INSERT INTO report_runs (id, report_id, trigger, report_format, requested_by, requested_role) "
        "VALUES ($1, $2, 'schedule', 'pdf', 'key_alice', 'analyst')",
        f"run_other_{unique}",
        f"rep_{unique}",
    )
    first = await deliveries.start(run_id, HOOK)
    await deliveries.start(f"run_other_{unique}", EMAIL)
    second = await deliveries.start(run_id, EMAIL)
    assert [r["id"] for r in await deliveries.of_run(run_id)] == [first, second]
    assert await deliveries.of_run("run_nobody") == []


async def test_a_delivery_needs_its_run(deliveries):
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await deliveries.start("run_missing", EMAIL)


# --- notify_all ---------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    """A loopback endpoint: /ok and /slack accept, /refuse answers 400; it keeps what it was sent."""
    received: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((request.path, dict(request.headers), await request.read()))
        return web.Response(status=400, text="unknown hook") if request.path == "/refuse" else web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", received
    await runner.cleanup()


async def test_notify_all_records_one_row_per_target(deliveries, run_id, receiver):
    base, received = receiver
    payload = {"event": "analytics.report_generated", "run_id": run_id, "status": "completed"}
    note = Notification("Report 'Weekly performance' is ready", "Done.", "https://a.example/f", None, payload)
    targets = [
        NotificationTarget(Channel.WEBHOOK, f"{base}/ok"),
        NotificationTarget(Channel.WEBHOOK, f"{base}/refuse"),
        NotificationTarget(Channel.EMAIL, "ops@example.com"),
        NotificationTarget(Channel.SLACK, f"{base}/slack"),
    ]
    notifier = Notifier(Settings(webhook_signing_secret=SECRET, smtp_host=None, notify_backoff_seconds=0.01))
    try:
        outcomes = await notify_all(notifier, deliveries, run_id, targets, note)
    finally:
        await notifier.close()

    no_smtp = "no SMTP server is configured (ANALYTICS_SMTP_HOST)"
    refused = "the receiver answered HTTP 400: unknown hook"
    assert outcomes == [
        DeliveryOutcome(True, 1, None),
        DeliveryOutcome(False, 1, refused),
        DeliveryOutcome(False, 0, no_smtp),
        DeliveryOutcome(True, 1, None),
    ]
    rows = await deliveries.of_run(run_id)
    assert [(r["channel"], r["target"], r["status"], r["attempts"], r["last_error"]) for r in rows] == [
        ("webhook", f"{base}/ok", "delivered", 1, None),
        ("webhook", f"{base}/refuse", "failed", 1, refused),
        ("email", "ops@example.com", "failed", 0, no_smtp),
        ("slack", f"{base}/slack", "delivered", 1, None),
    ]
    assert [r["delivered_at"] is not None for r in rows] == [True, False, False, True]

    by_path = {path: (headers, body) for path, headers, body in received}
    assert sorted(by_path) == ["/ok", "/refuse", "/slack"]
    headers, body = by_path["/ok"]
    assert orjson.loads(body) == payload
    assert verify(
        SECRET,
        headers["X-Analytics-Timestamp"],
        body,
        headers["X-Analytics-Signature"],
        now=float(headers["X-Analytics-Timestamp"]),
    )
    assert "Report 'Weekly performance' is ready" in orjson.loads(by_path["/slack"][1])["text"]
