"""One entry point from a report document to the file of a report format: bytes, content type, file name.

Report runs call ``render(document, report.report_format)``. The PDF and HTML renderers are imported only
when asked for, as they pull in the chart and layout libraries the other formats do not need.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from core.models import ReportFormat
from renderers.csv_files import CSV_CONTENT_TYPE, render_csv
from renderers.excel import render_excel
from renderers.json_document import render_json
from semantic.report_document import ReportDocument

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SLUG_LENGTH = 60


@dataclass(frozen=True, slots=True)
class RenderedFile:
    data: bytes
    content_type: str
    # "<slug of the title>-<period start>-<period end>.<extension>", ASCII only.
    file_name: str


def render(
    document: ReportDocument, report_format: str, charts: Mapping[str, bytes | str] | None = None
) -> RenderedFile:
    """The document in ``report_format`` (a core.models.ReportFormat value); ValueError for any other.

    ``charts``: charts drawn already, by name (``charts_drawn`` gives what a format draws), for PDF and HTML."""
    try:
        kind = ReportFormat(report_format)
    except ValueError:
        known = ", ".join(item.value for item in ReportFormat)
        raise ValueError(f"unknown report format {report_format!r}; expected one of {known}") from None

    if kind is ReportFormat.PDF:
        from renderers.pdf import render_pdf

        images = {name: image for name, image in (charts or {}).items() if isinstance(image, bytes)}
        return _file(document, render_pdf(document, images), "application/pdf", "pdf")
    if kind is ReportFormat.HTML:
        from renderers.html import render_html

        svgs = {name: image for name, image in (charts or {}).items() if isinstance(image, str)}
        return _file(document, render_html(document, svgs), "text/html; charset=utf-8", "html")
    if kind is ReportFormat.EXCEL:
        return _file(document, render_excel(document), XLSX_CONTENT_TYPE, "xlsx")
    if kind is ReportFormat.CSV:
        data, content_type = render_csv(document)
        return _file(document, data, content_type, "csv" if content_type == CSV_CONTENT_TYPE else "zip")
    return _file(document, render_json(document), "application/json", "json")


def charts_drawn(report_format: str) -> str | None:
    """How a format draws its charts: "png" (PDF), "svg" (HTML), or None (the others draw none, or natively)."""
    return {ReportFormat.PDF.value: "png", ReportFormat.HTML.value: "svg"}.get(report_format)


def draw_chart(document: ReportDocument, chart_name: str, kind: str) -> bytes | str:
    """One chart of the document as the format that draws ``kind`` ("png" or "svg") embeds it."""
    from renderers.charts import chart_png, chart_svg
    from renderers.pdf import CHART_DPI

    chart = next(c for c in document.charts if c.name == chart_name)
    return chart_png(document, chart, dpi=CHART_DPI) if kind == "png" else chart_svg(document, chart)


def file_name(document: ReportDocument, extension: str) -> str:
    """``weekly-content-performance-2026-03-02-2026-03-08.pdf``; a title that has no ASCII spelling
    (Arabic, for one) is replaced by the report's id."""
    name = slug(document.title) or slug(document.report_id) or "report"
    period = document.period
    return f"{name}-{period.start_date.isoformat()}-{period.end_date.isoformat()}.{extension}"


def slug(text: str) -> str:
    """Lower-case ASCII letters and digits joined by hyphens; empty when ``text`` holds letters that have no
    ASCII form, so a half-transliterated title never names a file."""
    # NFKD splits accented Latin letters into the letter and its marks, which are then dropped.
    decomposed = "".join(
        char for char in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(char)
    )
    if any(char.isalnum() and not char.isascii() for char in decomposed):
        return ""
    return re.sub(r"[^a-z0-9]+", "-", decomposed).strip("-")[:SLUG_LENGTH].rstrip("-")


def _file(document: ReportDocument, data: bytes, content_type: str, extension: str) -> RenderedFile:
    return RenderedFile(data=data, content_type=content_type, file_name=file_name(document, extension))
