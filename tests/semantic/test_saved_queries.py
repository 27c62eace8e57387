"""semantic/saved_queries.py over the real PostgreSQL, with stand-in kinds (the real ones are wired by the app):
body validation naming the field, who may read, run, change and delete, version conflicts, audit entries."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from core.access import Principal, Role
from core.errors import Conflict, FieldError, Forbidden, InvalidRequest, NotFound, ValidationFailed
from semantic.saved_queries import MAX_DEFINITION_BYTES, SavedKind, SavedQueryService
from storage.metadata import MetadataStore

OWNER = Principal(key_id="key_owner", name="owner", role=Role.ANALYST)
ADMIN = Principal(key_id="key_admin", name="admin", role=Role.ADMIN)
ROLE_READER = Principal(key_id="key_viewer", name="viewer", role=Role.VIEWER)
KEY_READER = Principal(key_id="key_friend", name="friend", role=Role.CONTENT_MANAGER)
STRANGER = Principal(key_id="key_stranger", name="stranger", role=Role.ANALYST)


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_type: str = Field(min_length=1)


class FunnelStandIn(BaseModel):
    """Stands in for the funnel request model: two steps or more, a window with a default."""

    model_config = ConfigDict(extra="forbid")
    steps: list[Step] = Field(min_length=2)
    window_days: int = Field(default=7, ge=1, le=90)


async def run_funnel(definition: dict[str, Any], principal: Principal) -> dict[str, Any]:
    return {"steps": [s["event_type"] for s in definition["steps"]], "asked_by": principal.key_id}


def validate_paths(definition: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(definition.get("start"), str):
        raise InvalidRequest("start: give the event type paths start from", details={"field": "start"})
    if "depth" in definition and not isinstance(definition["depth"], int):
        errors = [{"field": "depth", "message": "must be a whole number"}]
        raise InvalidRequest("depth: must be a whole number", details={"field": "depth", "errors": errors})
    return {"start": definition["start"], "depth": definition.get("depth", 3)}


def validate_query(definition: dict[str, Any]) -> dict[str, Any]:
    if definition.get("metric") not in ("views", "plays"):
        raise ValidationFailed([FieldError(field="metric", message="must be views or plays")])
    return definition


KINDS = {
    "funnel": SavedKind.from_model(FunnelStandIn, run=run_funnel),
    "paths": SavedKind(validate=validate_paths),
    "query": SavedKind(validate=validate_query),
}
FUNNEL = {"steps": [{"event_type": "content_view"}, {"event_type": "content_play"}]}


@pytest.fixture
async def metadata(migrated: MetadataStore) -> MetadataStore:
    """The module's store, emptied: each test starts with no saved queries and no audit entries."""
    # audit_log refuses TRUNCATE (append-only); the replica role of the test's superuser skips that trigger.
    await migrated.pool.execute(
        "SET session_replication_role = replica; TRUNCATE saved_queries, audit_log; RESET session_replication_role"
    )
    return migrated


@pytest.fixture
def service(metadata: MetadataStore) -> SavedQueryService:
    return SavedQueryService.build(metadata, KINDS)


def body(**fields: Any) -> dict[str, Any]:
    return {"name": "Views to plays", "kind": "funnel", "definition": FUNNEL, **fields}


async def shared(service: SavedQueryService):
    return await service.create(body(shared_with_roles=["viewer"], shared_with_keys=["key_friend"]), OWNER)


def fields_of(exc: ValidationFailed | InvalidRequest) -> list[str]:
    if isinstance(exc, ValidationFailed):
        return [e.field for e in exc.errors]
    return [exc.details["field"]]


# --- create -----------------------------------------------------------------------------------


async def test_create_stores_the_normalized_definition_and_audits(service, metadata):
    saved = await service.create(
        body(
            name="  Views to plays  ",
            description="weekly",
            shared_with_roles=["viewer", "viewer", "content_manager"],
            shared_with_keys=["key_b", "key_a", "key_b"],
        ),
        OWNER,
    )
    assert saved.name == "Views to plays"
    # The kind's model filled in its default.
    assert saved.definition == {**FUNNEL, "window_days": 7}
    assert (saved.owner_key_id, saved.owner_name, saved.description, saved.version) == (
        "key_owner",
        "owner",
        "weekly",
        1,
    )
    assert saved.shared_with_roles == (Role.VIEWER, Role.CONTENT_MANAGER)
    assert saved.shared_with_keys == ("key_b", "key_a")
    assert await service.get(saved.id, OWNER) == saved

    [entry] = await metadata.audit_entries()
    assert {k: v for k, v in entry.items() if k != "at"} == {
        "actor_key_id": "key_owner",
        "action": "saved_query.create",
        "target": saved.id,
        "details": {"name": "Views to plays", "kind": "funnel"},
    }


@pytest.mark.parametrize(
    ("sent", "field", "code"),
    [
        ({"name": ""}, "name", "invalid_value"),
        ({"name": "   "}, "name", "invalid_value"),
        ({"name": "x" * 201}, "name", "invalid_value"),
        ({"name": 7}, "name", "invalid_value"),
        ({"kind": "cohort"}, "kind", "invalid_value"),
        ({"definition": [1, 2]}, "definition", "invalid_value"),
        ({"definition": {"steps": [{"event_type": "content_view"}]}}, "definition.steps", "invalid_value"),
        ({"definition": {"steps": [{"event_type": "a"}, {"event_type": ""}]}}, "definition.steps.1.event_type", None),
        ({"definition": {**FUNNEL, "colour": "red"}}, "definition.colour", "unknown_field"),
        ({"definition": {**FUNNEL, "window_days": 365}}, "definition.window_days", "invalid_value"),
        ({"kind": "query", "definition": {"metric": "likes"}}, "definition.metric", "invalid_value"),
        ({"description": "d" * 2001}, "description", "invalid_value"),
        ({"shared_with_roles": ["viewer", "owner"]}, "shared_with_roles.1", "invalid_value"),
        ({"shared_with_keys": [f"key_{n}" for n in range(101)]}, "shared_with_keys", "invalid_value"),
        ({"shared_with_keys": [""]}, "shared_with_keys.0", "invalid_value"),
        ({"owner": "someone"}, "owner", "unknown_field"),
        # PostgreSQL cannot store U+0000: refused up front, naming the field.
        ({"name": "a\x00b"}, "name", "invalid_value"),
        ({"shared_with_keys": ["key\x00"]}, "shared_with_keys.0", "invalid_value"),
        ({"definition": {**FUNNEL, "note\x00": 1}}, "definition", "invalid_value"),
        ({"definition": {"steps": [{"event_type": "a"}, {"event_type": "b\x00"}]}}, "definition", "invalid_value"),
    ],
)
async def test_create_refuses_a_bad_body_naming_the_field(service, metadata, sent, field, code):
    with pytest.raises(ValidationFailed) as exc:
        await service.create(body(**sent), OWNER)
    assert exc.value.errors[0].field == field
    if code is not None:
        assert exc.value.errors[0].code == code
    assert exc.value.message.startswith(f"{field}: ")
    assert (await service.list(ADMIN)).total == 0
    assert await metadata.audit_entries() == []


async def test_create_names_missing_fields(service):
    with pytest.raises(ValidationFailed) as exc:
        await service.create({"name": "q"}, OWNER)
    assert fields_of(exc.value) == ["kind", "definition"]
    assert [e.code for e in exc.value.errors] == ["missing_field", "missing_field"]
    with pytest.raises(ValidationFailed) as exc:
        await service.create(["not", "an", "object"], OWNER)
    assert (exc.value.errors[0].field, exc.value.errors[0].code) == ("(body)", "not_an_object")


async def test_an_unknown_kind_lists_the_known_ones(service):
    with pytest.raises(ValidationFailed) as exc:
        await service.create(body(kind="cohort"), OWNER)
    assert exc.value.errors[0].message == "unknown kind 'cohort'; known kinds: funnel, paths, query"


async def test_a_kind_validator_raising_invalid_request_is_named_inside_the_definition(service):
    with pytest.raises(InvalidRequest) as exc:
        await service.create(body(kind="paths", definition={"depth": 2}), OWNER)
    assert exc.value.details == {"field": "definition.start"}
    assert exc.value.message == "definition: start: give the event type paths start from"
    # Every field the details name is inside the definition.
    with pytest.raises(InvalidRequest) as exc:
        await service.create(body(kind="paths", definition={"start": "search", "depth": "deep"}), OWNER)
    assert exc.value.details == {
        "field": "definition.depth",
        "errors": [{"field": "definition.depth", "message": "must be a whole number"}],
    }
    saved = await service.create(body(kind="paths", definition={"start": "search"}), OWNER)
    assert saved.definition == {"start": "search", "depth": 3}


async def test_a_definition_over_the_size_limit_is_refused(service):
    steps = [{"event_type": "e" * 100} for _ in range(MAX_DEFINITION_BYTES // 100)]
    with pytest.raises(ValidationFailed) as exc:
        await service.create(body(definition={"steps": steps}), OWNER)
    assert (exc.value.errors[0].field, exc.value.errors[0].code) == ("definition", "too_large")


async def test_a_name_taken_by_the_same_owner_is_a_conflict(service):
    await service.create(body(), OWNER)
    with pytest.raises(Conflict) as exc:
        await service.create(body(kind="paths", definition={"start": "search"}), OWNER)
    assert exc.value.details == {"field": "name"}
    assert (await service.create(body(), STRANGER)).owner_key_id == "key_stranger"


# --- who may do what ----------------------------------------------------------------------------

READERS = [OWNER, ADMIN, ROLE_READER, KEY_READER]


async def test_owner_admin_and_those_it_is_shared_with_read_and_run(service):
    saved = await shared(service)
    for principal in READERS:
        assert await service.get(saved.id, principal) == saved
        assert await service.find(saved.id, principal) == saved
        assert await service.resolve(saved.id, principal) == ("funnel", {**FUNNEL, "window_days": 7})
        run = await service.run(saved.id, principal)
        assert run.saved_query == saved
        assert run.result == {"steps": ["content_view", "content_play"], "asked_by": principal.key_id}
        assert saved.id in [s.id for s in (await service.list(principal)).items]


async def test_a_stranger_gets_not_found_as_for_a_missing_id(service):
    saved = await shared(service)
    missing = "sq_000000000000000000000000"
    for query_id in (saved.id, missing):
        assert await service.find(query_id, STRANGER) is None
        for call in (
            service.get(query_id, STRANGER),
            service.resolve(query_id, STRANGER),
            service.run(query_id, STRANGER),
            service.update(query_id, {"version": 1, "name": "mine now"}, STRANGER),
            service.delete(query_id, STRANGER),
        ):
            with pytest.raises(NotFound) as exc:
                await call
            assert exc.value.message == f"saved query {query_id!r} does not exist"
    assert (await service.list(STRANGER)).items == []
    assert (await service.get(saved.id, OWNER)).version == 1


@pytest.mark.parametrize("reader", [ROLE_READER, KEY_READER], ids=["shared role", "shared key"])
async def test_those_it_is_shared_with_may_not_change_or_delete(service, metadata, reader):
    saved = await shared(service)
    with pytest.raises(Forbidden) as exc:
        await service.update(saved.id, {"version": 1, "shared_with_keys": [reader.key_id, "key_x"]}, reader)
    assert exc.value.message == f"only the owner of saved query {saved.id!r} or an admin may change, share or delete it"
    with pytest.raises(Forbidden):
        await service.delete(saved.id, reader)
    assert await service.get(saved.id, OWNER) == saved
    assert [e["action"] for e in await metadata.audit_entries()] == ["saved_query.create"]


async def test_an_admin_changes_and_deletes_what_others_own(service, metadata):
    saved = await shared(service)
    changed = await service.update(saved.id, {"version": 1, "shared_with_roles": []}, ADMIN)
    assert (changed.owner_key_id, changed.shared_with_roles, changed.version) == ("key_owner", (), 2)
    # No longer shared with viewers.
    with pytest.raises(NotFound):
        await service.get(saved.id, ROLE_READER)
    assert await service.get(saved.id, KEY_READER) == changed
    await service.delete(saved.id, ADMIN)
    with pytest.raises(NotFound):
        await service.get(saved.id, OWNER)
    actions = [
        (e["action"], e["actor_key_id"], e["details"].get("owner_key_id")) for e in await metadata.audit_entries()
    ]
    assert actions == [
        ("saved_query.delete", "key_admin", "key_owner"),
        ("saved_query.update", "key_admin", "key_owner"),
        ("saved_query.create", "key_owner", None),
    ]


# --- update and delete ------------------------------------------------------------------------


async def test_update_revalidates_the_definition_with_the_stored_kind_and_audits(service, metadata):
    saved = await service.create(body(), OWNER)
    new_definition = {"steps": [{"event_type": "search"}, {"event_type": "content_view"}], "window_days": 14}
    updated = await service.update(
        saved.id, {"version": 1, "definition": new_definition, "description": "from search"}, OWNER
    )
    assert (updated.definition, updated.description, updated.name, updated.version) == (
        new_definition,
        "from search",
        "Views to plays",
        2,
    )
    with pytest.raises(ValidationFailed) as exc:
        await service.update(saved.id, {"version": 2, "definition": {"start": "search"}}, OWNER)
    assert fields_of(exc.value) == ["definition.steps", "definition.start"]

    latest = (await metadata.audit_entries())[0]
    assert (latest["action"], latest["target"]) == ("saved_query.update", saved.id)
    assert latest["details"] == {"changed": ["description", "definition"], "version": 2, "owner_key_id": "key_owner"}


async def test_update_with_a_stale_version_is_a_conflict(service, metadata):
    saved = await service.create(body(), OWNER)
    await service.update(saved.id, {"version": 1, "name": "first"}, OWNER)
    with pytest.raises(Conflict) as exc:
        await service.update(saved.id, {"version": 1, "name": "second"}, OWNER)
    assert exc.value.details == {"field": "version", "current_version": 2}
    assert (await service.get(saved.id, OWNER)).name == "first"
    assert [e["action"] for e in await metadata.audit_entries()] == ["saved_query.update", "saved_query.create"]


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ({"name": "n"}, "version"),
        ({"version": "1", "name": "n"}, "version"),
        ({"version": 0, "name": "n"}, "version"),
        ({"version": 2**31, "name": "n"}, "version"),
        ({"version": 1}, "(body)"),
        ({"version": 1, "name": None}, "(body)"),
        ({"version": 1, "kind": "paths"}, "kind"),
        ({"version": 1, "owner_key_id": "key_me"}, "owner_key_id"),
        ({"version": 1, "name": ""}, "name"),
        ({"version": 1, "shared_with_roles": ["root"]}, "shared_with_roles.0"),
    ],
)
async def test_update_refuses_a_bad_body_naming_the_field(service, sent, field):
    saved = await service.create(body(), OWNER)
    with pytest.raises(ValidationFailed) as exc:
        await service.update(saved.id, sent, OWNER)
    assert exc.value.errors[0].field == field
    assert await service.get(saved.id, OWNER) == saved


async def test_rename_onto_a_taken_name_is_a_conflict(service):
    await service.create(body(name="taken"), OWNER)
    saved = await service.create(body(name="free"), OWNER)
    with pytest.raises(Conflict) as exc:
        await service.update(saved.id, {"version": 1, "name": "taken"}, OWNER)
    assert exc.value.details == {"field": "name"}


async def test_delete_audits_and_checks_the_version_when_given(service, metadata):
    saved = await service.create(body(), OWNER)
    await service.update(saved.id, {"version": 1, "name": "renamed"}, OWNER)
    with pytest.raises(Conflict):
        await service.delete(saved.id, OWNER, version=1)
    deleted = await service.delete(saved.id, OWNER, version=2)
    assert (deleted.id, deleted.name) == (saved.id, "renamed")
    latest = (await metadata.audit_entries())[0]
    assert {k: v for k, v in latest.items() if k != "at"} == {
        "actor_key_id": "key_owner",
        "action": "saved_query.delete",
        "target": saved.id,
        "details": {"name": "renamed", "kind": "funnel", "owner_key_id": "key_owner"},
    }


# --- list and run -----------------------------------------------------------------------------


async def test_list_by_kind_and_its_checks(service):
    funnel = await service.create(body(), OWNER)
    paths = await service.create(body(name="p", kind="paths", definition={"start": "search"}), OWNER)
    assert [s.id for s in (await service.list(OWNER)).items] == [paths.id, funnel.id]
    assert [s.id for s in (await service.list(OWNER, kind="funnel")).items] == [funnel.id]
    assert (await service.list(OWNER, kind="query")).total == 0
    with pytest.raises(InvalidRequest) as exc:
        await service.list(OWNER, kind="cohort")
    assert (exc.value.details, exc.value.status) == ({"field": "kind"}, 400)
    assert exc.value.message == "unknown kind 'cohort'; known kinds: funnel, paths, query"
    for limit, offset, field in ((0, 0, "limit"), (201, 0, "limit"), (10, -1, "offset"), (10, 10**20, "offset")):
        with pytest.raises(InvalidRequest) as invalid:
            await service.list(OWNER, limit=limit, offset=offset)
        assert invalid.value.details == {"field": field}


async def test_ids_and_versions_no_row_can_have(service):
    saved = await service.create(body(), OWNER)
    for query_id in ("sq_\x00", "sq_" + "0" * 200):
        assert await service.find(query_id, ADMIN) is None
        with pytest.raises(NotFound):
            await service.delete(query_id, ADMIN)
    with pytest.raises(InvalidRequest) as exc:
        await service.delete(saved.id, OWNER, version=2**40)
    assert exc.value.details == {"field": "version"}
    assert await service.get(saved.id, OWNER) == saved


async def test_a_kind_without_a_runner_cannot_be_run_yet(service):
    saved = await service.create(body(kind="paths", definition={"start": "search"}), OWNER)
    with pytest.raises(InvalidRequest) as exc:
        await service.run(saved.id, OWNER)
    assert exc.value.message == "kind 'paths' cannot be run yet"
    assert exc.value.details == {"field": "kind"}
