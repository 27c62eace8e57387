"""storage/saved_queries.py against the real PostgreSQL: one fresh, migrated database per test."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import asyncpg
import pytest

from core.access import Principal, Role
from core.errors import Conflict, NotFound
from storage.metadata import MetadataStore
from storage.saved_queries import NewSavedQuery, SavedQueryChanges, SavedQueryRepository

ALICE = Principal(key_id="key_alice", name="alice", role=Role.ANALYST)
BOB = Principal(key_id="key_bob", name="bob", role=Role.VIEWER)
CAROL = Principal(key_id="key_carol", name="carol", role=Role.CONTENT_MANAGER)
ADMIN = Principal(key_id="key_admin", name="root", role=Role.ADMIN)

FUNNEL = {"steps": [{"event_type": "content_view"}, {"event_type": "content_play"}], "window": "7d", "ratio": 0.25}


@pytest.fixture
async def metadata(migrated: MetadataStore) -> MetadataStore:
    """The module's store, emptied: each test starts with no saved queries and no audit entries."""
    # audit_log refuses TRUNCATE (append-only); the replica role of the test's superuser skips that trigger.
    await migrated.pool.execute(
        "SET session_replication_role = replica; TRUNCATE saved_queries, audit_log; RESET session_replication_role"
    )
    return migrated


@pytest.fixture
def repository(metadata: MetadataStore) -> SavedQueryRepository:
    return SavedQueryRepository(metadata.pool)


def new(name: str, kind: str = "funnel", **sharing) -> NewSavedQuery:
    return NewSavedQuery(name=name, kind=kind, definition={"name": name, **FUNNEL}, **sharing)


# --- the migration ----------------------------------------------------------------------------


async def test_migration_makes_the_table_and_its_indexes(metadata):
    names = [r["name"] for r in await metadata.pool.fetch("SELECT name FROM schema_migrations ORDER BY version")]
    assert names[:2] == ["001_api_keys.sql", "002_saved_queries.sql"]
    indexes = {
        r["indexname"]
        for r in await metadata.pool.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'saved_queries'")
    }
    assert indexes == {
        "saved_queries_pkey",
        "saved_queries_owner_name",
        "saved_queries_owner",
        "saved_queries_kind",
        "saved_queries_shared_roles",
        "saved_queries_shared_keys",
    }
    assert await metadata.migrate() == []


async def test_the_table_refuses_a_definition_that_is_not_an_object(metadata):
    with pytest.raises(asyncpg.CheckViolationError):
        await metadata.pool.execute(
            "INSERT INTO saved_queries (id, name, kind, definition, owner_key_id, owner_name) "
            "VALUES ('sq_x', 'n', 'funnel', '[1, 2]'::jsonb, 'k', 'o')"
        )


# --- create and get ---------------------------------------------------------------------------


async def test_create_and_get_round_trip(repository):
    before = datetime.now(UTC)
    definition = {"steps": [{"event_type": "content_view", "filters": {"country": "Ägypten"}}], "share": 0.125}
    saved = await repository.create(
        ALICE,
        NewSavedQuery(
            name="Weekly funnel",
            kind="funnel",
            definition=definition,
            description="views to plays",
            shared_with_roles=(Role.VIEWER, Role.CONTENT_MANAGER),
            shared_with_keys=("key_bob",),
        ),
    )
    assert saved.id.startswith("sq_") and len(saved.id) == 3 + 24
    assert (saved.name, saved.kind, saved.description, saved.definition) == (
        "Weekly funnel",
        "funnel",
        "views to plays",
        definition,
    )
    assert (saved.owner_key_id, saved.owner_name) == ("key_alice", "alice")
    assert saved.shared_with_roles == (Role.VIEWER, Role.CONTENT_MANAGER)
    assert saved.shared_with_keys == ("key_bob",)
    assert saved.version == 1
    assert saved.created_at == saved.updated_at
    assert abs((saved.created_at - before).total_seconds()) < 60

    assert await repository.get(saved.id) == saved
    assert await repository.get("sq_missing") is None


async def test_to_dict(repository):
    saved = await repository.create(ALICE, new("q", shared_with_roles=(Role.VIEWER,), shared_with_keys=("key_b",)))
    assert saved.to_dict() == {
        "id": saved.id,
        "name": "q",
        "description": "",
        "kind": "funnel",
        "definition": {"name": "q", **FUNNEL},
        "owner_key_id": "key_alice",
        "owner_name": "alice",
        "shared_with_roles": ["viewer"],
        "shared_with_keys": ["key_b"],
        "created_at": saved.created_at.isoformat(),
        "updated_at": saved.updated_at.isoformat(),
        "version": 1,
    }


async def test_names_are_unique_per_owner(repository):
    await repository.create(ALICE, new("Daily retention"))
    with pytest.raises(Conflict) as exc:
        await repository.create(ALICE, new("Daily retention", kind="retention"))
    assert exc.value.details == {"field": "name"}
    assert "already has a saved query named 'Daily retention'" in exc.value.message
    # Another owner may use the same name.
    other = await repository.create(BOB, new("Daily retention"))
    assert other.owner_key_id == "key_bob"


# --- visibility -------------------------------------------------------------------------------

SHARINGS = [
    {},
    {"shared_with_roles": (Role.VIEWER,)},
    {"shared_with_roles": (Role.CONTENT_MANAGER, Role.VIEWER)},
    {"shared_with_keys": ("key_bob",)},
    {"shared_with_keys": ("key_carol", "key_other")},
    {"shared_with_roles": (Role.ANALYST,), "shared_with_keys": ("key_bob",)},
]


def may_see(principal: Principal, owner: Principal, sharing: dict) -> bool:
    return (
        principal.role == Role.ADMIN
        or principal.key_id == owner.key_id
        or principal.role in sharing.get("shared_with_roles", ())
        or principal.key_id in sharing.get("shared_with_keys", ())
    )


async def test_who_sees_what(repository):
    made = {}
    for n, (owner, sharing) in enumerate(itertools.product((ALICE, BOB), SHARINGS)):
        saved = await repository.create(owner, new(f"q{n}", **sharing))
        made[saved.id] = (owner, sharing)
    dave = Principal(key_id="key_dave", name="dave", role=Role.ANALYST)
    for principal in (ALICE, BOB, CAROL, ADMIN, dave):
        expected = {i for i, (owner, sharing) in made.items() if may_see(principal, owner, sharing)}
        page = await repository.list_visible(principal, limit=100)
        assert {s.id for s in page.items} == expected, principal
        assert page.total == len(expected)
        # The single-row rule agrees with the list's SQL.
        for query_id in made:
            assert (await repository.get(query_id)).visible_to(principal) == (query_id in expected)
    # The admin sees everything; an analyst stranger sees only what is shared with analysts (owned by no one it is).
    assert (await repository.list_visible(ADMIN, limit=100)).total == len(made)
    assert (await repository.list_visible(dave, limit=100)).total == sum(
        1 for _, sharing in made.values() if Role.ANALYST in sharing.get("shared_with_roles", ())
    )


async def test_managed_by_owner_and_admin_only(repository):
    saved = await repository.create(ALICE, new("q", shared_with_roles=(Role.VIEWER,), shared_with_keys=("key_carol",)))
    assert [p.name for p in (ALICE, BOB, CAROL, ADMIN) if saved.managed_by(p)] == ["alice", "root"]


async def test_list_filters_by_kind_and_pages_newest_first(repository):
    made = [await repository.create(ALICE, new(f"q{n}", kind=("funnel", "paths")[n % 3 == 0])) for n in range(7)]
    newest_first = sorted(made, key=lambda s: (s.created_at, s.id), reverse=True)

    first = await repository.list_visible(ALICE, limit=3, offset=0)
    second = await repository.list_visible(ALICE, limit=3, offset=3)
    third = await repository.list_visible(ALICE, limit=3, offset=6)
    assert [s.id for s in first.items + second.items + third.items] == [s.id for s in newest_first]
    assert (first.total, len(third.items), third.limit, third.offset) == (7, 1, 3, 6)

    paths = await repository.list_visible(ALICE, kind="paths", limit=50)
    assert [s.id for s in paths.items] == [s.id for s in newest_first if s.kind == "paths"]
    assert paths.total == sum(1 for n in range(7) if n % 3 == 0)
    assert (await repository.list_visible(ALICE, kind="stickiness")).total == 0
    assert (await repository.list_visible(ALICE, limit=2, offset=50)).items == []


# --- update -----------------------------------------------------------------------------------


async def test_update_changes_the_given_fields_and_bumps_the_version(repository):
    saved = await repository.create(ALICE, new("q", shared_with_roles=(Role.VIEWER,)))
    renamed = await repository.update(saved.id, expected_version=1, changes=SavedQueryChanges(name="renamed"))
    assert (renamed.name, renamed.version, renamed.definition, renamed.shared_with_roles) == (
        "renamed",
        2,
        saved.definition,
        (Role.VIEWER,),
    )
    assert renamed.updated_at >= saved.updated_at and renamed.created_at == saved.created_at

    changes = SavedQueryChanges(
        description="d", definition={"steps": []}, shared_with_roles=(), shared_with_keys=("key_bob", "key_carol")
    )
    again = await repository.update(saved.id, expected_version=2, changes=changes)
    assert (again.name, again.description, again.definition, again.version) == ("renamed", "d", {"steps": []}, 3)
    assert (again.shared_with_roles, again.shared_with_keys) == ((), ("key_bob", "key_carol"))
    assert await repository.get(saved.id) == again


async def test_update_with_a_stale_version_is_a_conflict(repository):
    saved = await repository.create(ALICE, new("q"))
    await repository.update(saved.id, expected_version=1, changes=SavedQueryChanges(description="first"))
    with pytest.raises(Conflict) as exc:
        await repository.update(saved.id, expected_version=1, changes=SavedQueryChanges(description="second"))
    assert exc.value.details == {"field": "version", "current_version": 2}
    assert exc.value.message.startswith(f"saved query {saved.id!r} is at version 2, not 1")
    stored = await repository.get(saved.id)
    assert (stored.description, stored.version) == ("first", 2)


async def test_update_of_a_missing_id_is_not_found(repository):
    with pytest.raises(NotFound) as exc:
        await repository.update("sq_missing", expected_version=1, changes=SavedQueryChanges(name="x"))
    assert exc.value.message == "saved query 'sq_missing' does not exist"


async def test_rename_onto_a_taken_name_is_a_conflict(repository):
    await repository.create(ALICE, new("taken"))
    saved = await repository.create(ALICE, new("free"))
    with pytest.raises(Conflict) as exc:
        await repository.update(saved.id, expected_version=1, changes=SavedQueryChanges(name="taken"))
    assert exc.value.details == {"field": "name"}
    assert (await repository.get(saved.id)).name == "free"


# --- delete -----------------------------------------------------------------------------------


async def test_delete(repository):
    saved = await repository.create(ALICE, new("q"))
    kept = await repository.create(ALICE, new("kept"))
    assert await repository.delete(saved.id) == saved
    assert await repository.get(saved.id) is None
    assert await repository.get(kept.id) == kept
    with pytest.raises(NotFound):
        await repository.delete(saved.id)


async def test_delete_with_a_version(repository):
    saved = await repository.create(ALICE, new("q"))
    await repository.update(saved.id, expected_version=1, changes=SavedQueryChanges(name="q2"))
    with pytest.raises(Conflict) as exc:
        await repository.delete(saved.id, expected_version=1)
    assert exc.value.details == {"field": "version", "current_version": 2}
    assert (await repository.delete(saved.id, expected_version=2)).name == "q2"
