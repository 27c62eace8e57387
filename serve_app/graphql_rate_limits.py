"""GraphQL requests under the rate limits (semantic/rate_limits.py), charged before they run.

A GraphQL request over HTTP draws one token from the bucket of each route class its operation's
top-level fields belong to: ``trackEvent`` and ``trackEvents`` are ingest like ``POST /events``,
reads are queries like the REST reads. A field's class follows from the permission it declares, the
same table the REST routes use. A request whose operation cannot be read here (malformed, ambiguous,
not JSON) counts as a query; GraphQL then refuses it on its own terms.
"""

from __future__ import annotations

from functools import lru_cache

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)
from starlette.requests import HTTPConnection, Request

from core.access import Principal
from graphql_schema.permissions import RolePermission
from graphql_schema.schema import MAX_TOKENS, schema
from semantic.rate_limits import RateLimiter, RouteClass, route_class_of

QUERY_ONLY = frozenset({RouteClass.QUERY})
# Clients send the same operation text with new variables, so classifications are cached; a longer
# text (events written inline) is classified afresh rather than kept.
_CACHED_QUERY_CHARS = 4096


def _root_field_classes() -> dict[OperationType, dict[str, RouteClass]]:
    roots = {
        OperationType.QUERY: "Query",
        OperationType.MUTATION: "Mutation",
        OperationType.SUBSCRIPTION: "Subscription",
    }
    classes: dict[OperationType, dict[str, RouteClass]] = {}
    for operation, type_name in roots.items():
        definition = schema.get_type_by_name(type_name)
        fields = getattr(definition, "fields", [])
        classes[operation] = {
            schema.config.name_converter.get_graphql_name(field): route_class_of(permission.permission)
            for field in fields
            for permission in field.permission_classes
            if issubclass(permission, RolePermission)
        }
    return classes


_FIELD_CLASSES = _root_field_classes()


async def admit_graphql_request(request: HTTPConnection, principal: Principal, limiter: RateLimiter) -> None:
    """Raise RateLimited when ``principal`` is over the limit of a route class the request belongs to."""
    if not limiter.enabled:
        return
    for route_class in sorted(await route_classes_of_request(request)):
        await limiter.admit(principal, route_class)


async def route_classes_of_request(request: HTTPConnection) -> frozenset[RouteClass]:
    # A GET carries queries only (GraphQL refuses mutations over GET).
    if not isinstance(request, Request) or request.method != "POST":
        return QUERY_ONLY
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return QUERY_ONLY
    classes: set[RouteClass] = set()
    for operation in payload if isinstance(payload, list) else [payload]:
        if isinstance(operation, dict) and isinstance(operation.get("query"), str):
            name = operation.get("operationName")
            classes |= operation_route_classes(operation["query"], name if isinstance(name, str) else None)
    return frozenset(classes) or QUERY_ONLY


def operation_route_classes(query: str, operation_name: str | None) -> frozenset[RouteClass]:
    """The route classes of the top-level fields of the operation ``query`` runs."""
    if len(query) <= _CACHED_QUERY_CHARS:
        return _cached_route_classes(query, operation_name)
    return _route_classes(query, operation_name)


@lru_cache(maxsize=1024)
def _cached_route_classes(query: str, operation_name: str | None) -> frozenset[RouteClass]:
    return _route_classes(query, operation_name)


def _route_classes(query: str, operation_name: str | None) -> frozenset[RouteClass]:
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return QUERY_ONLY
    operation = _chosen_operation(document, operation_name)
    if operation is None:
        return QUERY_ONLY
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    field_classes = _FIELD_CLASSES[operation.operation]
    classes: set[RouteClass] = set()
    for name in _top_level_field_names(operation.selection_set, fragments, set()):
        route_class = field_classes.get(name)
        if route_class is not None:
            classes.add(route_class)
    return frozenset(classes) or QUERY_ONLY


def _chosen_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    return operations[0] if len(operations) == 1 else None


def _top_level_field_names(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], spread: set[str]
) -> list[str]:
    """The fields selected at this level, through inline fragments and fragment spreads (each once)."""
    names: list[str] = []
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            names.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            names.extend(_top_level_field_names(selection.selection_set, fragments, spread))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in spread:
            fragment = fragments.get(selection.name.value)
            spread.add(selection.name.value)
            if fragment is not None:
                names.extend(_top_level_field_names(fragment.selection_set, fragments, spread))
    return names
