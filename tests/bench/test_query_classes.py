"""Every GraphQL query the query benchmark times is valid against the service's schema: an invalid
one answers 200 with "errors" at once, which would be timed as if it were the query."""

from __future__ import annotations

import pytest
from graphql import parse, validate

from bench import bench_queries
from graphql_schema.schema import schema

GRAPHQL_CLASSES = [qc for qc in bench_queries.QUERY_CLASSES if qc.graphql]


def test_some_classes_are_timed_over_graphql() -> None:
    assert {"events.by_user", "events.get", "content.analytics"} <= {qc.name for qc in GRAPHQL_CLASSES}


@pytest.mark.parametrize("query_class", GRAPHQL_CLASSES, ids=lambda qc: qc.name)
def test_the_graphql_query_of_each_class_validates(query_class: bench_queries.QueryClass) -> None:
    query, _ = query_class.graphql
    assert validate(schema._schema, parse(query)) == []
