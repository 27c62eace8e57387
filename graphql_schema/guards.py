"""GraphQL guards: cost limits that fragments cannot hide, and masking of unexpected errors.

Cost limits refuse a query before it runs: too deep, too many aliases, or too many fields once
every fragment spread is written out. In production, errors nobody anticipated reach the client as
a generic message, while the service's own errors (``AnalyticsError``: bad input, forbidden, not
found, ...) keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import AddValidationRules, MaskErrors

from core.errors import AnalyticsError


@dataclass(frozen=True, slots=True)
class SelectionCost:
    """What a selection set weighs once its fragment spreads are written out in place."""

    depth: int = 0  # nested fields with a selection of their own, along the deepest path
    aliases: int = 0
    fields: int = 0

    def beside(self, other: SelectionCost) -> SelectionCost:
        return SelectionCost(max(self.depth, other.depth), self.aliases + other.aliases, self.fields + other.fields)


class SelectionCosts:
    """Costs of selection sets, each fragment measured once however often it is spread.

    Strawberry's depth and alias limiters walk a fragment again at every spread: a chain of
    fragments each spreading the next twice makes that walk exponential in the chain's length
    (seconds at 20 links, hours at 40). Here a fragment's cost is computed once and reused.
    Unknown fragments and cycles weigh nothing: graphql-core's own rules refuse those documents.
    """

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self._fragments = fragments
        self._known: dict[str, SelectionCost] = {}
        self._open: set[str] = set()

    def of(self, selection_set: SelectionSetNode | None) -> SelectionCost:
        total = SelectionCost()
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total = total.beside(self._field(selection))
            elif isinstance(selection, InlineFragmentNode):
                total = total.beside(self.of(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                total = total.beside(self._fragment(selection.name.value))
        return total

    def _field(self, field: FieldNode) -> SelectionCost:
        inner = self.of(field.selection_set)
        # Introspection (``__schema``, ``__type``) is as deep as the type system, not as the data:
        # its depth is not counted, as in strawberry's limiter, so GraphiQL's introspection works.
        introspection = field.name.value.startswith("__")
        depth = 0 if introspection or field.selection_set is None else 1 + inner.depth
        return SelectionCost(depth, inner.aliases + (1 if field.alias else 0), inner.fields + 1)

    def _fragment(self, name: str) -> SelectionCost:
        if name in self._known:
            return self._known[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in self._open:
            return SelectionCost()
        self._open.add(name)
        cost = self.of(fragment.selection_set)
        self._open.discard(name)
        self._known[name] = cost
        return cost


def _limit_error(message: str, limit: str, allowed: int, found: int, node: Any) -> GraphQLError:
    details = {"limit": limit, "allowed": allowed, "found": found}
    return GraphQLError(message, node, extensions={"code": "invalid_request", "status": 400, "details": details})


def operation_limits_rule(max_depth: int, max_aliases: int, max_fields: int) -> type[ValidationRule]:
    class OperationLimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            definitions = context.document.definitions
            fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
            costs = SelectionCosts(fragments)
            for operation in (d for d in definitions if isinstance(d, OperationDefinitionNode)):
                self._check(operation, costs.of(operation.selection_set))

        def _check(self, operation: OperationDefinitionNode, cost: SelectionCost) -> None:
            name = operation.name.value if operation.name else "anonymous"
            if cost.depth > max_depth:
                message = f"'{name}' exceeds maximum operation depth of {max_depth}"
                self.report_error(_limit_error(message, "depth", max_depth, cost.depth, operation))
            if cost.aliases > max_aliases:
                message = f"{cost.aliases} aliases found. Allowed: {max_aliases}"
                self.report_error(_limit_error(message, "aliases", max_aliases, cost.aliases, operation))
            if cost.fields > max_fields:
                message = (
                    f"'{name}' selects {cost.fields} fields once its fragments are written out; "
                    f"the limit is {max_fields}"
                )
                self.report_error(_limit_error(message, "fields", max_fields, cost.fields, operation))

    return OperationLimitsRule


class OperationLimits(AddValidationRules):
    """Depth, alias and expanded-field limits that count every fragment spread, checked before the
    operation runs."""

    def __init__(self, max_depth: int, max_aliases: int, max_fields: int) -> None:
        super().__init__([operation_limits_rule(max_depth, max_aliases, max_fields)])


def is_unexpected(error: GraphQLError) -> bool:
    """An error raised by a resolver that no part of the service anticipated (a bug, a driver fault).

    The service's own errors (AnalyticsError, and the GraphQL errors made from them) and errors in
    the document or variables the client sent are expected: they stay as they are.
    """
    cause = error.original_error
    while isinstance(cause, GraphQLError) and cause.original_error is not None:
        cause = cause.original_error
    if cause is None or isinstance(cause, AnalyticsError | GraphQLError):
        return False
    # Before execution (no path) an error is about the client's document or variables.
    return error.path is not None


class MaskUnexpectedErrors(MaskErrors):
    """Unexpected errors as one generic message with the REST code for them (internal_error, 500):
    their own message may name hosts, queries or files. Strawberry logs them unmasked beforehand."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Unexpected error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return GraphQLError(
            self.error_message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "internal_error", "status": 500},
        )
