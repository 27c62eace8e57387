"""A report document as a PDF (fpdf2): title page, key figures, charts, then every table.

- The title page names the report, its period and previous period, the data watermark ("Data as of ..."),
  the scope and when it was generated.
- Key figures: each KPI's value, its value in the previous period and the change between them, signed.
- Each drawable chart as an image (``charts.chart_png``), two to a page.
- Each table under its title: cells printed by column type (``cell_format``), numbers right-aligned, the
  header row repeated on every page a long table runs onto. A table too wide for a portrait page gets
  landscape pages.
- Every page's footer repeats the watermark and says "Page n of N".

Text is set in DejaVu Sans (embedded, subset), which covers Latin and Arabic, with HarfBuzz shaping on:
Arabic letters are joined and right-to-left text ordered, and a paragraph whose first strong character is
right-to-left is aligned right. The creation date is the document's ``generated_at``, so one document
always gives the same bytes.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
from fpdf import FPDF, FontFace
from PIL import Image

from renderers.cell_format import (
    format_as_of,
    format_cell,
    format_change,
    format_datetime,
    format_kpi_previous,
    format_kpi_value,
    format_period,
    is_numeric,
)
from renderers.charts import chart_png, drawable
from renderers.text_direction import base_direction, needs_shaping
from semantic.report_document import Cell, Column, Kpi, ReportDocument, Table

FONT = "DejaVu"
_FONT_DIRECTORY = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT_FILES = {"": _FONT_DIRECTORY / "DejaVuSans.ttf", "B": _FONT_DIRECTORY / "DejaVuSans-Bold.ttf"}

# Millimetres on an A4 page.
MARGIN = 15.0
BOTTOM_MARGIN = 18.0
TABLE_LINE_HEIGHT = 5.0
_HEADING_HEIGHT = 9.0
CELL_PADDING = 1.2
# No column is sized wider than this from its text; longer text wraps.
MAX_NATURAL_COLUMN_WIDTH = 70.0
# Rows measured when sizing a table's columns: enough to see the widths, not every row of a long table.
MEASURED_ROWS = 200

# A table narrower than the page is widened by at most this factor.
NARROW_TABLE_STRETCH = 1.4

TABLE_FONT_SIZE = 8.5
CHART_DPI = 144
# Shown for a previous value or change that is not known.
MISSING = "—"

_HEADINGS = FontFace(emphasis="BOLD", fill_color=(226, 232, 240))
_STRIPE = (247, 248, 250)
_MUTED = (95, 99, 104)
_RULE = (203, 213, 225)


def render_pdf(document: ReportDocument, chart_images: Mapping[str, bytes] | None = None) -> bytes:
    """The PDF of ``document``. ``chart_images``: charts drawn already (``chart_png`` at CHART_DPI, by
    chart name), e.g. in parallel elsewhere; the others are drawn here."""
    pdf = _ReportPdf(document)
    _title_page(pdf, document)
    if document.kpis:
        _kpis(pdf, document.kpis)
    _charts(pdf, document, chart_images or {})
    for table in document.tables:
        _table(pdf, table)
    return bytes(pdf.output())


class _ReportPdf(FPDF):
    def __init__(self, document: ReportDocument) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._watermark = format_as_of(document.as_of)
        for style, path in FONT_FILES.items():
            self.add_font(FONT, style=style, fname=str(path))
        self.set_text_shaping(True)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=BOTTOM_MARGIN)
        self.set_creation_date(document.generated_at)
        self.set_title(document.title)
        if document.description:
            self.set_subject(document.description)
        self.set_creator("Analytics service reports")
        self.set_font(FONT, size=10)
        # Whether the next block starts a page whatever room is left: the title page stands alone.
        self.page_closed = True

    def make_room(self, height: float, orientation: str = "portrait") -> None:
        """Start a page unless ``height`` millimetres fit on the current one, which has ``orientation``."""
        current = "portrait" if self.w < self.h else "landscape"
        if self.page_closed or orientation != current or self.will_page_break(height):
            self.add_page(orientation=orientation)
        self.page_closed = False

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.set_text_color(*_MUTED)
        half = self.epw / 2
        self.cell(half, 5, self._watermark, align="L")
        # "{nb}" becomes the page count when the document is closed.
        self.cell(half, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0)


def _title_page(pdf: _ReportPdf, document: ReportDocument) -> None:
    pdf.add_page()
    pdf.set_y(60)
    pdf.set_font(FONT, style="B", size=24)
    pdf.multi_cell(0, 11, document.title, align="C", new_x="LMARGIN", new_y="NEXT")
    if document.description:
        pdf.ln(4)
        pdf.set_font(FONT, size=12)
        pdf.multi_cell(0, 6, document.description, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(14)
    lines = [f"Period: {format_period(document.period)}"]
    if document.previous_period is not None:
        lines.append(f"Previous period: {format_period(document.previous_period)}")
    lines += [
        format_as_of(document.as_of),
        f"Scope: {document.scope}",
        f"Generated at {format_datetime(document.generated_at)}",
    ]
    pdf.set_font(FONT, size=11)
    for line in lines:
        pdf.multi_cell(0, 7, line, align=_paragraph_align(line), new_x="LMARGIN", new_y="NEXT")


def _kpis(pdf: _ReportPdf, kpis: Sequence[Kpi]) -> None:
    pdf.make_room(_HEADING_HEIGHT + (len(kpis) + 1) * TABLE_LINE_HEIGHT)
    _heading(pdf, "Key figures")
    labels = ("Indicator", "Value", "Previous period", "Change")
    rows = [
        [
            kpi.label,
            format_kpi_value(kpi),
            format_kpi_previous(kpi) or MISSING,
            format_change(kpi.change_percent) or MISSING,
        ]
        for kpi in kpis
    ]
    _grid(pdf, labels, [False, True, True, True], rows)
    pdf.ln(6)


def _charts(pdf: _ReportPdf, document: ReportDocument, drawn: Mapping[str, bytes]) -> None:
    for chart in document.charts:
        if not drawable(chart):
            continue
        png = drawn.get(chart.name) or chart_png(document, chart, dpi=CHART_DPI)
        image = Image.open(io.BytesIO(png)).convert("RGB")
        height = _portrait_width() * image.height / image.width
        pdf.make_room(height)
        pdf.image(image, x=pdf.l_margin, w=_portrait_width(), h=height)
        pdf.ln(4)


def _table(pdf: _ReportPdf, table: Table) -> None:
    labels = [column.label for column in table.columns]
    numeric = [is_numeric(column.type) for column in table.columns]
    rows = [_formatted_row(table.columns, row) for row in table.rows]
    pdf.set_font(FONT, size=TABLE_FONT_SIZE)
    natural = _natural_widths(pdf, labels, rows)
    orientation = "portrait" if sum(natural) <= _portrait_width() else "landscape"
    # The heading, the header row and a first row together: a heading never ends a page alone.
    pdf.make_room(_HEADING_HEIGHT + 3 * TABLE_LINE_HEIGHT, orientation)
    _heading(pdf, table.title)
    if not rows:
        pdf.set_font(FONT, size=10)
        pdf.cell(0, 6, "No rows.", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        return
    _grid(pdf, labels, numeric, rows, natural)
    pdf.ln(6)


def _grid(
    pdf: _ReportPdf,
    labels: Sequence[str],
    numeric: Sequence[bool],
    rows: Sequence[Sequence[str]],
    natural: Sequence[float] | None = None,
) -> None:
    pdf.set_font(FONT, size=TABLE_FONT_SIZE)
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.2)
    widths = natural if natural is not None else _natural_widths(pdf, labels, rows)
    # Shaping every cell of a long table costs several times the table itself; most tables need none.
    pdf.set_text_shaping(any(needs_shaping(text) for text in (*labels, *itertools.chain.from_iterable(rows))))
    # A narrow table keeps its figures near their labels instead of spreading over the page.
    width = min(pdf.epw, max(sum(widths) * NARROW_TABLE_STRETCH, pdf.epw / 2))
    with pdf.table(
        width=width,
        align="LEFT",
        col_widths=tuple(widths),
        line_height=TABLE_LINE_HEIGHT,
        padding=CELL_PADDING,
        headings_style=_HEADINGS,
        cell_fill_color=_STRIPE,
        cell_fill_mode="ROWS",
        borders_layout="HORIZONTAL_LINES",
        repeat_headings=1,
        v_align="MIDDLE",
    ) as grid:
        header = grid.row()
        for label, is_number in zip(labels, numeric, strict=True):
            header.cell(label, align="RIGHT" if is_number else _cell_align(label))
        for row in rows:
            cells = grid.row()
            for text, is_number in zip(row, numeric, strict=True):
                cells.cell(text, align="RIGHT" if is_number else _cell_align(text))
    pdf.set_text_shaping(True)


def _heading(pdf: _ReportPdf, text: str) -> None:
    pdf.set_font(FONT, style="B", size=13)
    pdf.multi_cell(0, _HEADING_HEIGHT - 1, text, align=_paragraph_align(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _formatted_row(columns: Sequence[Column], row: Sequence[Cell]) -> list[str]:
    return [format_cell(value, column.type) for column, value in zip(columns, row, strict=True)]


def _natural_widths(pdf: _ReportPdf, labels: Sequence[str], rows: Sequence[Sequence[str]]) -> list[float]:
    """Each column's width for its longest text (bounded), header in bold included."""
    widths = []
    for index, label in enumerate(labels):
        pdf.set_font(FONT, style="B", size=TABLE_FONT_SIZE)
        widest = pdf.get_string_width(label)
        pdf.set_font(FONT, size=TABLE_FONT_SIZE)
        for row in rows[:MEASURED_ROWS]:
            widest = max(widest, pdf.get_string_width(row[index]))
        widths.append(min(widest, MAX_NATURAL_COLUMN_WIDTH) + 2 * CELL_PADDING + 1)
    return widths


def _portrait_width() -> float:
    return 210.0 - 2 * MARGIN


def _paragraph_align(text: str) -> str:
    return "R" if base_direction(text) == "rtl" else "L"


def _cell_align(text: str) -> str:
    return "RIGHT" if base_direction(text) == "rtl" else "LEFT"
