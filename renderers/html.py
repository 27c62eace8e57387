"""A report document as one self-contained web page: opened from a mail attachment or a file share, on a
laptop or a phone, it shows everything without fetching anything.

The page has its style inline and no script; charts are inline SVG (``charts.chart_svg``, text drawn as
paths, so no web font is needed). It holds:

- a header: title, description, the data watermark ("Data as of ..."), period, previous period, scope;
- key figures as cards (value, change against the previous period, previous value), wrapping on a narrow
  screen;
- every drawable chart, scaled to the width of the screen;
- every table, cells printed by column type (``cell_format``), numbers aligned to the end; a table wider
  than the screen scrolls sideways in its own frame instead of widening the page.

Every text of the document is escaped, so a content title such as ``<script>`` stays text. Text elements
carry ``dir="auto"``: the browser sets each one's direction from its first strong character, so Arabic
titles and names read right to left among left-to-right ones; the page itself takes the direction of the
report's title.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

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
from renderers.charts import chart_svg, drawable
from renderers.text_direction import base_direction
from semantic.report_document import Chart, Kpi, ReportDocument, Table

# Shown for a previous value or change that is not known.
MISSING = "—"

STYLE = """
:root { --text: #1f2328; --muted: #5f6368; --rule: #d8dee4; --panel: #ffffff; --page: #f6f8fa;
  --head: #eef2f7; --up: #137333; --down: #b3261e; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; background: var(--page); color: var(--text); line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Arabic", "DejaVu Sans",
  Tahoma, sans-serif; }
header, main, footer { max-width: 64rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: clamp(1.5rem, 5vw, 2.25rem); line-height: 1.2; margin: 0.5rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 0.5rem; overflow-wrap: anywhere; }
.description { margin: 0 0 0.75rem; }
.watermark { font-weight: 600; margin: 0 0 0.5rem; }
.facts { display: flex; flex-wrap: wrap; gap: 0.25rem 1.5rem; margin: 0; color: var(--muted); }
.facts div { display: flex; gap: 0.4rem; }
.facts dt::after { content: ":"; }
.facts dd { margin: 0; color: var(--text); }
.cards { display: flex; flex-wrap: wrap; gap: 0.75rem; }
.card { flex: 1 1 11rem; background: var(--panel); border: 1px solid var(--rule); border-radius: 0.5rem;
  padding: 0.75rem 1rem; min-width: 0; }
.card .label { color: var(--muted); overflow-wrap: anywhere; }
.card .value { font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .change { font-weight: 600; font-variant-numeric: tabular-nums; }
.card .change.up { color: var(--up); }
.card .change.down { color: var(--down); }
.card .previous { color: var(--muted); font-size: 0.875rem; }
figure.chart { margin: 0 0 1rem; background: var(--panel); border: 1px solid var(--rule);
  border-radius: 0.5rem; padding: 0.5rem; }
figure.chart svg { display: block; width: 100%; height: auto; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; background: var(--panel);
  border: 1px solid var(--rule); border-radius: 0.5rem; }
table { border-collapse: collapse; min-width: 100%; font-size: 0.9rem; }
th, td { padding: 0.4rem 0.6rem; border-bottom: 1px solid var(--rule); text-align: start; vertical-align: top; }
th { background: var(--head); white-space: nowrap; }
td { min-width: 6rem; }
th.num, td.num { text-align: end; white-space: nowrap; font-variant-numeric: tabular-nums; min-width: 0; }
tbody tr:last-child td { border-bottom: none; }
.empty { color: var(--muted); }
footer { color: var(--muted); font-size: 0.875rem; }
@media print { body { background: #fff; } .table-wrap { overflow: visible; } figure.chart { break-inside: avoid; } }
"""


def render_html(document: ReportDocument, chart_svgs: Mapping[str, str] | None = None) -> bytes:
    """The web page of ``document``, UTF-8. ``chart_svgs``: charts drawn already (``chart_svg``, by chart
    name), e.g. in parallel elsewhere; the others are drawn here."""
    parts = [
        "<!DOCTYPE html>",
        f'<html dir="{base_direction(document.title)}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_text(document.title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        _header(document),
        "<main>",
    ]
    if document.kpis:
        parts.append(_kpis(document.kpis))
    charts = [chart for chart in document.charts if drawable(chart)]
    if charts:
        parts.append(_charts(document, charts, chart_svgs or {}))
    parts.extend(_table(table) for table in document.tables)
    parts += [
        "</main>",
        f"<footer><p>Generated at {_text(format_datetime(document.generated_at))}</p></footer>",
        "</body>",
        "</html>",
    ]
    return ("\n".join(parts) + "\n").encode("utf-8")


def _header(document: ReportDocument) -> str:
    facts = [("Period", format_period(document.period))]
    if document.previous_period is not None:
        facts.append(("Previous period", format_period(document.previous_period)))
    facts.append(("Scope", document.scope))
    lines = ["<header>", f'<h1 dir="auto">{_text(document.title)}</h1>']
    if document.description:
        lines.append(f'<p class="description" dir="auto">{_text(document.description)}</p>')
    lines.append(f'<p class="watermark">{_text(format_as_of(document.as_of))}</p>')
    lines.append('<dl class="facts">')
    lines += [f'<div><dt>{_text(name)}</dt><dd dir="auto">{_text(value)}</dd></div>' for name, value in facts]
    lines += ["</dl>", "</header>"]
    return "\n".join(lines)


def _kpis(kpis: Sequence[Kpi]) -> str:
    lines = ['<section class="kpis">', "<h2>Key figures</h2>", '<div class="cards">']
    for kpi in kpis:
        change = format_change(kpi.change_percent) or MISSING
        trend = _trend(kpi.change_percent)
        lines += [
            '<div class="card">',
            f'<div class="label" dir="auto">{_text(kpi.label)}</div>',
            f'<div class="value">{_text(format_kpi_value(kpi))}</div>',
            f'<div class="change{trend}" title="Change against the previous period">{_text(change)}</div>',
            f'<div class="previous">Previous period: {_text(format_kpi_previous(kpi) or MISSING)}</div>',
            "</div>",
        ]
    lines += ["</div>", "</section>"]
    return "\n".join(lines)


def _charts(document: ReportDocument, charts: Sequence[Chart], drawn: Mapping[str, str]) -> str:
    lines = ['<section class="charts">', "<h2>Charts</h2>"]
    for chart in charts:
        lines += [
            f'<figure class="chart" aria-label="{_text(chart.title)}">',
            drawn.get(chart.name) or chart_svg(document, chart),
            "</figure>",
        ]
    lines.append("</section>")
    return "\n".join(lines)


def _table(table: Table) -> str:
    numeric = [is_numeric(column.type) for column in table.columns]
    lines = ['<section class="table">', f'<h2 dir="auto">{_text(table.title)}</h2>']
    if not table.rows:
        lines += ['<p class="empty">No rows.</p>', "</section>"]
        return "\n".join(lines)
    header = "".join(
        f'<th scope="col"{_cell_attributes(is_number)}>{_text(column.label)}</th>'
        for column, is_number in zip(table.columns, numeric, strict=True)
    )
    lines += ['<div class="table-wrap">', "<table>", f"<thead><tr>{header}</tr></thead>", "<tbody>"]
    for row in table.rows:
        cells = "".join(
            f"<td{_cell_attributes(is_number)}>{_text(format_cell(value, column.type))}</td>"
            for column, value, is_number in zip(table.columns, row, numeric, strict=True)
        )
        lines.append(f"<tr>{cells}</tr>")
    lines += ["</tbody>", "</table>", "</div>", "</section>"]
    return "\n".join(lines)


def _cell_attributes(is_number: bool) -> str:
    return ' class="num"' if is_number else ' dir="auto"'


def _trend(change_percent: float | None) -> str:
    if change_percent is None or change_percent == 0:
        return ""
    return " up" if change_percent > 0 else " down"


def _text(text: str) -> str:
    return escape(text, quote=True)
