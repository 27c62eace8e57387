"""The JSON document: it reads back as the same document, carries its version and obeys its schema."""

from __future__ import annotations

from datetime import date, datetime

import jsonschema
import orjson
import pytest

from renderers.json_document import json_schema, render_json
from semantic.report_document import DOCUMENT_VERSION, ColumnType, ReportDocument
from tests.renderers.sample_documents import arabic_document, full_document, one_table_document

SAMPLES = [full_document, one_table_document, arabic_document]


@pytest.mark.parametrize("make", SAMPLES)
def test_round_trip_gives_the_same_document(make: object) -> None:
    document: ReportDocument = make()  # type: ignore[operator]
    assert ReportDocument.model_validate_json(render_json(document)) == document


def test_version_is_written() -> None:
    parsed = orjson.loads(render_json(full_document()))
    assert parsed["version"] == DOCUMENT_VERSION


def test_numbers_are_numbers_and_dates_iso_text() -> None:
    document = full_document()
    parsed = orjson.loads(render_json(document))
    assert parsed["period"]["start_date"] == document.period.start_date.isoformat()
    for table, written in zip(document.tables, parsed["tables"], strict=True):
        for row, written_row in zip(table.rows, written["rows"], strict=True):
            for column, value, got in zip(table.columns, row, written_row, strict=True):
                if value is None:
                    assert got is None
                elif column.type is ColumnType.DATE:
                    assert isinstance(value, date) and got == value.isoformat()
                elif column.type is ColumnType.DATETIME:
                    assert isinstance(value, datetime) and datetime.fromisoformat(got) == value
                elif column.type is ColumnType.TEXT:
                    assert got == value
                else:
                    assert type(got) is type(value) and got == value
    assert [kpi["value"] for kpi in parsed["kpis"]] == [kpi.value for kpi in document.kpis]


@pytest.mark.parametrize("make", SAMPLES)
def test_rendered_document_obeys_the_schema(make: object) -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(orjson.loads(render_json(make())))  # type: ignore[operator]


def test_schema_refuses_another_version_or_a_missing_one() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    parsed = orjson.loads(render_json(one_table_document()))
    assert validator.is_valid(parsed)
    assert not validator.is_valid({**parsed, "version": "2"})
    assert not validator.is_valid({key: value for key, value in parsed.items() if key != "version"})


def test_schema_refuses_a_cell_that_is_not_a_scalar() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    parsed = orjson.loads(render_json(one_table_document()))
    parsed["tables"][0]["rows"][0][1] = {"views": 1}
    assert not validator.is_valid(parsed)
