"""Report documents for the renderer tests: every column type, every chart type, right-to-left text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from semantic.report_document import (
    Chart,
    ChartType,
    Column,
    ColumnType,
    DocumentPeriod,
    Kpi,
    ReportDocument,
    Table,
)

AS_OF = datetime(2026, 3, 9, 6, 0, 12, tzinfo=UTC)
# Arabic titles and content names are common on the platform: "Weekly performance", "Morning news".
ARABIC_TITLE = "الأداء الأسبوعي"
ARABIC_CONTENT = "أخبار الصباح"


def daily_table(days: int = 7) -> Table:
    start = date(2026, 3, 2)
    rows = [[start + timedelta(days=n), 1000 + 37 * n, 400 + 11 * n, round(0.41 + n / 100, 4)] for n in range(days)]
    return Table(
        name="daily",
        title="Views per day",
        columns=[
            Column(name="day", label="Day", type=ColumnType.DATE),
            Column(name="views", label="Views", type=ColumnType.INTEGER),
            Column(name="unique_views", label="Unique viewers", type=ColumnType.INTEGER),
            Column(name="completion_rate", label="Completion rate", type=ColumnType.PERCENT),
        ],
        rows=rows,
    )


def top_content_table() -> Table:
    return Table(
        name="top_content",
        title="Top content",
        columns=[
            Column(name="content_id", label="Content", type=ColumnType.TEXT),
            Column(name="title", label="Title", type=ColumnType.TEXT),
            Column(name="views", label="Views", type=ColumnType.INTEGER),
            Column(name="average_view_duration", label="Average view", type=ColumnType.DURATION),
            Column(name="engagement", label="Engagement score", type=ColumnType.DECIMAL),
        ],
        rows=[
            ["c-1", ARABIC_CONTENT, 5120, 311.5, 72.25],
            ["c-2", "Evening sports", 4210, 95.0, 61.0],
            ["c-3", 'Cooking, with commas "and quotes"', 1999, 1805.25, 40.5],
            ["c-4", "Science hour", 870, 0.0, 12.75],
        ],
    )


def heatmap_table() -> Table:
    rows = [[weekday, hour, (weekday * 31 + hour * 7) % 50] for weekday in range(1, 8) for hour in range(24)]
    return Table(
        name="hour_by_weekday",
        title="Views by hour and weekday",
        columns=[
            Column(name="weekday", label="Weekday", type=ColumnType.INTEGER),
            Column(name="hour", label="Hour", type=ColumnType.INTEGER),
            Column(name="views", label="Views", type=ColumnType.INTEGER),
        ],
        rows=rows,
    )


def devices_table() -> Table:
    return Table(
        name="devices",
        title="Views by device",
        columns=[
            Column(name="device", label="Device", type=ColumnType.TEXT),
            Column(name="views", label="Views", type=ColumnType.INTEGER),
            Column(name="last_seen", label="Last view", type=ColumnType.DATETIME),
        ],
        rows=[
            ["desktop", 6000, datetime(2026, 3, 8, 23, 59, 1, tzinfo=UTC)],
            ["mobile", 5200, datetime(2026, 3, 8, 23, 58, 0, tzinfo=UTC)],
            ["tablet", 999, None],
        ],
    )


def full_document(*, title: str = "Weekly content performance") -> ReportDocument:
    """Four charts (line, stacked bar, pie, heatmap) over four tables, KPIs with changes, every column type."""
    return ReportDocument(
        report_id="rep_sample",
        run_id="run_sample",
        title=title,
        description="Views, viewers and completion of every content, 2 to 8 March 2026.",
        report_type="content_performance",
        generated_at=AS_OF + timedelta(seconds=3),
        as_of=AS_OF,
        period=DocumentPeriod(start_date=date(2026, 3, 2), end_date=date(2026, 3, 8)),
        previous_period=DocumentPeriod(start_date=date(2026, 2, 23), end_date=date(2026, 3, 1)),
        scope="all content",
        kpis=[
            Kpi(name="views", label="Views", value=12199, previous=10000, change_percent=21.99),
            Kpi(name="unique_views", label="Unique viewers", value=3100, previous=3300, change_percent=-6.06),
            Kpi(
                name="completion_rate",
                label="Completion rate",
                value=0.4412,
                previous=None,
                change_percent=None,
                type=ColumnType.PERCENT,
            ),
        ],
        tables=[daily_table(), top_content_table(), heatmap_table(), devices_table()],
        charts=[
            Chart(
                name="views_per_day",
                title="Views per day",
                chart_type=ChartType.LINE,
                table="daily",
                x="day",
                y=["views", "unique_views"],
                x_label="Day",
                y_label="Views",
            ),
            Chart(
                name="top_content",
                title="Top content",
                chart_type=ChartType.STACKED_BAR,
                table="top_content",
                x="title",
                y=["views", "engagement"],
                top_n=3,
                colors=["#1f77b4", "orange"],
            ),
            Chart(name="devices", title="Devices", chart_type=ChartType.PIE, table="devices", x="device", y=["views"]),
            Chart(
                name="heatmap",
                title="When people watch",
                chart_type=ChartType.HEATMAP,
                table="hour_by_weekday",
                x="hour",
                y=["views"],
                series="weekday",
            ),
        ],
    )


def one_table_document() -> ReportDocument:
    """A simple report: one table, no charts, no KPIs."""
    return ReportDocument(
        report_id="rep_simple",
        run_id="run_simple",
        title="Daily views",
        report_type="custom",
        generated_at=AS_OF,
        as_of=AS_OF,
        period=DocumentPeriod(start_date=date(2026, 3, 2), end_date=date(2026, 3, 8)),
        tables=[daily_table()],
    )


def arabic_document() -> ReportDocument:
    """Right-to-left title and content names, with a bar chart whose labels are Arabic."""
    document = full_document(title=ARABIC_TITLE)
    document.charts.append(
        Chart(
            name="arabic_bars",
            title=ARABIC_TITLE,
            chart_type=ChartType.BAR,
            table="top_content",
            x="title",
            y=["views"],
        )
    )
    return document


def table_chart_document() -> ReportDocument:
    """The full document with a fifth chart of type table, which draws nothing."""
    document = full_document()
    document.charts.append(
        Chart(
            name="devices_table", title="Devices", chart_type=ChartType.TABLE, table="devices", x="device", y=["views"]
        )
    )
    return document


def script_title_document() -> ReportDocument:
    """Markup in a report title and in a content title, which every format must print as text."""
    document = full_document(title="<script>alert(1)</script> report")
    top_content = document.table("top_content")
    top_content.rows[1][top_content.column("title")] = "<script>alert(1)</script>"
    return document


def long_table_document(days: int = 120) -> ReportDocument:
    """One table of ``days`` rows: several pages long."""
    document = one_table_document()
    document.tables = [daily_table(days)]
    return document


def wide_table_document() -> ReportDocument:
    """One table of twelve text columns, too wide for a portrait page."""
    columns = [Column(name=f"column_{n}", label=f"Column number {n}", type=ColumnType.TEXT) for n in range(12)]
    document = one_table_document()
    document.tables = [
        Table(
            name="wide",
            title="Wide table",
            columns=columns,
            rows=[[f"value {row}-{n} of the wide table" for n in range(12)] for row in range(3)],
        )
    ]
    return document
