"""Saved query definitions: the rules REST and GraphQL both apply when saving, sharing, reading and running.

A saved query is a named definition of one kind (``query``, ``funnel``, ``retention``, ``paths``,
``stickiness``: whatever the registry of ``SavedKind`` holds). The kind's ``validate`` checks and
normalizes the definition; its ``run``, when there is one, answers it.

Who may do what:

- anyone who may read analytics saves queries; the caller's key owns what it saves;
- the owner and admins read, run, change, share and delete it;
- keys whose role or key id it is shared with read and run it, and get 403 if they try to change it;
- everyone else gets 404, the same answer as for an id that does not exist, so ids cannot be
  probed for existence.

Creates, updates and deletes are written to the audit log (``saved_query.create``/``update``/``delete``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError

from core.access import Principal, Role
from core.errors import FieldError, Forbidden, InvalidRequest, ValidationFailed
from storage.metadata import MetadataStore
from storage.saved_queries import (
    NewSavedQuery,
    SavedQuery,
    SavedQueryChanges,
    SavedQueryPage,
    SavedQueryRepository,
    not_found,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_SHARED_KEYS = 100
MAX_DEFINITION_BYTES = 32 * 1024
MAX_OFFSET = 1_000_000
# Versions and ids are compared in PostgreSQL: past these they could never match a stored row.
MAX_VERSION = 2**31 - 1
MAX_ID_LENGTH = 100
_UPDATABLE = ("name", "description", "definition", "shared_with_roles", "shared_with_keys")

# Answers a definition the kind has validated, for the caller who asked; a pydantic model, a dataclass
# or plain JSON data.
SavedQueryRunner = Callable[[dict[str, Any], Principal], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class SavedKind:
    """One kind of saved query: how its definition is checked, and (optionally) how it is answered.

    ``validate`` returns the normalized definition (stored as given back) or raises
    ValidationFailed/InvalidRequest (or pydantic's ValidationError) naming the field inside the
    definition; the service reports it as ``definition.<field>``.
    """

    validate: Callable[[dict[str, Any]], dict[str, Any]]
    run: SavedQueryRunner | None = None

    @classmethod
    def from_model(cls, model: type[BaseModel], run: SavedQueryRunner | None = None) -> SavedKind:
        """A kind whose definition is ``model``: stored as its JSON dump, defaults filled in."""

        def validate(definition: dict[str, Any]) -> dict[str, Any]:
            return model.model_validate(definition).model_dump(mode="json")

        return cls(validate=validate, run=run)


class AuditLog(Protocol):
    """Where changes are recorded (storage.metadata.MetadataStore.audit)."""

    async def audit(
        self, action: str, *, actor_key_id: str | None, target: str | None = None, details: dict[str, Any] | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class SavedQueryRun:
    saved_query: SavedQuery
    result: Any


# ---- the bodies both transports send ------------------------------------------------------------


def _without_nul(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold U+0000: refused here rather than failing in the database.
    if "\x00" in text:
        raise ValueError("must not contain the NUL character (U+0000)")
    return text


NoNul = AfterValidator(_without_nul)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), NoNul]
KeyId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH), NoNul]
KindName = Annotated[str, StringConstraints(min_length=1, max_length=50), NoNul]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def parse(cls, body: Any) -> Any:
        if not isinstance(body, dict):
            raise ValidationFailed([FieldError(field="(body)", message="must be a JSON object", code="not_an_object")])
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise ValidationFailed(field_errors(exc)) from exc


class SavedQueryCreate(_Body):
    name: Name
    kind: KindName
    definition: dict[str, Any]
    description: Description = ""
    shared_with_roles: list[Role] = Field(default_factory=list, max_length=len(Role))
    shared_with_keys: list[KeyId] = Field(default_factory=list, max_length=MAX_SHARED_KEYS)


class SavedQueryUpdate(_Body):
    """Any of the fields; those left out (or null) keep their value. ``version`` is the one read."""

    version: StrictInt = Field(ge=1, le=MAX_VERSION)
    name: Name | None = None
    description: Description | None = None
    definition: dict[str, Any] | None = None
    shared_with_roles: list[Role] | None = Field(default=None, max_length=len(Role))
    shared_with_keys: list[KeyId] | None = Field(default=None, max_length=MAX_SHARED_KEYS)

    @classmethod
    def parse(cls, body: Any) -> SavedQueryUpdate:
        if isinstance(body, dict) and "kind" in body:
            raise ValidationFailed(
                [FieldError(field="kind", message="cannot be changed; save a new query of the other kind")]
            )
        update: SavedQueryUpdate = super().parse(body)
        if all(getattr(update, name) is None for name in _UPDATABLE):
            raise ValidationFailed(
                [
                    FieldError(
                        field="(body)", message="give at least one of " + ", ".join(_UPDATABLE), code="missing_field"
                    )
                ]
            )
        return update


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(p) for p in err["loc"])
        field = ".".join(part for part in (prefix, name) if part) or "(body)"
        code = {"extra_forbidden": "unknown_field", "missing": "missing_field"}.get(err["type"], "invalid_value")
        errors.append(FieldError(field=field, message=err["msg"], code=code))
    return errors


def _unique(values: list[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


# ---- the service ----------------------------------------------------------------------------------


class SavedQueryService:
    def __init__(self, repository: SavedQueryRepository, audit_log: AuditLog, kinds: Mapping[str, SavedKind]) -> None:
        self._repository = repository
        self._audit_log = audit_log
        self._kinds = dict(kinds)

    @classmethod
    def build(cls, metadata: MetadataStore, kinds: Mapping[str, SavedKind]) -> SavedQueryService:
        return cls(SavedQueryRepository(metadata.pool), metadata, kinds)

    @property
    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    async def create(self, body: Any, principal: Principal) -> SavedQuery:
        spec = SavedQueryCreate.parse(body)
        kind = self._kind(spec.kind)
        new = NewSavedQuery(
            name=spec.name,
            kind=spec.kind,
            definition=self._validated_definition(kind, spec.definition),
            description=spec.description,
            shared_with_roles=_unique(spec.shared_with_roles),
            shared_with_keys=_unique(spec.shared_with_keys),
        )
        saved = await self._repository.create(principal, new)
        await self._audit_log.audit(
            "saved_query.create",
            actor_key_id=principal.key_id,
            target=saved.id,
            details={"name": saved.name, "kind": saved.kind},
        )
        return saved

    async def find(self, query_id: str, principal: Principal) -> SavedQuery | None:
        """The saved query if ``principal`` may see it; None as well when it does not exist."""
        if len(query_id) > MAX_ID_LENGTH or "\x00" in query_id:
            return None  # no stored id looks like this
        saved = await self._repository.get(query_id)
        return saved if saved is not None and saved.visible_to(principal) else None

    async def get(self, query_id: str, principal: Principal) -> SavedQuery:
        saved = await self.find(query_id, principal)
        if saved is None:
            raise not_found(query_id)
        return saved

    async def list(
        self, principal: Principal, *, kind: str | None = None, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> SavedQueryPage:
        if kind is not None and kind not in self._kinds:
            # A query parameter, so a 400 as for limit and offset (in a body, an unknown kind is a 422).
            raise InvalidRequest(self._unknown_kind(kind), details={"field": "kind"})
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}", details={"field": "limit"})
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidRequest(f"offset must be between 0 and {MAX_OFFSET}", details={"field": "offset"})
        return await self._repository.list_visible(principal, kind=kind, limit=limit, offset=offset)

    async def update(self, query_id: str, body: Any, principal: Principal) -> SavedQuery:
        current = await self._managed(query_id, principal)
        spec = SavedQueryUpdate.parse(body)
        definition = None
        if spec.definition is not None:
            definition = self._validated_definition(self._kind(current.kind), spec.definition)
        changes = SavedQueryChanges(
            name=spec.name,
            description=spec.description,
            definition=definition,
            shared_with_roles=None if spec.shared_with_roles is None else _unique(spec.shared_with_roles),
            shared_with_keys=None if spec.shared_with_keys is None else _unique(spec.shared_with_keys),
        )
        saved = await self._repository.update(query_id, expected_version=spec.version, changes=changes)
        await self._audit_log.audit(
            "saved_query.update",
            actor_key_id=principal.key_id,
            target=saved.id,
            details={
                "changed": [name for name in _UPDATABLE if getattr(spec, name) is not None],
                "version": saved.version,
                "owner_key_id": saved.owner_key_id,
            },
        )
        return saved

    async def delete(self, query_id: str, principal: Principal, *, version: int | None = None) -> SavedQuery:
        """Delete (only if still at ``version``, when given); returns what was deleted."""
        if version is not None and not 1 <= version <= MAX_VERSION:
            raise InvalidRequest(f"version must be between 1 and {MAX_VERSION}", details={"field": "version"})
        await self._managed(query_id, principal)
        deleted = await self._repository.delete(query_id, expected_version=version)
        await self._audit_log.audit(
            "saved_query.delete",
            actor_key_id=principal.key_id,
            target=deleted.id,
            details={"name": deleted.name, "kind": deleted.kind, "owner_key_id": deleted.owner_key_id},
        )
        return deleted

    async def resolve(self, query_id: str, principal: Principal) -> tuple[str, dict[str, Any]]:
        """The kind and definition of a saved query ``principal`` may run (reports, dashboards)."""
        saved = await self.get(query_id, principal)
        return saved.kind, saved.definition

    async def run(self, query_id: str, principal: Principal) -> SavedQueryRun:
        return await self.run_for(query_id, principal, principal)

    async def run_for(self, query_id: str, reader: Principal, principal: Principal) -> SavedQueryRun:
        """Run a saved query that ``reader`` may see (a dashboard's owner, who put it on a widget), computed
        for ``principal``: with its role and content scope."""
        saved = await self.get(query_id, reader)
        kind = self._kinds.get(saved.kind)
        if kind is None or kind.run is None:
            raise InvalidRequest(f"kind {saved.kind!r} cannot be run yet", details={"field": "kind"})
        return SavedQueryRun(saved_query=saved, result=await kind.run(saved.definition, principal))

    # ---- rules ------------------------------------------------------------------------------------

    async def _managed(self, query_id: str, principal: Principal) -> SavedQuery:
        saved = await self.get(query_id, principal)
        if not saved.managed_by(principal):
            # The caller can see it (it is shared with them), so saying it exists reveals nothing.
            raise Forbidden(f"only the owner of saved query {query_id!r} or an admin may change, share or delete it")
        return saved

    def _kind(self, name: str) -> SavedKind:
        kind = self._kinds.get(name)
        if kind is None:
            raise ValidationFailed([FieldError(field="kind", message=self._unknown_kind(name))])
        return kind

    def _unknown_kind(self, name: str) -> str:
        return f"unknown kind {name!r}; known kinds: {', '.join(self.kinds) or '(none)'}"

    def _validated_definition(self, kind: SavedKind, definition: dict[str, Any]) -> dict[str, Any]:
        if _holds_nul(definition):
            raise ValidationFailed(
                [FieldError(field="definition", message="must not contain the NUL character (U+0000)")]
            )
        size = len(json.dumps(definition, separators=(",", ":")).encode())
        if size > MAX_DEFINITION_BYTES:
            raise ValidationFailed(
                [
                    FieldError(
                        field="definition",
                        message=f"is {size} bytes as JSON; the limit is {MAX_DEFINITION_BYTES} bytes",
                        code="too_large",
                    )
                ]
            )
        try:
            return kind.validate(definition)
        except ValidationError as exc:
            raise ValidationFailed(field_errors(exc, prefix="definition")) from exc
        except ValidationFailed as exc:
            raise ValidationFailed(
                [dataclasses.replace(e, field=_inside_definition(e.field)) for e in exc.errors]
            ) from exc
        except InvalidRequest as exc:
            raise InvalidRequest(f"definition: {exc.message}", details=_details_inside_definition(exc.details)) from exc


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _details_inside_definition(details: Any) -> Any:
    """InvalidRequest details with their field names (``field``, and each of ``errors``) under ``definition``."""
    if not isinstance(details, dict):
        return details
    out = dict(details)
    if isinstance(out.get("field"), str):
        out["field"] = _inside_definition(out["field"])
    if isinstance(out.get("errors"), list):
        out["errors"] = [
            {**e, "field": _inside_definition(e["field"])}
            if isinstance(e, dict) and isinstance(e.get("field"), str)
            else e
            for e in out["errors"]
        ]
    return out


def _inside_definition(field: str) -> str:
    return "definition" if field in ("", "(body)") else f"definition.{field}"
