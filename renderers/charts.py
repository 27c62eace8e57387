"""The charts of a report document, drawn with matplotlib: PNG for the PDF, SVG for the web page.

Figures are built with ``matplotlib.figure.Figure`` itself, never through pyplot: pyplot keeps a global
registry of open figures and may pick an interactive backend, whereas a bare Figure belongs to its caller
alone, saves through the Agg (PNG) and SVG canvases, and is garbage once rendered. Several reports can then
be drawn at once in one process.

What each chart type draws (``Chart`` in semantic/report_document.py):

- line: one line per ``y`` column over ``x``; a date or time ``x`` gets a date axis with concise labels;
- bar: grouped bars, one per ``y`` column, for every ``x``;
- stacked_bar: the ``y`` columns stacked for every ``x``;
- pie: a slice per row, ``x`` naming it and ``y[0]`` sizing it (negative and missing sizes count as 0);
- heatmap: hour of day (``x``, 0-23) across, weekday (``series``, 1 = Monday .. 7 = Sunday) down, the
  colour the value ``y[0]`` (cells without a row are 0, rows outside the grid are left out);
- table: nothing is drawn (``drawable`` is false); the table alone stands for it.

``top_n`` keeps the first n rows, ``colors`` colour the series in order (the default palette after them),
``title``, ``x_label`` and ``y_label`` label the chart; the axis labels default to the columns' labels.

Right-to-left text: matplotlib from 3.11 lays text out with libraqm, which orders bidirectional text and
joins Arabic letters, so labels are passed as they are; an earlier matplotlib draws code points one by one,
and gets every label in display form instead (``text_direction.display_form``: reshaped, visual order).
Text is drawn in DejaVu Sans, matplotlib's own font, which has Arabic glyphs (with the joined forms).
Dollar signs are escaped: matplotlib would take the text between two of them for a formula.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
from matplotlib import ft2font
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, LinearSegmentedColormap, is_color_like
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from renderers.cell_format import format_cell, format_duration
from renderers.text_direction import display_form
from semantic.report_document import Cell, Chart, ChartType, Column, ColumnType, ReportDocument, Table

FONT_FAMILY = "DejaVu Sans"
# Width and height in inches: 16:9, the full width of an A4 page or of a laptop's reading column.
FIGURE_SIZE = (8.0, 4.5)
# matplotlib's "tab10": distinct hues that stay apart for the common forms of colour blindness.
DEFAULT_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
HEATMAP_COLORMAP = "viridis"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS = 24
# Markers on a line chart up to this many points; past it they crowd the line.
MAX_MARKED_POINTS = 31

# Whether matplotlib shapes and orders text itself (libraqm, from 3.11).
MATPLOTLIB_LAYS_OUT_TEXT = getattr(ft2font, "__libraqm_version__", None) is not None

_SVG_METADATA: dict[str, str | None] = {"Format": None, "Type": None, "Creator": None, "Date": None}
_PNG_METADATA: dict[str, str | None] = {"Software": None}
_SVG_COMMENT = re.compile(r"<!--.*?-->\s*", re.DOTALL)


def drawable(chart: Chart) -> bool:
    """Whether the chart is drawn at all (a ``table`` chart is the table alone)."""
    return chart.chart_type is not ChartType.TABLE


def chart_png(document: ReportDocument, chart: Chart, *, dpi: int = 144) -> bytes:
    """The chart as a PNG image (8 × 4.5 inches at ``dpi``)."""
    figure = chart_figure(document, chart)
    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, metadata=_PNG_METADATA)
        return buffer.getvalue()
    finally:
        figure.clear()


def chart_svg(document: ReportDocument, chart: Chart) -> str:
    """The chart as an ``<svg>`` element to inline in HTML: no XML prolog, doctype, metadata or comments.

    Text is drawn as paths, so the page needs no font; element ids are random per chart, so several charts
    inlined in one page do not collide."""
    figure = chart_figure(document, chart)
    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="svg", metadata=_SVG_METADATA)
    finally:
        figure.clear()
    text = buffer.getvalue().decode("utf-8")
    return _SVG_COMMENT.sub("", text[text.index("<svg") :]).strip()


def chart_figure(document: ReportDocument, chart: Chart) -> Figure:
    """The matplotlib figure of a drawable chart; ValueError for a ``table`` chart (see ``drawable``)."""
    if not drawable(chart):
        raise ValueError(f"chart {chart.name!r} is a table and is not drawn")
    table = document.table(chart.table)
    rows = table.rows[: chart.top_n] if chart.top_n is not None else table.rows
    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.tick_params(labelfontfamily=FONT_FAMILY)
    if rows:
        _DRAW[chart.chart_type](axes, chart, table, rows)
    else:
        _no_data(axes)
    axes.set_title(_text(chart.title), fontfamily=FONT_FAMILY, fontsize=13)
    return figure


def _line(axes: Axes, chart: Chart, table: Table, rows: list[list[Cell]]) -> None:
    x_column = table.columns[table.column(chart.x)]
    x_index = table.column(chart.x)
    colors = _series_colors(chart, len(chart.y))
    if x_column.type in (ColumnType.DATE, ColumnType.DATETIME, ColumnType.INTEGER, ColumnType.DECIMAL):
        rows = [row for row in rows if isinstance(row[x_index], int | float | date)]
        xs: list[Any] = [row[x_index] for row in rows]
    else:
        xs = list(range(len(rows)))
        _category_ticks(axes, [row[x_index] for row in rows], x_column)
    marker = "o" if len(rows) <= MAX_MARKED_POINTS else None
    for number, name in enumerate(chart.y):
        index = table.column(name)
        ys = [_number(row[index], missing=math.nan) for row in rows]
        axes.plot(xs, ys, color=colors[number], marker=marker, label=_text(table.columns[index].label))
    if x_column.type in (ColumnType.DATE, ColumnType.DATETIME):
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    _axis_labels(axes, chart, table)
    _value_axis(axes, [table.columns[table.column(name)] for name in chart.y])
    _legend(axes, chart)
    axes.grid(axis="y", alpha=0.3)


def _bar(axes: Axes, chart: Chart, table: Table, rows: list[list[Cell]]) -> None:
    x_index = table.column(chart.x)
    positions = np.arange(len(rows))
    colors = _series_colors(chart, len(chart.y))
    width = 0.8 / len(chart.y)
    for number, name in enumerate(chart.y):
        index = table.column(name)
        heights = [_number(row[index], missing=0.0) for row in rows]
        offset = (number - (len(chart.y) - 1) / 2) * width
        axes.bar(positions + offset, heights, width, color=colors[number], label=_text(table.columns[index].label))
    _category_ticks(axes, [row[x_index] for row in rows], table.columns[x_index])
    _axis_labels(axes, chart, table)
    _value_axis(axes, [table.columns[table.column(name)] for name in chart.y])
    _legend(axes, chart)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)


def _stacked_bar(axes: Axes, chart: Chart, table: Table, rows: list[list[Cell]]) -> None:
    x_index = table.column(chart.x)
    positions = np.arange(len(rows))
    colors = _series_colors(chart, len(chart.y))
    bottom = np.zeros(len(rows))
    for number, name in enumerate(chart.y):
        index = table.column(name)
        heights = np.array([_number(row[index], missing=0.0) for row in rows])
        axes.bar(positions, heights, 0.8, bottom=bottom, color=colors[number], label=_text(table.columns[index].label))
        bottom = bottom + heights
    _category_ticks(axes, [row[x_index] for row in rows], table.columns[x_index])
    _axis_labels(axes, chart, table)
    _value_axis(axes, [table.columns[table.column(name)] for name in chart.y])
    _legend(axes, chart)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)


def _pie(axes: Axes, chart: Chart, table: Table, rows: list[list[Cell]]) -> None:
    x_index = table.column(chart.x)
    x_column = table.columns[x_index]
    size_index = table.column(chart.y[0])
    sizes = [max(_number(row[size_index], missing=0.0), 0.0) for row in rows]
    if not math.isfinite(sum(sizes)) or sum(sizes) <= 0:
        _no_data(axes)
        return
    axes.pie(
        sizes,
        labels=[_text(format_cell(row[x_index], x_column.type)) for row in rows],
        colors=_series_colors(chart, len(rows)),
        autopct="%1.1f%%",
        startangle=90,
        counterclock=False,
        wedgeprops={"edgecolor": "white"},
        textprops={"fontfamily": FONT_FAMILY},
    )
    axes.set_aspect("equal")


def _heatmap(axes: Axes, chart: Chart, table: Table, rows: list[list[Cell]]) -> None:
    if chart.series is None:
        raise ValueError(f"heatmap chart {chart.name!r} names no series column (the weekday)")
    values = heatmap_values(table, rows, hour=chart.x, weekday=chart.series, value=chart.y[0])
    image = axes.imshow(values, aspect="auto", cmap=_colormap(chart), interpolation="nearest")
    axes.set_xticks(range(HOURS), [str(hour) for hour in range(HOURS)], fontsize=8)
    axes.set_yticks(range(len(WEEKDAYS)), list(WEEKDAYS))
    colorbar = axes.figure.colorbar(image, ax=axes)
    colorbar.set_label(_text(table.columns[table.column(chart.y[0])].label), fontfamily=FONT_FAMILY)
    _axis_labels(axes, chart, table, y_column=chart.series)


def heatmap_values(table: Table, rows: Sequence[Sequence[Cell]], *, hour: str, weekday: str, value: str) -> np.ndarray:
    """The 7 × 24 grid of a heatmap: row weekday - 1 (Monday first), column the hour; rows repeating a cell
    add up, cells without a row are 0, rows outside the grid are left out."""
    hour_index, weekday_index, value_index = table.column(hour), table.column(weekday), table.column(value)
    grid = np.zeros((len(WEEKDAYS), HOURS))
    for row in rows:
        day, hour_of_day = _whole(row[weekday_index]), _whole(row[hour_index])
        if day is None or hour_of_day is None or not (1 <= day <= len(WEEKDAYS) and 0 <= hour_of_day < HOURS):
            continue
        grid[day - 1, hour_of_day] += _number(row[value_index], missing=0.0)
    return grid


_DRAW: dict[ChartType, Callable[[Axes, Chart, Table, list[list[Cell]]], None]] = {
    ChartType.LINE: _line,
    ChartType.BAR: _bar,
    ChartType.STACKED_BAR: _stacked_bar,
    ChartType.PIE: _pie,
    ChartType.HEATMAP: _heatmap,
}


def _text(text: str) -> str:
    """``text`` as handed to matplotlib."""
    drawn = text if MATPLOTLIB_LAYS_OUT_TEXT else display_form(text)
    return drawn.replace("$", r"\$")


def _number(value: Cell, *, missing: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return missing
    return float(value)


def _whole(value: Cell) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def _series_colors(chart: Chart, count: int) -> list[str]:
    chosen = [color for color in chart.colors if is_color_like(color)]
    return [chosen[n] if n < len(chosen) else DEFAULT_PALETTE[n % len(DEFAULT_PALETTE)] for n in range(count)]


def _colormap(chart: Chart) -> Colormap | str:
    chosen = [color for color in chart.colors if is_color_like(color)]
    if not chosen:
        return HEATMAP_COLORMAP
    stops = chosen if len(chosen) > 1 else ["white", chosen[0]]
    return LinearSegmentedColormap.from_list(f"{chart.name}_colors", stops)


def _category_ticks(axes: Axes, values: list[Cell], column: Column) -> None:
    labels = [_text(_category_label(value, column.type, values)) for value in values]
    crowded = len(labels) > 8 or any(len(label) > 12 for label in labels)
    axes.set_xticks(
        range(len(labels)), labels, rotation=30 if crowded else 0, horizontalalignment="right" if crowded else "center"
    )


def _category_label(value: Cell, column_type: ColumnType, values: list[Cell]) -> str:
    """Days of one year as "2 Mar"; other values as cells are printed."""
    if column_type is ColumnType.DATE and isinstance(value, date) and not isinstance(value, datetime):
        years = {other.year for other in values if isinstance(other, date)}
        if len(years) == 1:
            return f"{value.day} {value:%b}"
    return format_cell(value, column_type)


def _axis_labels(axes: Axes, chart: Chart, table: Table, *, y_column: str | None = None) -> None:
    x_label = chart.x_label if chart.x_label is not None else table.columns[table.column(chart.x)].label
    if chart.y_label is not None:
        y_label = chart.y_label
    elif y_column is not None:
        y_label = table.columns[table.column(y_column)].label
    elif len(chart.y) == 1:
        y_label = table.columns[table.column(chart.y[0])].label
    else:
        y_label = ""
    axes.set_xlabel(_text(x_label), fontfamily=FONT_FAMILY)
    axes.set_ylabel(_text(y_label), fontfamily=FONT_FAMILY)


def _value_axis(axes: Axes, columns: list[Column]) -> None:
    """Value ticks printed like the cells when every series has one type (whole and decimal numbers alike)."""
    types = {column.type for column in columns}
    if types == {ColumnType.INTEGER, ColumnType.DECIMAL}:
        types = {ColumnType.DECIMAL}
    if len(types) != 1:
        return
    column_type = types.pop()
    if column_type is ColumnType.PERCENT:
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    elif column_type is ColumnType.INTEGER:
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:,.0f}"))
    elif column_type is ColumnType.DECIMAL:
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: _grouped(value)))
    elif column_type is ColumnType.DURATION:
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: format_duration(value)))


def _grouped(value: float) -> str:
    """A tick value with thousands separators and no trailing zeros."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.6f}".rstrip("0").rstrip(".")


def _legend(axes: Axes, chart: Chart) -> None:
    if len(chart.y) > 1:
        axes.legend(prop={"family": FONT_FAMILY})


def _no_data(axes: Axes) -> None:
    axes.set_axis_off()
    axes.text(0.5, 0.5, "No data", horizontalalignment="center", verticalalignment="center", fontfamily=FONT_FAMILY)
