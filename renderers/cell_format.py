"""Cells, KPI values and changes as people read them, by column type: the text of the PDF and HTML formats.

The spreadsheet, CSV and JSON formats keep typed values; the formats meant for reading print them through
here, so a PDF and a web page of the same run show the same text for the same number:

- integer: thousands separators (``12,199``);
- decimal: two places with thousands separators (``1,234.50``);
- percent: the ratio times 100 with two places and a spaced sign (``44.12 %``);
- duration: seconds as ``h:mm:ss``, rounded to the second (hours grow past 24: ``26:00:00``);
- date: ISO (``2026-03-08``); datetime: ISO in UTC to the second (``2026-03-08T23:59:01Z``);
- None: empty.

Also the lines every readable format prints alike: periods, the data watermark, KPI changes.

A value whose Python type does not fit its column (text in a number column) is printed as it is rather than
refused: a report shows what was collected.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

from semantic.report_document import Cell, ColumnType, DocumentPeriod, Kpi

NUMERIC_TYPES = frozenset({ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.PERCENT, ColumnType.DURATION})


def is_numeric(column_type: ColumnType) -> bool:
    """Whether the column holds numbers (right-aligned in tables)."""
    return column_type in NUMERIC_TYPES


def format_cell(value: Cell, column_type: ColumnType) -> str:
    """The text of one cell of a column of ``column_type``."""
    if value is None:
        return ""
    if column_type in NUMERIC_TYPES:
        return _format_number(value, column_type)
    if column_type is ColumnType.DATETIME and isinstance(value, datetime):
        return format_datetime(value)
    if column_type is ColumnType.DATE and isinstance(value, date):
        return (value.date() if isinstance(value, datetime) else value).isoformat()
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC to the second; a naive time is taken as UTC."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def format_change(change_percent: float | None) -> str:
    """A change against the previous period with its sign (``+21.99 %``, ``-6.06 %``); empty when unknown."""
    if change_percent is None:
        return ""
    if not math.isfinite(change_percent):
        return str(change_percent)
    text = f"{abs(change_percent):,.2f} %"
    if text == "0.00 %":
        return text
    return ("+" if change_percent > 0 else "-") + text


def format_kpi_value(kpi: Kpi) -> str:
    return format_cell(kpi.value, kpi.type)


def format_kpi_previous(kpi: Kpi) -> str:
    return format_cell(kpi.previous, kpi.type)


def format_period(period: DocumentPeriod) -> str:
    """``2026-03-02 to 2026-03-08 (UTC)``: both days included, in the period's time zone."""
    return f"{period.start_date.isoformat()} to {period.end_date.isoformat()} ({period.timezone})"


def format_as_of(as_of: datetime | None) -> str:
    """The data watermark line; says so when the run recorded none."""
    if as_of is None:
        return "Data as of: not recorded"
    return f"Data as of {format_datetime(as_of)}"


def format_duration(seconds: float) -> str:
    """Seconds as ``h:mm:ss``, half a second rounding up."""
    total = math.floor(abs(seconds) + 0.5)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    sign = "-" if seconds < 0 and total else ""
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}"


def _format_number(value: Cell, column_type: ColumnType) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if column_type is ColumnType.INTEGER:
        return f"{round(value):,}"
    if column_type is ColumnType.DECIMAL:
        return f"{value:,.2f}"
    if column_type is ColumnType.PERCENT:
        return f"{value * 100:,.2f} %"
    return format_duration(value)
