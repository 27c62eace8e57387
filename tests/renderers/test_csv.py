"""CSV output read back with the csv module: machine-readable values, the zip of tables, injection, quoting."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime

import pytest

from renderers.csv_files import render_csv
from semantic.report_document import Cell, Column, ColumnType, Kpi, ReportDocument, Table
from tests.renderers.sample_documents import ARABIC_CONTENT, arabic_document, full_document, one_table_document

BOM = "\ufeff".encode()


def parse(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM), "UTF-8 with a byte order mark, for Excel"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def check_value(text: str, value: Cell, column_type: ColumnType) -> None:
    """The CSV text reads back as the document's value, in the column type's machine form."""
    where = f"{text!r} for {value!r} ({column_type})"
    if value is None:
        assert text == "", where
    elif column_type is ColumnType.TEXT:
        assert text == value, where
    elif column_type is ColumnType.INTEGER:
        assert int(text) == value, where
    elif column_type in (ColumnType.DECIMAL, ColumnType.PERCENT, ColumnType.DURATION):
        # Percent as the ratio, duration as seconds: the number itself, never "44.12 %" or "0:05:11".
        assert float(text) == value, where
    elif column_type is ColumnType.DATE:
        assert date.fromisoformat(text) == value, where
    elif column_type is ColumnType.DATETIME:
        parsed = datetime.fromisoformat(text)
        assert parsed.utcoffset() is not None and parsed == value, where
    else:
        raise AssertionError(f"untested column type {column_type}")


def check_table(rows: list[list[str]], table: Table) -> None:
    assert rows[0] == [column.name for column in table.columns]
    assert len(rows) == len(table.rows) + 1
    for got, row in zip(rows[1:], table.rows, strict=True):
        assert len(got) == len(table.columns)
        for text, value, column in zip(got, row, table.columns, strict=True):
            check_value(text, value, column.type)


def test_one_table_is_one_csv() -> None:
    document = one_table_document()
    data, content_type = render_csv(document)
    assert content_type == "text/csv; charset=utf-8"
    check_table(parse(data), document.tables[0])


def test_percent_is_the_ratio() -> None:
    document = one_table_document()
    table = document.tables[0]
    index = table.column("completion_rate")
    rows = parse(render_csv(document)[0])
    assert [row[index] for row in rows[1:]] == [repr(row[index]) for row in table.rows]


def kpi_value(text: str, value: float | int | None) -> None:
    assert (text == "") if value is None else (float(text) == value)


@pytest.mark.parametrize("make", [full_document, arabic_document])
def test_several_tables_are_a_zip_of_csvs_and_kpis(make: object) -> None:
    document: ReportDocument = make()  # type: ignore[operator]
    data, content_type = render_csv(document)
    assert content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted([f"{table.name}.csv" for table in document.tables] + ["kpis.csv"])
        for table in document.tables:
            check_table(parse(archive.read(f"{table.name}.csv")), table)
        kpis = parse(archive.read("kpis.csv"))
    assert kpis[0] == ["name", "label", "type", "value", "previous", "change_percent"]
    assert len(kpis) == len(document.kpis) + 1
    for row, kpi in zip(kpis[1:], document.kpis, strict=True):
        assert row[:3] == [kpi.name, kpi.label, kpi.type.value]
        kpi_value(row[3], kpi.value)
        kpi_value(row[4], kpi.previous)
        kpi_value(row[5], kpi.change_percent)


def test_arabic_text_is_utf8() -> None:
    data, _ = render_csv(arabic_document())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        rows = parse(archive.read("top_content.csv"))
    assert ARABIC_CONTENT in [row[1] for row in rows]


def test_zip_is_the_same_for_the_same_document() -> None:
    assert render_csv(full_document())[0] == render_csv(full_document())[0]


def test_one_table_with_kpis_keeps_the_kpis_in_a_zip() -> None:
    document = one_table_document()
    document.kpis.append(Kpi(name="views", label="Views", value=7, previous=5, change_percent=40.0))
    data, content_type = render_csv(document)
    assert content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["daily.csv", "kpis.csv"]


def test_a_table_called_kpis_keeps_its_name() -> None:
    document = full_document()
    document.tables.append(Table(name="kpis", title="KPIs", columns=[Column(name="x", label="X")], rows=[["a"]]))
    with zipfile.ZipFile(io.BytesIO(render_csv(document)[0])) as archive:
        assert parse(archive.read("kpis.csv")) == [["x"], ["a"]]
        assert parse(archive.read("report-kpis.csv"))[0][0] == "name"


def single_column_document(column_type: ColumnType, values: list[Cell]) -> ReportDocument:
    document = one_table_document()
    document.tables[0] = Table(
        name="cells",
        title="Cells",
        columns=[Column(name="cell", label="Cell", type=column_type)],
        rows=[[v] for v in values],
    )
    return document


def test_formulas_are_neutralised() -> None:
    dangerous = ['=HYPERLINK("http://example.com","click")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    harmless = ["a=b", "plain", "", "'quoted"]
    rows = parse(render_csv(single_column_document(ColumnType.TEXT, [*dangerous, *harmless]))[0])
    assert [row[0] for row in rows[1:]] == [*["'" + text for text in dangerous], *harmless]


def test_negative_numbers_are_not_touched() -> None:
    values: list[Cell] = [-5, -1.25, None]
    rows = parse(render_csv(single_column_document(ColumnType.DECIMAL, values))[0])
    assert [row[0] for row in rows[1:]] == [str(-5), repr(-1.25), ""]


def test_commas_quotes_and_newlines_round_trip() -> None:
    texts = ['Cooking, with commas "and quotes"', "two\nlines", "crlf\r\ninside", 'a"b', "trailing,"]
    rows = parse(render_csv(single_column_document(ColumnType.TEXT, list(texts)))[0])
    assert [row[0] for row in rows[1:]] == texts


def test_datetimes_are_utc_with_offset() -> None:
    moment = datetime(2026, 3, 8, 23, 59, 1, tzinfo=UTC)
    naive = datetime(2026, 3, 8, 12, 0, 0)
    rows = parse(render_csv(single_column_document(ColumnType.DATETIME, [moment, naive]))[0])
    assert [row[0] for row in rows[1:]] == [moment.isoformat(), naive.replace(tzinfo=UTC).isoformat()]
    assert rows[1][0].endswith("+00:00")
