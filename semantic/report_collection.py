"""A report's data, collected for whom the run is for and pinned to one data watermark.

Built-in types run their template's analytics queries (semantic/report_templates.py) through ``Answers``
with the requester as principal: the role is checked metric by metric, the content scope narrows (or
refuses) each table, and every table is computed at the same watermark, which the document carries as
``as_of``. A custom report runs its saved query (analytics query, funnel, retention, paths,
stickiness) as the requester: a query becomes a table and KPIs, the analyses their lists of rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from core.access import Principal
from core.models import utc_now
from semantic.analytics_query import AnalyticsQueryRequest, AnalyticsQueryService
from semantic.answers import Answers
from semantic.content_metadata import ContentMetadataStore
from semantic.content_scope import describe
from semantic.freshness import Watermark
from semantic.public_catalog import DIMENSIONS, METRICS
from semantic.report_definitions import SAVED_QUERY_SOURCE, ReportDateRange
from semantic.report_document import (
    Cell,
    Chart,
    ChartType,
    Column,
    ColumnType,
    DocumentPeriod,
    Kpi,
    ReportDocument,
    Table,
)
from semantic.report_templates import DEFAULT_TOP_N, TEMPLATES, TableSpec, Template
from storage.reports import ReportRun, StoredReport

# Runs a saved query as a principal: (saved query id, principal) -> (kind, name, result).
SavedQueryRunner = Callable[[str, Principal], Awaitable[tuple[str, str, Any]]]

_LABELS = {"bucket": "Period", "hour_of_day": "Hour", "weekday": "Weekday", "content_id": "Content", "title": "Title"}
# Charts stay legible: a bar or pie chart of a long table draws its first rows only.
MAX_CHART_ROWS = 20


@dataclass(slots=True)
class ReportSources:
    """What collection reads through."""

    query: AnalyticsQueryService
    answers: Answers
    metadata: ContentMetadataStore
    saved_query: SavedQueryRunner


def label(name: str) -> str:
    return _LABELS.get(name) or name.replace("_", " ").capitalize()


def metric_type(name: str) -> ColumnType:
    entry = METRICS[name]
    if entry.unit == "ratio":
        return ColumnType.PERCENT
    if entry.unit == "seconds":
        return ColumnType.DURATION
    return ColumnType.INTEGER if entry.type == "integer" else ColumnType.DECIMAL


def dimension_type(name: str, granularity: str) -> ColumnType:
    if name == "bucket":
        return ColumnType.DATETIME if granularity == "hour" else ColumnType.DATE
    entry = DIMENSIONS[name]
    return {"integer": ColumnType.INTEGER, "date": ColumnType.DATE, "datetime": ColumnType.DATETIME}.get(
        entry.type, ColumnType.TEXT
    )


def report_period(report: StoredReport, now: datetime) -> tuple[ReportDateRange, date, date]:
    date_range = ReportDateRange.model_validate(report.date_range)
    today = now.astimezone(ZoneInfo(date_range.timezone)).date()
    start, end = date_range.dates(today)
    return date_range, start, end


async def collect(
    report: StoredReport, run: ReportRun, principal: Principal, sources: ReportSources, *, now: datetime | None = None
) -> ReportDocument:
    """The report's document for ``principal`` (the requester, or the owner for a scheduled run)."""
    now = now or utc_now()
    date_range, start, end = report_period(report, now)
    watermark = await sources.answers.watermark()
    days = (end - start).days + 1
    previous = DocumentPeriod(
        start_date=start - timedelta(days=days), end_date=start - timedelta(days=1), timezone=date_range.timezone
    )
    document = ReportDocument(
        report_id=report.id,
        run_id=run.id,
        title=report.name,
        description=report.description,
        report_type=report.report_type,
        generated_at=now,
        as_of=watermark.as_of,
        period=DocumentPeriod(start_date=start, end_date=end, timezone=date_range.timezone),
        previous_period=previous,
        scope=describe(principal.scope),
    )
    template = TEMPLATES.get(report.report_type)
    if template is None:
        await _collect_custom(document, report, principal, sources)
    else:
        await _collect_template(document, template, report, principal, sources, date_range, start, end, watermark)
    return ReportDocument.model_validate(document.model_dump())


# --- built-in types -----------------------------------------------------------------------------------


async def _collect_template(
    document: ReportDocument,
    template: Template,
    report: StoredReport,
    principal: Principal,
    sources: ReportSources,
    date_range: ReportDateRange,
    start: date,
    end: date,
    watermark: Watermark,
) -> None:
    metrics = tuple(report.filters.get("metrics") or template.default_metrics)
    filters = [
        {"dimension": name, "op": "in", "values": value if isinstance(value, list) else [value]}
        for name, value in sorted(report.filters.items())
        if name != "metrics"
    ]
    top_n = int(report.visualization_config.get("top_n", DEFAULT_TOP_N))
    base: dict[str, Any] = {
        "filters": filters,
        "date_range": {"start_date": start.isoformat(), "end_date": end.isoformat()},
        "granularity": date_range.granularity,
        "timezone": date_range.timezone,
    }

    async def run(body: dict[str, Any]) -> dict[str, Any]:
        request = sources.query.resolve(AnalyticsQueryRequest.parse({**base, **body}))
        answer = await sources.answers.answer(
            "analytics_query",
            request,
            principal,
            lambda at: sources.query.run(request, principal.role, at),
            at=watermark,
        )
        result: dict[str, Any] = answer.json()
        return result

    kpi_body = {"metrics": list(metrics), "compare_to": "previous_period", "limit": 1}
    specs = template.tables
    results = await asyncio.gather(
        run(kpi_body),
        *(
            run(
                {
                    "metrics": list(spec.metrics or metrics),
                    "dimensions": list(spec.dimensions),
                    "order_by": [{"field": f, "direction": d} for f, d in spec.order_by],
                    "limit": spec.limit or top_n,
                }
            )
            for spec in specs
        ),
    )
    kpis, tables = results[0], results[1:]
    compare = kpis.get("compare_totals") or {}
    for name in metrics:
        value = kpis["totals"].get(name)
        before = compare.get(name) or {}
        document.kpis.append(
            Kpi(
                name=name,
                label=label(name),
                value=value if value is not None else 0,
                previous=before.get("value"),
                change_percent=before.get("change_percent"),
                type=metric_type(name),
            )
        )
    for spec, result in zip(specs, tables, strict=True):
        table = _table(spec, result, spec.metrics or metrics, date_range.granularity)
        if spec.name == "top_content":
            table = await _with_titles(table, sources.metadata)
        if spec.name == "zero_result_queries":
            table.rows = [row for row in table.rows if row[-1]]
        document.tables.append(table)
        chart = _chart(spec, table, report, top_n)
        if chart is not None:
            document.charts.append(chart)


def _table(spec: TableSpec, result: dict[str, Any], metrics: tuple[str, ...], granularity: str) -> Table:
    columns = [Column(name=d, label=label(d), type=dimension_type(d, granularity)) for d in spec.dimensions]
    columns += [Column(name=m, label=label(m), type=metric_type(m)) for m in metrics]
    rows = [[_cell(row.get(column.name), column.type) for column in columns] for row in result["rows"]]
    return Table(name=spec.name, title=spec.title, columns=columns, rows=rows)


def _cell(value: Any, column_type: ColumnType) -> Cell:
    if value is None:
        return None
    if column_type is ColumnType.DATE and isinstance(value, str):
        return date.fromisoformat(value[:10])
    if column_type is ColumnType.DATETIME and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, str | int | float):
        return value
    return str(value)


async def _with_titles(table: Table, metadata: ContentMetadataStore) -> Table:
    """The top content with each one's title (from content metadata) beside its id."""
    ids = [str(row[0]) for row in table.rows]
    known = await metadata.get_many(ids) if ids else {}
    columns = [table.columns[0], Column(name="title", label=label("title")), *table.columns[1:]]
    rows = [[row[0], getattr(known.get(str(row[0])), "title", None) or "", *row[1:]] for row in table.rows]
    return Table(name=table.name, title=table.title, columns=columns, rows=rows)


def _chart(spec: TableSpec, table: Table, report: StoredReport, top_n: int) -> Chart | None:
    chart_type = spec.chart
    if report.chart_type == ChartType.TABLE.value:
        return None
    if spec.primary and report.chart_type:
        chosen = ChartType(report.chart_type)
        # A heatmap needs the hour × weekday table: the series over time keeps its own chart type.
        chart_type = chosen if chosen is not ChartType.HEATMAP else spec.chart
    if chart_type is None or chart_type is ChartType.TABLE or spec.x is None or not table.rows:
        return None
    metric_columns = [c.name for c in table.columns if c.name not in spec.dimensions and c.name != "title"]
    x = "title" if spec.name == "top_content" else spec.x
    single = chart_type in {ChartType.PIE, ChartType.HEATMAP}
    config = report.visualization_config
    return Chart(
        name=spec.name,
        title=(config.get("title") if spec.primary and config.get("title") else spec.title),
        chart_type=chart_type,
        table=table.name,
        x=x,
        y=metric_columns[:1] if single or not spec.primary else metric_columns,
        series=spec.series if chart_type is ChartType.HEATMAP else None,
        top_n=None if spec.primary or chart_type is ChartType.HEATMAP else min(top_n, MAX_CHART_ROWS),
        colors=list(config.get("colors", [])),
        x_label=config.get("x_label") if spec.primary else None,
        y_label=config.get("y_label") if spec.primary else None,
    )


# --- custom reports -----------------------------------------------------------------------------------


async def _collect_custom(
    document: ReportDocument, report: StoredReport, principal: Principal, sources: ReportSources
) -> None:
    saved_query_id = report.data_source.removeprefix(SAVED_QUERY_SOURCE)
    kind, name, result = await sources.saved_query(saved_query_id, principal)
    data = to_jsonable_python(result.model_dump(mode="json") if isinstance(result, BaseModel) else result)
    if kind == "query":
        _query_result(document, data)
        return
    _analysis_result(document, kind, name, data)


def _query_result(document: ReportDocument, data: dict[str, Any]) -> None:
    columns = []
    for column in data["columns"]:
        if column["kind"] == "metric":
            column_type = metric_type(column["name"])
        else:
            column_type = {"integer": ColumnType.INTEGER, "date": ColumnType.DATE, "datetime": ColumnType.DATETIME}.get(
                column["type"], ColumnType.TEXT
            )
        columns.append(Column(name=column["name"], label=label(column["name"]), type=column_type))
    rows = [[_cell(row.get(c.name), c.type) for c in columns] for row in data["rows"]]
    document.tables.append(Table(name="result", title="Result", columns=columns, rows=rows))
    compare = data.get("compare_totals") or {}
    for name, value in data["totals"].items():
        if name in METRICS and isinstance(value, int | float):
            before = compare.get(name) or {}
            document.kpis.append(
                Kpi(
                    name=name,
                    label=label(name),
                    value=value,
                    previous=before.get("value"),
                    change_percent=before.get("change_percent"),
                    type=metric_type(name),
                )
            )
    if data.get("as_of"):
        document.as_of = datetime.fromisoformat(data["as_of"])


def _analysis_result(document: ReportDocument, kind: str, name: str, data: Any) -> None:
    """An analysis (funnel, retention, paths, stickiness): its top-level numbers as KPIs, each list of
    flat rows as a table."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            document.kpis.append(
                Kpi(
                    name=key,
                    label=label(key),
                    value=value,
                    type=ColumnType.INTEGER if isinstance(value, int) else ColumnType.DECIMAL,
                )
            )
        elif key == "as_of" and isinstance(value, str):
            document.as_of = datetime.fromisoformat(value)
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            table = _flat_table(key, value)
            if table is not None:
                document.tables.append(table)
    if not document.tables:
        document.tables.append(
            Table(
                name="result",
                title=f"{kind} {name}",
                columns=[Column(name="value", label="Value")],
                rows=[[str(data)[:10_000]]],
            )
        )


def _flat_table(key: str, items: list[dict[str, Any]]) -> Table | None:
    names = [k for k, v in items[0].items() if v is None or isinstance(v, str | int | float)]
    if not names:
        return None
    columns = []
    for column_name in names:
        sample = next((item.get(column_name) for item in items if item.get(column_name) is not None), None)
        column_type = ColumnType.TEXT
        if isinstance(sample, bool):
            column_type = ColumnType.TEXT
        elif isinstance(sample, int):
            column_type = ColumnType.INTEGER
        elif isinstance(sample, float):
            column_type = ColumnType.PERCENT if column_name.endswith(("rate", "ratio")) else ColumnType.DECIMAL
        columns.append(Column(name=_column_name(column_name), label=label(column_name), type=column_type))
    rows: list[list[Cell]] = []
    for item in items:
        row: list[Cell] = []
        for column_name, column in zip(names, columns, strict=True):
            value = item.get(column_name)
            row.append(str(value) if column.type is ColumnType.TEXT and value is not None else value)
        rows.append(row)
    return Table(name=_column_name(key), title=label(key), columns=columns, rows=rows)


def _column_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_") or "column"
    return cleaned if cleaned[0].isalpha() else f"c_{cleaned}"
