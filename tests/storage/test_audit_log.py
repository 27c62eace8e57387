"""storage/audit_log.py against the real PostgreSQL: the table refuses every change but an insert, entries
round-trip whole, filters narrow, and pages follow each other newest first without gaps or repeats.

One migrated database for the module (the log cannot be emptied: that is the point); each test keeps
to its own entries through a unique action or actor."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from core.errors import InvalidRequest
from storage.audit_log import (
    REQUEST_ORIGIN,
    AuditEntry,
    AuditFilter,
    AuditLog,
    Outcome,
    RequestOrigin,
    decode_cursor,
    encode_cursor,
)
from storage.metadata import MetadataStore

DIGEST = "ab" * 32


@pytest.fixture(scope="module")
def dsn(make_database: Callable[[], str]) -> str:
    return make_database()


@pytest.fixture(scope="module")
async def metadata(dsn: str) -> AsyncIterator[MetadataStore]:
    store = await MetadataStore.connect(dsn)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
def audit_log(metadata: MetadataStore) -> AuditLog:
    return metadata.audit_log


@pytest.fixture
def tag() -> str:
    return secrets.token_hex(4)


def full_entry(tag: str, **changes: object) -> AuditEntry:
    values: dict[str, object] = {
        "action": f"POST /things/{{thing_id}} {tag}",
        "actor_key_id": f"key_{tag}",
        "actor_role": "admin",
        "actor_name": "the admin",
        "operation": "manage API keys",
        "target": "thing-1",
        "parameter_digest": DIGEST,
        "outcome": Outcome.DENIED,
        "status": 403,
        "request_id": f"req-{tag}",
        "client_address": "203.0.113.7",
        "details": {"graphql_operation": "Op", "n": [1, 2]},
        "at": datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
    }
    values.update(changes)
    return AuditEntry(**values)  # type: ignore[arg-type]


# --- append-only ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'rewritten'",
        "UPDATE audit_log SET outcome = 'ok' WHERE false",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = -1",
        "TRUNCATE audit_log",
    ],
)
async def test_the_table_refuses_every_change_but_an_insert(audit_log: AuditLog, tag: str, statement: str) -> None:
    await audit_log.append(full_entry(tag))
    before = await audit_log.pool.fetch("SELECT * FROM audit_log ORDER BY id")

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="audit_log is append-only"):
        await audit_log.pool.execute(statement)

    assert await audit_log.pool.fetch("SELECT * FROM audit_log ORDER BY id") == before


async def test_the_refusal_holds_inside_a_transaction_that_tries_to_hide_it(audit_log: AuditLog, tag: str) -> None:
    await audit_log.append(full_entry(tag))
    async with audit_log.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("INSERT INTO audit_log (action) VALUES ('cover')")
                await conn.execute("DELETE FROM audit_log WHERE actor_key_id = $1", f"key_{tag}")
    page = await audit_log.page(AuditFilter(actor_key_id=f"key_{tag}"))
    assert len(page.entries) == 1


async def test_the_columns_refuse_values_outside_their_domain(audit_log: AuditLog, tag: str) -> None:
    for bad in (
        full_entry(tag, status=99),
        full_entry(tag, actor_role="root"),
        full_entry(tag, parameter_digest="not a digest"),
    ):
        with pytest.raises(asyncpg.CheckViolationError):
            await audit_log.append(bad)
    with pytest.raises(asyncpg.CheckViolationError):
        await audit_log.pool.execute("INSERT INTO audit_log (action, outcome) VALUES ('x', 'fine')")


# --- round trip --------------------------------------------------------------------------------


async def test_an_entry_round_trips_whole(audit_log: AuditLog, tag: str) -> None:
    entry = full_entry(tag)
    await audit_log.append(entry)

    [record] = (await audit_log.page(AuditFilter(action=entry.action))).entries
    assert record.entry == entry
    assert record.at == entry.at
    assert record.to_dict() == {
        "id": record.id,
        "at": "2026-03-01T12:30:00+00:00",
        "actor_key_id": f"key_{tag}",
        "actor_role": "admin",
        "actor_name": "the admin",
        "action": entry.action,
        "operation": "manage API keys",
        "target": "thing-1",
        "parameter_digest": DIGEST,
        "outcome": "denied",
        "status": 403,
        "request_id": f"req-{tag}",
        "client_address": "203.0.113.7",
        "details": {"graphql_operation": "Op", "n": [1, 2]},
    }


async def test_an_entry_without_a_time_is_stamped_by_the_database(audit_log: AuditLog, tag: str) -> None:
    before = datetime.now(UTC)
    await audit_log.append(AuditEntry(action=f"bare {tag}"))
    [record] = (await audit_log.page(AuditFilter(action=f"bare {tag}"))).entries
    assert abs((record.at - before).total_seconds()) < 60
    assert (record.entry.outcome, record.entry.status, record.entry.details) == (Outcome.OK, None, {})


async def test_text_with_nul_is_kept_with_the_character_replaced(audit_log: AuditLog, tag: str) -> None:
    await audit_log.append(AuditEntry(action=f"nul {tag}", target="a\x00b", details={"k\x00": ["v\x00"]}))
    [record] = (await audit_log.page(AuditFilter(action=f"nul {tag}"))).entries
    assert record.entry.target == "a\ufffdb"
    assert record.entry.details == {"k\ufffd": ["v\ufffd"]}


async def test_a_batch_is_stored_whole_or_not_at_all(audit_log: AuditLog, tag: str) -> None:
    good = [AuditEntry(action=f"batch {tag}", target=str(i)) for i in range(3)]
    with pytest.raises(asyncpg.CheckViolationError):
        await audit_log.append_many([*good, AuditEntry(action=f"batch {tag}", status=1000)])
    assert (await audit_log.page(AuditFilter(action=f"batch {tag}"))).entries == []

    await audit_log.append_many(good)
    stored = (await audit_log.page(AuditFilter(action=f"batch {tag}"))).entries
    assert [r.entry.target for r in stored] == ["2", "1", "0"]


async def test_the_metadata_store_entries_carry_the_request_they_were_written_in(
    metadata: MetadataStore, tag: str
) -> None:
    token = REQUEST_ORIGIN.set(RequestOrigin(f"req-{tag}", "198.51.100.4"))
    try:
        await metadata.audit("api_key.create", actor_key_id=f"key_{tag}", target="key_new", details={"role": "viewer"})
    finally:
        REQUEST_ORIGIN.reset(token)
    await metadata.audit("api_key.revoke", actor_key_id=f"key_{tag}", target="key_new")

    records = (await metadata.audit_log.page(AuditFilter(actor_key_id=f"key_{tag}"))).entries
    assert [(r.entry.action, r.entry.request_id, r.entry.client_address) for r in records] == [
        ("api_key.revoke", None, None),
        ("api_key.create", f"req-{tag}", "198.51.100.4"),
    ]
    assert records[1].entry.details == {"role": "viewer"} and records[1].entry.outcome is Outcome.OK
    # The older reader keeps its shape.
    legacy = [e for e in await metadata.audit_entries(1000) if e["actor_key_id"] == f"key_{tag}"]
    assert [{k: v for k, v in e.items() if k != "at"} for e in legacy] == [
        {"actor_key_id": f"key_{tag}", "action": "api_key.revoke", "target": "key_new", "details": {}},
        {"actor_key_id": f"key_{tag}", "action": "api_key.create", "target": "key_new", "details": {"role": "viewer"}},
    ]


# --- filters and paging -------------------------------------------------------------------------


async def test_each_filter_narrows_to_the_entries_that_match_it(audit_log: AuditLog, tag: str) -> None:
    noon = datetime(2026, 4, 2, 12, 0, tzinfo=UTC)
    entries = {
        "a": full_entry(tag, actor_key_id=f"key_a_{tag}", actor_role="admin", outcome=Outcome.OK, at=noon),
        "b": full_entry(
            tag,
            actor_key_id=f"key_b_{tag}",
            actor_role="viewer",
            action=f"GET /secret {tag}",
            operation="read raw events",
            target="thing-2",
            request_id=f"req-b-{tag}",
            client_address="192.0.2.1",
            outcome=Outcome.DENIED,
            at=noon + timedelta(minutes=5),
        ),
        "c": full_entry(
            tag,
            actor_key_id=f"key_a_{tag}",
            actor_role="admin",
            outcome=Outcome.ERROR,
            status=500,
            at=noon + timedelta(minutes=10),
        ),
    }
    for entry in entries.values():
        await audit_log.append(entry)

    async def matching(**filters: object) -> list[str]:
        page = await audit_log.page(AuditFilter(**filters), limit=1000)  # type: ignore[arg-type]
        found = {(r.entry.actor_key_id, r.entry.at, r.entry.outcome): r for r in page.entries}
        return sorted(name for name, e in entries.items() if (e.actor_key_id, e.at, e.outcome) in found)

    assert await matching(actor_key_id=f"key_a_{tag}") == ["a", "c"]
    assert await matching(actor_key_id=f"key_b_{tag}", actor_role="viewer") == ["b"]
    assert await matching(actor_key_id=f"key_a_{tag}", outcome=Outcome.ERROR) == ["c"]
    assert await matching(action=f"GET /secret {tag}") == ["b"]
    assert await matching(operation="read raw events", request_id=f"req-b-{tag}") == ["b"]
    assert await matching(target="thing-2", client_address="192.0.2.1") == ["b"]
    assert await matching(actor_key_id=f"key_a_{tag}", since=noon + timedelta(minutes=1)) == ["c"]
    assert await matching(actor_key_id=f"key_a_{tag}", until=noon + timedelta(minutes=10)) == ["a"]
    between = {"since": noon, "until": noon + timedelta(minutes=6)}
    assert await matching(action=f"GET /secret {tag}", **between) == ["b"]
    assert await matching(actor_key_id=f"key_a_{tag}", actor_role="viewer") == []


async def test_pages_run_newest_first_without_gaps_or_repeats(audit_log: AuditLog, tag: str) -> None:
    await audit_log.append_many([AuditEntry(action=f"paged {tag}", target=str(i)) for i in range(7)])
    only_these = AuditFilter(action=f"paged {tag}")

    seen: list[str] = []
    cursor: str | None = None
    sizes = []
    while True:
        page = await audit_log.page(only_these, cursor, limit=3)
        sizes.append(len(page.entries))
        seen.extend(r.entry.target or "" for r in page.entries)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sizes == [3, 3, 1]
    assert seen == ["6", "5", "4", "3", "2", "1", "0"]

    # A page that ends exactly at the last entry says there is no more.
    exact = await audit_log.page(only_these, limit=7)
    assert len(exact.entries) == 7 and exact.next_cursor is None


async def test_a_cursor_keeps_its_place_while_new_entries_arrive(audit_log: AuditLog, tag: str) -> None:
    only_these = AuditFilter(action=f"live {tag}")
    await audit_log.append_many([AuditEntry(action=f"live {tag}", target=str(i)) for i in range(4)])
    first = await audit_log.page(only_these, limit=2)
    await audit_log.append(AuditEntry(action=f"live {tag}", target="new"))
    second = await audit_log.page(only_these, first.next_cursor, limit=2)
    assert [r.entry.target for r in first.entries + second.entries] == ["3", "2", "1", "0"]


@pytest.mark.parametrize(
    "cursor",
    ["", "nonsense", "!!!", encode_cursor(5)[:-2], "YXVkaXQ6LTE", "YXVkaXQ6MWUz", encode_cursor(2**63)],
)
async def test_a_cursor_the_log_did_not_hand_out_is_refused_naming_it(audit_log: AuditLog, cursor: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await audit_log.page(cursor=cursor)
    assert refused.value.details == {"field": "cursor"}


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_a_page_size_out_of_range_is_refused_naming_it(audit_log: AuditLog, limit: int) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await audit_log.page(limit=limit)
    assert refused.value.details == {"field": "limit"}


def test_cursors_encode_the_entry_id() -> None:
    assert decode_cursor(encode_cursor(42)) == 42
    assert decode_cursor(encode_cursor(9_000_000_000)) == 9_000_000_000


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "ok"), (201, "ok"), (304, "ok"), (401, "denied"), (403, "denied"), (404, "failed"), (429, "failed")]
    + [(422, "failed"), (500, "error"), (503, "error")],
)
def test_the_outcome_follows_the_status(status: int, outcome: str) -> None:
    assert Outcome.of_status(status).value == outcome
