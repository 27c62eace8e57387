"""The committed SDL (schema.graphql) is the schema the code builds: an API change is a visible diff."""

from __future__ import annotations

from pathlib import Path

from graphql_schema.schema import schema

SDL = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_sdl_matches_the_schema() -> None:
    committed = SDL.read_text(encoding="utf-8") if SDL.exists() else ""
    # `strawberry export-schema` writes schema.as_str() and a final newline.
    assert committed == schema.as_str() + "\n", (
        "schema.graphql differs from the schema the code builds; regenerate it with `make schema` "
        "(.venv/bin/strawberry export-schema graphql_schema.schema:schema --output schema.graphql) "
        "and commit the diff"
    )
