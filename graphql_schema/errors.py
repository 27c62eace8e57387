"""Domain errors as GraphQL errors: the same code and message as REST, in ``extensions``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from graphql import GraphQLError

from core.errors import AnalyticsError

P = ParamSpec("P")
R = TypeVar("R")


def to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def as_graphql_error(exc: AnalyticsError) -> GraphQLError:
    extensions: dict[str, Any] = {"code": exc.code, "status": exc.status}
    if exc.details is not None:
        extensions["details"] = exc.details
    return GraphQLError(exc.message, extensions=extensions, original_error=exc)


@contextmanager
def graphql_errors() -> Iterator[None]:
    """Re-raise a domain error of the block as its GraphQL error (resolvers, subscriptions, permissions)."""
    try:
        yield
    except AnalyticsError as exc:
        raise as_graphql_error(exc) from exc


def maps_errors(resolver: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(resolver)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with graphql_errors():
            return await resolver(*args, **kwargs)

    return wrapper
