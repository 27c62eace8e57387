"""The format dispatcher: the right renderer, content type and file name for every report format."""

from __future__ import annotations

import zipfile
from io import BytesIO

import pytest
from openpyxl import load_workbook

from core.models import ReportFormat
from renderers.csv_files import render_csv
from renderers.formats import RenderedFile, render, slug
from renderers.json_document import render_json
from semantic.report_document import ReportDocument
from tests.renderers.sample_documents import arabic_document, full_document, one_table_document


def expected_name(document: ReportDocument, stem: str, extension: str) -> str:
    period = document.period
    return f"{stem}-{period.start_date.isoformat()}-{period.end_date.isoformat()}.{extension}"


def test_excel() -> None:
    document = full_document()
    rendered = render(document, "excel")
    assert rendered.content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert rendered.file_name == expected_name(document, "weekly-content-performance", "xlsx")
    workbook = load_workbook(BytesIO(rendered.data))
    assert workbook.sheetnames == ["Summary", *[table.title for table in document.tables]]


def test_csv_of_one_table() -> None:
    document = one_table_document()
    rendered = render(document, ReportFormat.CSV)
    assert rendered == RenderedFile(
        data=render_csv(document)[0],
        content_type="text/csv; charset=utf-8",
        file_name=expected_name(document, "daily-views", "csv"),
    )


def test_csv_of_several_tables_is_a_zip() -> None:
    document = full_document()
    rendered = render(document, "csv")
    assert rendered.content_type == "application/zip"
    assert rendered.file_name == expected_name(document, "weekly-content-performance", "zip")
    with zipfile.ZipFile(BytesIO(rendered.data)) as archive:
        assert len(archive.namelist()) == len(document.tables) + 1


def test_json() -> None:
    document = full_document()
    rendered = render(document, "json")
    assert rendered.data == render_json(document)
    assert rendered.content_type == "application/json"
    assert rendered.file_name == expected_name(document, "weekly-content-performance", "json")


def test_arabic_title_names_the_file_after_the_report() -> None:
    document = arabic_document()
    assert render(document, "json").file_name == expected_name(document, slug(document.report_id), "json")
    assert slug(document.report_id) == document.report_id.replace("_", "-")


def test_slug() -> None:
    assert slug("Café: déjà vu, 2026!") == "cafe-deja-vu-2026"
    assert slug("Straße") == "strasse"
    assert slug("تقرير 2026") == ""
    assert len(slug("word " * 40)) <= 60 and not slug("word " * 40).endswith("-")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="docx"):
        render(full_document(), "docx")


def test_pdf() -> None:
    pytest.importorskip("renderers.pdf")
    document = full_document()
    rendered = render(document, "pdf")
    assert rendered.data.startswith(b"%PDF")
    assert rendered.content_type == "application/pdf"
    assert rendered.file_name == expected_name(document, "weekly-content-performance", "pdf")


def test_html() -> None:
    pytest.importorskip("renderers.html")
    document = full_document()
    rendered = render(document, "html")
    assert b"<html" in rendered.data.lower()
    assert rendered.content_type == "text/html; charset=utf-8"
    assert rendered.file_name == expected_name(document, "weekly-content-performance", "html")
