"""A report document as CSV: one file for a one-table report, else a zip of one CSV per table and the KPIs.

CSV is the format for other programs, so its cells are machine-readable rather than pretty: the header row
holds the column *names* (``completion_rate``, stable identifiers; the labels are for people and live in
the other formats), integers and decimals are plain numbers (``72.25``), a percentage is its ratio
(``0.4412``), a duration its seconds, a date ``2026-03-02``, a datetime ISO 8601 in UTC with its offset
(``2026-03-08T23:59:01+00:00``), a missing value an empty cell.

Files are UTF-8 with a byte order mark: Excel reads a CSV without one in the machine's legacy code page
and garbles Arabic and every other non-Latin text, while CSV readers that know UTF-8 skip the mark.

Text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) is prefixed with a single quote, as OWASP advises against CSV injection; numbers never are.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

from semantic.report_document import Cell, ColumnType, Kpi, ReportDocument, Table

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
ZIP_CONTENT_TYPE = "application/zip"
ENCODING = "utf-8-sig"
KPI_FILE = "kpis.csv"
# Used when a table is itself called "kpis": a table's name never holds a hyphen.
KPI_FILE_BESIDE_KPIS_TABLE = "report-kpis.csv"
KPI_COLUMNS = ("name", "label", "type", "value", "previous", "change_percent")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def render_csv(document: ReportDocument) -> tuple[bytes, str]:
    """(bytes, content type): a single CSV when the report is one table and no KPIs, else a zip of CSVs."""
    if len(document.tables) == 1 and not document.kpis:
        return table_csv(document.tables[0]), CSV_CONTENT_TYPE
    return _zip(document), ZIP_CONTENT_TYPE


def table_csv(table: Table) -> bytes:
    header = [column.name for column in table.columns]
    types = [column.type for column in table.columns]
    rows = (
        [csv_value(value, column_type) for value, column_type in zip(row, types, strict=True)] for row in table.rows
    )
    return _csv_bytes(header, rows)


def kpis_csv(kpis: Sequence[Kpi]) -> bytes:
    """One row per KPI: value and previous typed like table cells, change_percent in percent (21.99)."""
    rows = (
        [
            csv_value(kpi.name, ColumnType.TEXT),
            csv_value(kpi.label, ColumnType.TEXT),
            kpi.type.value,
            csv_value(kpi.value, kpi.type),
            csv_value(kpi.previous, kpi.type),
            csv_value(kpi.change_percent, ColumnType.DECIMAL),
        ]
        for kpi in kpis
    )
    return _csv_bytes(KPI_COLUMNS, rows)


def csv_value(value: Cell, column_type: ColumnType) -> str:
    """One cell as CSV text. Percentages stay ratios and durations seconds: the type is in the column."""
    if value is None:
        return ""
    if isinstance(value, str) or column_type is ColumnType.TEXT:
        return neutralise_formula(str(value))
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        moment = aware.astimezone(UTC)
        return moment.date().isoformat() if column_type is ColumnType.DATE else moment.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        # repr: the shortest text that reads back as the same float.
        return repr(value)
    return str(value)


def neutralise_formula(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(ENCODING)


def _zip(document: ReportDocument) -> bytes:
    files = [(f"{table.name}.csv", table_csv(table)) for table in document.tables]
    if document.kpis:
        taken = {name for name, _ in files}
        files.append((KPI_FILE_BESIDE_KPIS_TABLE if KPI_FILE in taken else KPI_FILE, kpis_csv(document.kpis)))
    # Entries are dated by the run, not by the clock: the same document gives the same bytes.
    generated = document.generated_at
    stamp = (generated if generated.tzinfo is None else generated.astimezone(UTC)).timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return out.getvalue()
