"""A report document as versioned JSON, and the JSON Schema that describes it.

The JSON is the document itself (semantic/report_document.py): KPIs, typed tables and charts, with dates
as ISO 8601 text (``2026-03-02``, ``2026-03-09T06:00:12Z``) and numbers as JSON numbers. Its
``"version"`` is DOCUMENT_VERSION, which changes only on an incompatible change (a field removed,
renamed or retyped); new fields may appear within a version, so readers ignore fields they do not know.
Reading the JSON back with ``ReportDocument.model_validate_json`` gives the same document.
"""

from __future__ import annotations

from typing import Any

import orjson

from semantic.report_document import ReportDocument

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def render_json(document: ReportDocument) -> bytes:
    """The document as UTF-8 JSON bytes."""
    return orjson.dumps(document.model_dump(mode="json"))


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of what render_json writes, for DOCUMENT_VERSION."""
    schema = ReportDocument.model_json_schema(mode="serialization")
    # The version is always written, and is what a reader checks first.
    required = schema.setdefault("required", [])
    if "version" not in required:
        required.insert(0, "version")
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}
