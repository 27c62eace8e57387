"""A report document as an Excel workbook (.xlsx): typed cells and native charts a spreadsheet user can work with.

The first sheet, "Summary", holds the title, the periods, the data watermark, the scope and the KPIs; then
one sheet per table. Cells keep their types so sums and filters work: numbers are numbers, percentages are
ratios shown as ``0.00%``, durations are Excel times (days, so ``seconds / 86400``) shown as ``[h]:mm:ss``
so they add up past 24 hours, dates are dates, datetimes are naive UTC (Excel has no time zones; the
header says "(UTC)"). Text is never read as a formula.

Each chart of the document becomes a native Excel chart on its table's sheet, drawn from the table's own
cells (the first ``top_n`` rows). Excel has no heatmap chart, so a heatmap becomes a weekday × hour grid
beside the table, shaded by a colour scale conditional format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, LineChart, PieChart, Reference
from openpyxl.chart.marker import DataPoint
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from semantic.report_document import Cell, Chart, ChartType, ColumnType, DocumentPeriod, Kpi, ReportDocument, Table

SUMMARY_SHEET = "Summary"

NUMBER_FORMATS: dict[ColumnType, str] = {
    ColumnType.INTEGER: "#,##0",
    ColumnType.DECIMAL: "#,##0.00",
    ColumnType.PERCENT: "0.00%",
    ColumnType.DURATION: "[h]:mm:ss",
    ColumnType.DATE: "yyyy-mm-dd",
    ColumnType.DATETIME: "yyyy-mm-dd hh:mm:ss",
}
CHANGE_FORMAT = "+0.00%;-0.00%;0.00%"
SECONDS_PER_DAY = 86400

# Excel's rules for sheet names: at most 31 characters, none of these, not starting or ending with a quote,
# unique ignoring case; "History" is reserved by Excel itself.
SHEET_NAME_LENGTH = 31
SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
RESERVED_SHEET_NAMES = frozenset({"history"})
# The longest text an Excel cell holds.
CELL_TEXT_LENGTH = 32767

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HOURS = range(24)
DEFAULT_HEAT_COLOR = "1F77B4"

MIN_COLUMN_WIDTH = 6
MAX_COLUMN_WIDTH = 60
# Rows between two charts stacked beside a table: a chart is CHART_HEIGHT_CM tall, a row about half a centimetre.
CHART_ROWS = 18
CHART_WIDTH_CM = 16.0
CHART_HEIGHT_CM = 8.0

BOLD = Font(bold=True)


def render_excel(document: ReportDocument) -> bytes:
    """The document as the bytes of an .xlsx workbook."""
    workbook = Workbook()
    summary = workbook.active
    assert summary is not None
    summary.title = SUMMARY_SHEET
    _write_summary(summary, document)

    taken = {SUMMARY_SHEET.casefold()}
    for table in document.tables:
        sheet = workbook.create_sheet(sheet_title(table.title, taken, fallback=table.name))
        taken.add(sheet.title.casefold())
        _write_table(sheet, table)
        _place_charts(sheet, table, [chart for chart in document.charts if chart.table == table.name])

    workbook.properties.title = _clean_text(document.title)
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()


def sheet_title(title: str, taken: set[str], *, fallback: str) -> str:
    """``title`` as a valid sheet name not in ``taken`` (case-folded names): forbidden characters become
    spaces, the name is cut to 31 characters and a clash gets " (2)", " (3)"… ."""
    base = " ".join(SHEET_NAME_FORBIDDEN.sub(" ", _clean_text(title)).split())
    base = base[:SHEET_NAME_LENGTH].strip("' ") or fallback[:SHEET_NAME_LENGTH]
    candidate, number = base, 2
    while candidate.casefold() in taken or candidate.casefold() in RESERVED_SHEET_NAMES:
        suffix = f" ({number})"
        candidate = base[: SHEET_NAME_LENGTH - len(suffix)].rstrip("' ") + suffix
        number += 1
    return candidate


def _write_summary(sheet: Worksheet, document: ReportDocument) -> None:
    title = _set(sheet, 1, 1, document.title, ColumnType.TEXT)
    title.font = Font(bold=True, size=14)
    row = 2
    if document.description:
        _set(sheet, row, 1, document.description, ColumnType.TEXT)
        row += 1
    row += 1
    first_fact = row
    facts: list[tuple[str, Cell, ColumnType]] = [("Period", _period_text(document.period), ColumnType.TEXT)]
    if document.previous_period is not None:
        facts.append(("Previous period", _period_text(document.previous_period), ColumnType.TEXT))
    if document.as_of is not None:
        facts.append(("Data as of (UTC)", document.as_of, ColumnType.DATETIME))
    else:
        facts.append(("Data as of (UTC)", "not recorded", ColumnType.TEXT))
    facts.append(("Scope", document.scope, ColumnType.TEXT))
    facts.append(("Generated at (UTC)", document.generated_at, ColumnType.DATETIME))
    for label, value, column_type in facts:
        _set(sheet, row, 1, label, ColumnType.TEXT).font = BOLD
        _set(sheet, row, 2, value, column_type)
        row += 1

    if document.kpis:
        row += 1
        for column, header in enumerate(("KPI", "Value", "Previous", "Change %"), start=1):
            _set(sheet, row, column, header, ColumnType.TEXT).font = BOLD
        for kpi in document.kpis:
            row += 1
            _write_kpi(sheet, row, kpi)
    # The title and description spill over the empty cells beside them; they do not widen column A.
    _fit_widths(sheet, first_row=first_fact)


def _write_kpi(sheet: Worksheet, row: int, kpi: Kpi) -> None:
    _set(sheet, row, 1, kpi.label, ColumnType.TEXT)
    _set(sheet, row, 2, kpi.value, kpi.type)
    _set(sheet, row, 3, kpi.previous, kpi.type)
    # change_percent is in percent; the cell holds the ratio so Excel's percent format shows it as is.
    change = None if kpi.change_percent is None else kpi.change_percent / 100
    cell = _set(sheet, row, 4, change, ColumnType.PERCENT)
    cell.number_format = CHANGE_FORMAT


def _period_text(period: DocumentPeriod) -> str:
    return f"{period.start_date.isoformat()} to {period.end_date.isoformat()} ({period.timezone})"


def _write_table(sheet: Worksheet, table: Table) -> None:
    for column_index, column in enumerate(table.columns, start=1):
        header = column.label + (" (UTC)" if column.type is ColumnType.DATETIME else "")
        _set(sheet, 1, column_index, header, ColumnType.TEXT).font = BOLD
    for row_index, row in enumerate(table.rows, start=2):
        for column_index, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
            _set(sheet, row_index, column_index, value, column.type)
    last = f"{get_column_letter(max(len(table.columns), 1))}{len(table.rows) + 1}"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{last}"
    _fit_widths(sheet)


def _set(sheet: Worksheet, row: int, column: int, value: Cell, column_type: ColumnType) -> Any:
    """Write ``value`` typed as ``column_type``; a value of another type than its column is written as it is."""
    cell = sheet.cell(row=row, column=column)
    excel_value = _excel_value(value, column_type)
    cell.value = excel_value
    if isinstance(excel_value, str):
        # openpyxl reads any string starting with "=" as a formula; report text is never one.
        cell.data_type = "s"
    elif column_type in NUMBER_FORMATS and excel_value is not None:
        cell.number_format = NUMBER_FORMATS[column_type]
    return cell


def _excel_value(value: Cell, column_type: ColumnType) -> str | int | float | date | datetime | None:
    if value is None:
        return None
    if column_type is ColumnType.TEXT or isinstance(value, str):
        return _clean_text(str(value))[:CELL_TEXT_LENGTH]
    if column_type is ColumnType.DURATION and isinstance(value, int | float):
        return value / SECONDS_PER_DAY
    if isinstance(value, datetime):
        naive = _naive_utc(value)
        return naive.date() if column_type is ColumnType.DATE else naive
    return value


def _naive_utc(value: datetime) -> datetime:
    # Naive datetimes in a document are UTC already.
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _clean_text(text: str) -> str:
    # Control characters other than tab and newlines make the workbook unreadable.
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def _fit_widths(sheet: Worksheet, *, first_row: int = 1) -> None:
    widths: dict[int, int] = {}
    for row in sheet.iter_rows(min_row=first_row):
        for cell in row:
            if cell.value is None:
                continue
            length = _display_length(cell.value, cell.number_format) + (2 if cell.font.bold else 0)
            widths[cell.column] = max(widths.get(cell.column, 0), length)
    for column, width in widths.items():
        letter = get_column_letter(column)
        sheet.column_dimensions[letter].width = min(max(width + 2, MIN_COLUMN_WIDTH), MAX_COLUMN_WIDTH)


def _display_length(value: object, number_format: str) -> int:
    if isinstance(value, str):
        return max((len(line) for line in value.splitlines()), default=0)
    if isinstance(value, datetime):
        return len("yyyy-mm-dd hh:mm:ss")
    if isinstance(value, date):
        return len("yyyy-mm-dd")
    if isinstance(value, int | float):
        if "%" in number_format:
            return len(f"{value * 100:+.2f}%")
        if number_format == NUMBER_FORMATS[ColumnType.DURATION]:
            return len(str(int(value * SECONDS_PER_DAY) // 3600)) + len(":mm:ss")
        return len(f"{value:,.2f}")
    return len(str(value))


def _place_charts(sheet: Worksheet, table: Table, charts: Sequence[Chart]) -> None:
    """Charts go beside the table, one under the other, leaving a blank column after the table."""
    column = len(table.columns) + 2
    row = 1
    for chart in charts:
        rows = len(table.rows) if chart.top_n is None else min(chart.top_n, len(table.rows))
        if chart.chart_type is ChartType.TABLE or rows == 0:
            continue
        if chart.chart_type is ChartType.HEATMAP:
            row += _write_heatmap(sheet, table, chart, row, column, rows)
            continue
        native = _native_chart(sheet, table, chart, rows)
        native.width, native.height = CHART_WIDTH_CM, CHART_HEIGHT_CM
        sheet.add_chart(native, f"{get_column_letter(column)}{row}")
        row += CHART_ROWS


def _native_chart(sheet: Worksheet, table: Table, chart: Chart, rows: int) -> LineChart | BarChart | PieChart:
    native: LineChart | BarChart | PieChart
    if chart.chart_type is ChartType.LINE:
        native = LineChart()
    elif chart.chart_type is ChartType.PIE:
        native = PieChart()
    else:
        native = BarChart()
        native.type = "col"
        if chart.chart_type is ChartType.STACKED_BAR:
            native.grouping = "stacked"
            native.overlap = 100
    native.title = chart.title

    # Pie charts size their slices by the first y column only.
    y_columns = chart.y[:1] if chart.chart_type is ChartType.PIE else chart.y
    for name in y_columns:
        index = table.column(name) + 1
        data = Reference(sheet, min_col=index, max_col=index, min_row=1, max_row=rows + 1)
        native.add_data(data, titles_from_data=True)
    x_index = table.column(chart.x) + 1
    native.set_categories(Reference(sheet, min_col=x_index, max_col=x_index, min_row=2, max_row=rows + 1))
    _colour(native, chart, rows)

    if not isinstance(native, PieChart):
        # Newer Excel versions hide axes openpyxl leaves undecided.
        native.x_axis.delete = False
        native.y_axis.delete = False
        native.x_axis.title = chart.x_label
        native.y_axis.title = chart.y_label
        if table.columns[x_index - 1].type is ColumnType.DATE:
            native.x_axis.number_format = NUMBER_FORMATS[ColumnType.DATE]
    return native


def _colour(native: LineChart | BarChart | PieChart, chart: Chart, rows: int) -> None:
    colours = [colour for colour in (_hex_colour(name) for name in chart.colors) if colour is not None]
    if not colours:
        return
    if isinstance(native, PieChart):
        # A pie has one series: the colours are its slices'.
        series = native.series[0]
        for index, colour in zip(range(rows), colours, strict=False):
            point = DataPoint(idx=index)
            point.graphicalProperties.solidFill = colour
            series.dPt.append(point)
        return
    for series, colour in zip(native.series, colours, strict=False):
        if isinstance(native, LineChart):
            series.graphicalProperties.line.solidFill = colour
        else:
            series.graphicalProperties.solidFill = colour
            series.graphicalProperties.line.solidFill = colour


def _hex_colour(css: str) -> str | None:
    """A CSS colour (#rgb, #rrggbb or a name) as Excel's RRGGBB; None for a colour that is none of these."""
    text = css.strip()
    if re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        return text[1:].upper()
    if re.fullmatch(r"#[0-9a-fA-F]{3}", text):
        return "".join(digit * 2 for digit in text[1:]).upper()
    # CSS colour names: matplotlib's table is the full CSS4 list.
    from matplotlib.colors import CSS4_COLORS

    named = CSS4_COLORS.get(text.lower())
    return named[1:].upper() if isinstance(named, str) else None


def _write_heatmap(sheet: Worksheet, table: Table, chart: Chart, top: int, left: int, rows: int) -> int:
    """A weekday × hour grid of ``y[0]`` at (top, left) with a colour scale; returns the rows it took."""
    x_index, value_index = table.column(chart.x), table.column(chart.y[0])
    series_index = table.column(chart.series) if chart.series else None
    grid: dict[tuple[object, object], float] = {}
    for row in table.rows[:rows]:
        value = row[value_index]
        if not isinstance(value, int | float):
            continue
        key = (row[series_index] if series_index is not None else None, row[x_index])
        grid[key] = grid.get(key, 0) + value

    xs = _axis_values([x for _, x in grid], HOURS)
    series = _axis_values([s for s, _ in grid], range(1, len(WEEKDAYS) + 1))
    weekdays = series == list(range(1, len(WEEKDAYS) + 1))

    _set(sheet, top, left, chart.title, ColumnType.TEXT).font = BOLD
    corner = f"{chart.y_label or table.columns[value_index].label}"
    _set(sheet, top + 1, left, corner, ColumnType.TEXT).font = BOLD
    for offset, x in enumerate(xs, start=1):
        _set(sheet, top + 1, left + offset, _axis_label(x), ColumnType.TEXT).font = BOLD
    for row_offset, name in enumerate(series, start=2):
        label = WEEKDAYS[name - 1] if weekdays and isinstance(name, int) else _axis_label(name)
        _set(sheet, top + row_offset, left, label, ColumnType.TEXT).font = BOLD
        for offset, x in enumerate(xs, start=1):
            value = grid.get((name, x))
            _set(sheet, top + row_offset, left + offset, value, table.columns[value_index].type)

    first = f"{get_column_letter(left + 1)}{top + 2}"
    last = f"{get_column_letter(left + len(xs))}{top + 1 + len(series)}"
    colours = [colour for colour in (_hex_colour(name) for name in chart.colors) if colour is not None]
    rule = ColorScaleRule(
        start_type="min", start_color="FFFFFF", end_type="max", end_color=colours[0] if colours else DEFAULT_HEAT_COLOR
    )
    sheet.conditional_formatting.add(f"{first}:{last}", rule)

    sheet.column_dimensions[get_column_letter(left)].width = max(len(corner), len(chart.title) // 2, 10) + 2
    for offset in range(1, len(xs) + 1):
        sheet.column_dimensions[get_column_letter(left + offset)].width = MIN_COLUMN_WIDTH
    return len(series) + 3


def _axis_values(values: list[Any], full: range) -> list[Any]:
    """The whole ``full`` range when every value lies in it (hours, weekdays), else the values in order seen."""
    if all(isinstance(value, int) and value in full for value in values):
        return list(full)
    return list(dict.fromkeys(values))


def _axis_label(value: object) -> str:
    return "" if value is None else str(value)
