"""The Excel workbook, read back with openpyxl: typed cells, sheet names, native charts, the heatmap grid."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime, timedelta
from io import BytesIO

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.chart import BarChart, LineChart, PieChart
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.worksheet import Worksheet

from renderers.excel import render_excel, sheet_title
from semantic.report_document import ChartType, Column, ColumnType, ReportDocument, Table
from tests.renderers.sample_documents import (
    ARABIC_CONTENT,
    ARABIC_TITLE,
    arabic_document,
    full_document,
    one_table_document,
)

WEEKDAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def load(document: ReportDocument) -> Workbook:
    return load_workbook(BytesIO(render_excel(document)))


def sheet_of(workbook: Workbook, document: ReportDocument, table_name: str) -> Worksheet:
    index = [table.name for table in document.tables].index(table_name)
    return workbook.worksheets[index + 1]


def title_text(title: object) -> str:
    return "".join(run.t for paragraph in title.tx.rich.p for run in paragraph.r or [])  # type: ignore[attr-defined]


def test_summary_first_then_one_sheet_per_table() -> None:
    document = full_document()
    workbook = load(document)
    assert workbook.sheetnames == ["Summary", *[table.title for table in document.tables]]


@pytest.mark.parametrize("make", [full_document, one_table_document, arabic_document])
def test_every_cell_keeps_its_value_and_type(make: object) -> None:
    document = make()  # type: ignore[operator]
    workbook = load(document)
    for table in document.tables:
        sheet = sheet_of(workbook, document, table.name)
        headers = [cell.value for cell in sheet[1]][: len(table.columns)]
        assert headers == [c.label + (" (UTC)" if c.type is ColumnType.DATETIME else "") for c in table.columns]
        assert all(cell.font.bold for cell in sheet[1][: len(table.columns)])
        assert sheet.max_row == len(table.rows) + 1
        for row_index, row in enumerate(table.rows, start=2):
            for column_index, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
                check_cell(sheet.cell(row=row_index, column=column_index), column.type, value)


def check_cell(cell: object, column_type: ColumnType, value: object) -> None:
    got, number_format = cell.value, cell.number_format  # type: ignore[attr-defined]
    where = f"{cell.coordinate} ({column_type})"  # type: ignore[attr-defined]
    if value is None:
        assert got is None, where
    elif column_type is ColumnType.TEXT:
        assert got == value and cell.data_type == "s", where  # type: ignore[attr-defined]
    elif column_type is ColumnType.INTEGER:
        assert type(got) is int and got == value, where
    elif column_type is ColumnType.DECIMAL:
        assert isinstance(got, int | float) and got == value, where
    elif column_type is ColumnType.PERCENT:
        assert isinstance(got, float) and got == value and "%" in number_format, where
    elif column_type is ColumnType.DURATION:
        # An Excel time: openpyxl reads an [h]:mm:ss cell back as a timedelta.
        assert isinstance(got, timedelta) and number_format == "[h]:mm:ss", where
        assert got.total_seconds() == pytest.approx(value, abs=1e-3), where
    elif column_type is ColumnType.DATE:
        assert isinstance(got, datetime) and got.date() == value and number_format == "yyyy-mm-dd", where
    elif column_type is ColumnType.DATETIME:
        assert isinstance(value, datetime)
        assert got == value.astimezone(UTC).replace(tzinfo=None), where
        assert number_format == "yyyy-mm-dd hh:mm:ss", where
    else:
        raise AssertionError(f"untested column type {column_type}")


def test_header_frozen_and_filter_over_the_table() -> None:
    document = full_document()
    workbook = load(document)
    for table in document.tables:
        sheet = sheet_of(workbook, document, table.name)
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(table.columns))}{len(table.rows) + 1}"


def test_columns_are_as_wide_as_their_text() -> None:
    document = full_document()
    workbook = load(document)
    table = document.table("top_content")
    sheet = sheet_of(workbook, document, "top_content")
    longest = max(len(str(row[table.column("title")])) for row in table.rows)
    width = sheet.column_dimensions[get_column_letter(table.column("title") + 1)].width
    assert longest <= width <= 60


def test_summary_sheet_holds_the_periods_watermark_and_kpis() -> None:
    document = full_document()
    sheet = load(document)["Summary"]
    assert sheet["A1"].value == document.title
    assert sheet["A2"].value == document.description
    facts = {row[0].value: row[1] for row in sheet.iter_rows(min_row=3) if row[0].value}
    assert document.period.start_date.isoformat() in facts["Period"].value
    assert document.period.end_date.isoformat() in facts["Period"].value
    assert document.previous_period is not None
    assert document.previous_period.start_date.isoformat() in facts["Previous period"].value
    assert document.as_of is not None
    assert facts["Data as of (UTC)"].value == document.as_of.astimezone(UTC).replace(tzinfo=None)
    assert facts["Generated at (UTC)"].value == document.generated_at.astimezone(UTC).replace(tzinfo=None)
    assert facts["Scope"].value == document.scope

    rows = [[cell.value for cell in row[:4]] for row in sheet.iter_rows()]
    header = rows.index(["KPI", "Value", "Previous", "Change %"])
    kpi_rows = rows[header + 1 : header + 1 + len(document.kpis)]
    for kpi, (label, value, previous, change) in zip(document.kpis, kpi_rows, strict=True):
        assert (label, value, previous) == (kpi.label, kpi.value, kpi.previous)
        if kpi.change_percent is None:
            assert change is None
        else:
            assert change == pytest.approx(kpi.change_percent / 100)
    percent_row = header + 1 + [kpi.type for kpi in document.kpis].index(ColumnType.PERCENT)
    assert "%" in sheet.cell(row=percent_row + 1, column=2).number_format


def chart_range(reference: str) -> tuple[str, str]:
    sheet, cells = reference.rsplit("!", 1)
    return sheet, cells


def test_one_native_chart_per_chart_of_the_table() -> None:
    document = full_document()
    workbook = load(document)
    native_types = {ChartType.LINE: LineChart, ChartType.BAR: BarChart, ChartType.STACKED_BAR: BarChart}
    native_types[ChartType.PIE] = PieChart
    for table in document.tables:
        sheet = sheet_of(workbook, document, table.name)
        charts = [chart for chart in document.charts if chart.table == table.name]
        drawn = [chart for chart in charts if chart.chart_type not in (ChartType.HEATMAP, ChartType.TABLE)]
        assert len(sheet._charts) == len(drawn), table.name
        for chart, native in zip(drawn, sheet._charts, strict=True):
            assert isinstance(native, native_types[chart.chart_type])
            assert title_text(native.title) == chart.title
            rows = len(table.rows) if chart.top_n is None else min(chart.top_n, len(table.rows))
            quoted = quote_sheetname(sheet.title)
            y_columns = chart.y[:1] if chart.chart_type is ChartType.PIE else chart.y
            assert len(native.series) == len(y_columns)
            x_letter = get_column_letter(table.column(chart.x) + 1)
            for series, name in zip(native.series, y_columns, strict=True):
                letter = get_column_letter(table.column(name) + 1)
                assert series.val.numRef.f == f"{quoted}!${letter}$2:${letter}${rows + 1}"
                assert series.tx.strRef.f == f"{quoted}!{letter}1" or series.tx.strRef.f == f"{quoted}!${letter}$1"
                categories = series.cat.numRef or series.cat.strRef
                assert categories.f == f"{quoted}!${x_letter}$2:${x_letter}${rows + 1}"


def test_stacked_bar_is_stacked_and_respects_top_n() -> None:
    document = full_document()
    chart = next(chart for chart in document.charts if chart.chart_type is ChartType.STACKED_BAR)
    table = document.table(chart.table)
    assert chart.top_n is not None and chart.top_n < len(table.rows)
    native = sheet_of(load(document), document, table.name)._charts[0]
    assert native.grouping == "stacked" and native.overlap == 100
    letter = get_column_letter(table.column(chart.y[0]) + 1)
    assert native.series[0].val.numRef.f.endswith(f"${letter}$2:${letter}${chart.top_n + 1}")
    # "#1f77b4" and the CSS name "orange".
    fills = [series.graphicalProperties.solidFill.srgbClr for series in native.series]
    assert [str(fill) for fill in fills] == ["1F77B4", "FFA500"]


def test_line_chart_has_axis_titles() -> None:
    document = full_document()
    chart = next(chart for chart in document.charts if chart.chart_type is ChartType.LINE)
    native = sheet_of(load(document), document, chart.table)._charts[0]
    assert title_text(native.x_axis.title) == chart.x_label
    assert title_text(native.y_axis.title) == chart.y_label


def test_heatmap_is_a_colour_scaled_weekday_by_hour_grid() -> None:
    document = full_document()
    chart = next(chart for chart in document.charts if chart.chart_type is ChartType.HEATMAP)
    table = document.table(chart.table)
    sheet = sheet_of(load(document), document, table.name)
    assert sheet._charts == []
    formats = list(sheet.conditional_formatting)
    assert len(formats) == 1
    assert [rule.type for rule in formats[0].rules] == ["colorScale"]

    top_left = str(formats[0].sqref).split(":")[0]
    first_row = sheet[top_left].row
    first_column = sheet[top_left].column
    assert [sheet.cell(row=first_row + n, column=first_column - 1).value for n in range(7)] == WEEKDAY_NAMES
    assert [sheet.cell(row=first_row - 1, column=first_column + h).value for h in range(24)] == [
        str(h) for h in range(24)
    ]
    assert str(formats[0].sqref) == f"{top_left}:{get_column_letter(first_column + 23)}{first_row + 6}"
    weekday, hour, views = (table.column(name) for name in (chart.series or "", chart.x, chart.y[0]))
    for row in table.rows:
        day, hour_of_day = row[weekday], row[hour]
        assert isinstance(day, int) and isinstance(hour_of_day, int)
        assert sheet.cell(row=first_row + day - 1, column=first_column + hour_of_day).value == row[views]


def test_arabic_text_round_trips() -> None:
    document = arabic_document()
    workbook = load(document)
    assert workbook["Summary"]["A1"].value == ARABIC_TITLE
    table = document.table("top_content")
    sheet = sheet_of(workbook, document, "top_content")
    titles = [sheet.cell(row=n + 2, column=table.column("title") + 1).value for n in range(len(table.rows))]
    assert ARABIC_CONTENT in titles
    charts = [chart for chart in document.charts if chart.table == "top_content"]
    assert len(sheet._charts) == len(charts)
    assert title_text(sheet._charts[-1].title) == ARABIC_TITLE


def text_table(name: str, title: str, texts: list[str]) -> Table:
    return Table(name=name, title=title, columns=[Column(name="text", label="Text")], rows=[[t] for t in texts])


def test_text_is_never_a_formula() -> None:
    document = one_table_document()
    formula = '=HYPERLINK("http://example.com","click")'
    document.tables.append(text_table("texts", "Texts", [formula, "+1", "line one\nline two"]))
    data = render_excel(document)
    sheet = load_workbook(BytesIO(data))["Texts"]
    assert [sheet.cell(row=n, column=1).value for n in (2, 3, 4)] == [formula, "+1", "line one\nline two"]
    assert all(sheet.cell(row=n, column=1).data_type == "s" for n in (2, 3, 4))
    with zipfile.ZipFile(BytesIO(data)) as archive:
        sheets = [archive.read(name) for name in archive.namelist() if name.startswith("xl/worksheets/")]
    assert not any(b"<f>" in xml for xml in sheets)


def test_sheet_names_follow_excel_rules() -> None:
    taken = {"summary"}
    long_title = "Views: by/device [mobile?] * tablet \\ desktop, per week"
    first = sheet_title(long_title, taken, fallback="a")
    assert len(first) <= 31 and not set("[]:*?/\\") & set(first)
    taken.add(first.casefold())
    second = sheet_title(long_title.upper(), taken, fallback="b")
    assert len(second) <= 31 and second.casefold() not in taken and second.endswith(" (2)")
    assert sheet_title("summary", {"summary"}, fallback="c") == "summary (2)"
    assert sheet_title("History", set(), fallback="d") == "History (2)"
    assert sheet_title("'quoted'", set(), fallback="e") == "quoted"
    assert sheet_title("???", set(), fallback="devices") == "devices"


def test_clashing_table_titles_get_distinct_sheets() -> None:
    document = one_table_document()
    same = "Top content of the week by views and by device"
    document.tables.append(text_table("a", same, ["x"]))
    document.tables.append(text_table("b", same, ["y"]))
    names = load(document).sheetnames
    assert len(names) == 4 and len({name.casefold() for name in names}) == 4
    assert all(len(name) <= 31 for name in names)


def test_chart_of_an_empty_table_is_left_out() -> None:
    document = full_document()
    document.table("devices").rows.clear()
    sheet = sheet_of(load(document), document, "devices")
    assert sheet._charts == []
    assert sheet.auto_filter.ref == "A1:C1"


def test_dates_typed_from_json_round_trip() -> None:
    original = one_table_document()
    document = ReportDocument.model_validate_json(original.model_dump_json())
    sheet = load(document).worksheets[1]
    first_day = original.tables[0].rows[0][0]
    assert isinstance(first_day, date)
    assert sheet["A2"].value.date() == first_day
