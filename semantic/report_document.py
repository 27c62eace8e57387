"""What a report run collects, before it is rendered: the contract between collection (semantic/) and
the renderers (renderers/), and the JSON format's schema (docs/reports.md, "The JSON document").

A document holds KPIs (each with its value in the previous period), tables of typed columns, and
charts that each draw columns of one of the tables. Every number a renderer prints comes from here, so
a PDF, a spreadsheet, a CSV and the JSON of the same run agree. ``as_of`` is the data watermark every
table was computed at: one snapshot per report.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The version of the JSON document (``ReportDocument.model_dump``); bumped on any incompatible change.
DOCUMENT_VERSION: Final = "1"

Cell = str | int | float | date | datetime | None


class ColumnType(StrEnum):
    """How a column's values are typed and formatted in every format."""

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    # A ratio in [0, 1], printed as a percentage.
    PERCENT = "percent"
    DATE = "date"
    DATETIME = "datetime"
    # Seconds, printed as h:mm:ss.
    DURATION = "duration"


class Column(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    type: ColumnType = ColumnType.TEXT


class Table(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="unique in the document; the CSV file's name")
    title: str
    columns: list[Column]
    rows: list[list[Cell]]

    @model_validator(mode="after")
    def _rectangular(self) -> Table:
        width = len(self.columns)
        for index, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"table {self.name!r} row {index} has {len(row)} cells for {width} columns")
        return self

    @model_validator(mode="after")
    def _dates_from_json(self) -> Table:
        # JSON has no date type: a document read back from its JSON holds ISO strings in date and datetime
        # columns, which the column's type turns back into dates, so the round trip gives the same document.
        parsers = {ColumnType.DATE: date.fromisoformat, ColumnType.DATETIME: datetime.fromisoformat}
        typed = [(index, parsers[column.type]) for index, column in enumerate(self.columns) if column.type in parsers]
        for row in self.rows:
            for index, parse in typed:
                cell = row[index]
                if isinstance(cell, str):
                    row[index] = parse(cell)
        return self

    def column(self, name: str) -> int:
        """The index of the column called ``name``."""
        for index, column in enumerate(self.columns):
            if column.name == name:
                return index
        raise KeyError(f"table {self.name!r} has no column {name!r}")


class Kpi(BaseModel):
    """A headline figure and how it moved since the previous period of the same length."""

    name: str
    label: str
    value: float | int
    previous: float | int | None = None
    # (value - previous) / previous * 100; None when there was no previous value to compare with.
    change_percent: float | None = None
    type: ColumnType = ColumnType.INTEGER


class ChartType(StrEnum):
    LINE = "line"
    BAR = "bar"
    STACKED_BAR = "stacked_bar"
    PIE = "pie"
    # Hour of day (x, 0-23) by weekday (series, 1 = Monday .. 7 = Sunday), the value in y[0].
    HEATMAP = "heatmap"
    # No chart: the table alone.
    TABLE = "table"


class Chart(BaseModel):
    """A chart of columns of one table of the document.

    line, bar: one series per column in ``y`` over the values of ``x``. stacked_bar: the ``y`` columns
    stacked over ``x``. pie: ``x`` labels the slices, ``y[0]`` sizes them. heatmap: ``x`` is the hour,
    ``series`` the weekday, ``y[0]`` the value. ``top_n`` keeps the first n rows of the table."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    chart_type: ChartType
    table: str
    x: str
    y: list[str] = Field(min_length=1)
    series: str | None = None
    top_n: int | None = Field(None, ge=1)
    # CSS colours (#rrggbb or names) for the series in order; empty: the default palette.
    colors: list[str] = Field(default_factory=list)
    x_label: str | None = None
    y_label: str | None = None


class DocumentPeriod(BaseModel):
    model_config = ConfigDict(frozen=True)

    start_date: date
    end_date: date
    timezone: str = "UTC"


class ReportDocument(BaseModel):
    version: Literal["1"] = DOCUMENT_VERSION
    report_id: str
    run_id: str
    title: str
    description: str | None = None
    report_type: str
    generated_at: datetime
    # The data watermark: every event acknowledged before it is counted, in every table.
    as_of: datetime | None
    period: DocumentPeriod
    previous_period: DocumentPeriod | None = None
    # Whose view of the data this is: "all content", or the principal's content scope.
    scope: str = "all content"
    kpis: list[Kpi] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    charts: list[Chart] = Field(default_factory=list)

    @model_validator(mode="after")
    def _charts_draw_tables(self) -> ReportDocument:
        tables = {table.name: table for table in self.tables}
        if len(tables) != len(self.tables):
            raise ValueError("table names must be unique in a report")
        for chart in self.charts:
            if chart.chart_type is ChartType.HEATMAP and chart.series is None:
                raise ValueError(f"heatmap {chart.name!r} needs a series column (the weekday)")
            table = tables.get(chart.table)
            if table is None:
                raise ValueError(f"chart {chart.name!r} draws table {chart.table!r}, which the report has not")
            for column in (chart.x, *chart.y, *([chart.series] if chart.series else [])):
                table.column(column)
        return self

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"the report has no table {name!r}")
