"""storage/suppression_list.py on the real PostgreSQL: what one replica adds, another holds after its next
reload, reading only what is new; adding twice is harmless; a list without a database works in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from core.user_ids import suppression_digest
from storage.metadata import MetadataStore
from storage.suppression_list import SuppressionList


@pytest.fixture
def dsn(make_database: Callable[[], str]) -> str:
    return make_database()


@pytest.fixture
async def metadata(dsn: str) -> AsyncIterator[MetadataStore]:
    store = await MetadataStore.connect(dsn)
    await store.migrate()
    yield store
    await store.close()


async def test_a_replica_holds_what_another_added_after_its_reload(metadata: MetadataStore) -> None:
    writer, reader = SuppressionList(metadata.pool), SuppressionList(metadata.pool)
    assert await reader.reload() == 0 and not reader.holds("u-1")

    await writer.add([suppression_digest("u-1"), suppression_digest("u-1b")], "erasure_a")
    assert writer.holds("u-1") and writer.holds("u-1b")
    assert not reader.holds("u-1")
    assert await reader.reload() == 2 and reader.holds("u-1") and not reader.holds("u-2")

    await writer.add([suppression_digest("u-2")], "erasure_b")
    await writer.add([suppression_digest("u-2")], "erasure_c")
    assert await reader.reload() == 3 and reader.holds("u-2")
    rows = await metadata.pool.fetch("SELECT job_id FROM suppressed_users ORDER BY seq")
    assert [row["job_id"] for row in rows] == ["erasure_a", "erasure_a", "erasure_b"]


async def test_only_digests_are_stored(metadata: MetadataStore) -> None:
    await SuppressionList(metadata.pool).add([suppression_digest("u-secret-id")], "erasure_a")
    rows = await metadata.pool.fetch("SELECT * FROM suppressed_users")
    assert "u-secret-id" not in repr([dict(row) for row in rows])
    assert bytes(rows[0]["digest"]) == suppression_digest("u-secret-id")


async def test_a_row_committed_late_is_read_by_a_later_reload(metadata: MetadataStore) -> None:
    reader = SuppressionList(metadata.pool)
    # A row whose seq was drawn before the reload but which became visible only after it.
    late_seq = await metadata.pool.fetchval("SELECT nextval('suppressed_users_seq_seq')")
    await SuppressionList(metadata.pool).add([suppression_digest("u-early")], "erasure_a")
    await reader.reload()
    await metadata.pool.execute(
        "INSERT INTO suppressed_users (digest, seq, job_id) VALUES ($1, $2, 'erasure_b')",
        suppression_digest("u-late"),
        late_seq,
    )
    await reader.reload()
    assert reader.holds("u-late")


async def test_without_a_database_the_list_is_in_memory() -> None:
    erased = SuppressionList(None)
    assert len(erased) == 0 and not erased.holds("u-1")
    await erased.add([suppression_digest("u-1")], "erasure_a")
    assert erased.holds("u-1") and await erased.reload() == 1
