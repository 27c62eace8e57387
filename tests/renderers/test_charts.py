"""Charts drawn from report documents: every type to PNG and SVG, what each draws, and right-to-left labels."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import uharfbuzz
from arabic_reshaper import reshape
from bidi.algorithm import get_display
from fontTools.ttLib import TTFont
from matplotlib import cbook
from matplotlib.colors import to_rgba
from matplotlib.dates import ConciseDateFormatter
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.patches import Wedge

from renderers.cell_format import format_cell
from renderers.charts import (
    DEFAULT_PALETTE,
    FONT_FAMILY,
    MATPLOTLIB_LAYS_OUT_TEXT,
    chart_figure,
    chart_png,
    chart_svg,
    drawable,
)
from semantic.report_document import Chart, ChartType, ReportDocument
from tests.renderers.sample_documents import (
    ARABIC_CONTENT,
    ARABIC_TITLE,
    arabic_document,
    full_document,
    table_chart_document,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def _chart(document: ReportDocument, name: str) -> Chart:
    return next(chart for chart in document.charts if chart.name == name)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    assert png[:8] == PNG_SIGNATURE
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_the_samples_cover_every_chart_type() -> None:
    assert {chart.chart_type for chart in table_chart_document().charts} | {ChartType.BAR} == set(ChartType)
    assert ChartType.BAR in {chart.chart_type for chart in arabic_document().charts}


@pytest.mark.parametrize("name", [chart.name for chart in arabic_document().charts])
def test_every_chart_type_renders_to_png_and_svg(name: str) -> None:
    document = arabic_document()
    chart = _chart(document, name)
    png = chart_png(document, chart, dpi=50)
    # 8 × 4.5 inches at 50 dots per inch.
    assert png_size(png) == (400, 225)
    assert len(png) > 2000
    svg = chart_svg(document, chart)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<!--" not in svg and "<metadata" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.attrib["viewBox"] == "0 0 576 324"
    # Text is drawn as paths: the page that inlines the SVG needs no font.
    assert root.find(f".//{SVG}text") is None


def test_dpi_sets_the_png_size() -> None:
    document = full_document()
    assert png_size(chart_png(document, document.charts[0])) == (1152, 648)


def test_a_table_chart_is_not_drawn() -> None:
    document = table_chart_document()
    table_chart = _chart(document, "devices_table")
    assert not drawable(table_chart)
    assert [chart.name for chart in document.charts if drawable(chart)] == [
        "views_per_day",
        "top_content",
        "devices",
        "heatmap",
    ]
    with pytest.raises(ValueError, match="devices_table"):
        chart_png(document, table_chart)
    with pytest.raises(ValueError, match="devices_table"):
        chart_svg(document, table_chart)


def test_line_chart_draws_a_line_per_series_over_dates() -> None:
    document = full_document()
    chart = _chart(document, "views_per_day")
    table = document.table("daily")
    axes = chart_figure(document, chart).axes[0]
    lines = axes.get_lines()
    assert len(lines) == len(chart.y) == 2
    for line, name, color in zip(lines, chart.y, DEFAULT_PALETTE, strict=False):
        assert list(line.get_ydata()) == [row[table.column(name)] for row in table.rows]
        assert to_rgba(line.get_color()) == to_rgba(color)
    assert isinstance(axes.xaxis.get_major_formatter(), ConciseDateFormatter)
    assert axes.get_title() == chart.title
    assert (axes.get_xlabel(), axes.get_ylabel()) == (chart.x_label, chart.y_label)
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["Views", "Unique viewers"]


def test_stacked_bars_keep_the_top_n_rows_with_the_chart_colours() -> None:
    document = full_document()
    chart = _chart(document, "top_content")
    table = document.table("top_content")
    assert chart.top_n == 3 and len(table.rows) == 4
    axes = chart_figure(document, chart).axes[0]
    bars = [bar for container in axes.containers for bar in container]
    assert len(bars) == chart.top_n * len(chart.y)
    kept = table.rows[: chart.top_n]
    views = [row[table.column("views")] for row in kept]
    engagement = [row[table.column("engagement")] for row in kept]
    first, second = axes.containers
    assert [bar.get_height() for bar in first] == views
    assert [bar.get_y() for bar in first] == [0, 0, 0]
    # The second series sits on the first.
    assert [bar.get_height() for bar in second] == engagement
    assert [bar.get_y() for bar in second] == views
    assert {bar.get_facecolor() for bar in first} == {to_rgba("#1f77b4")}
    assert {bar.get_facecolor() for bar in second} == {to_rgba("orange")}
    labels = [label.get_text() for label in axes.get_xticklabels()]
    assert labels == [row[table.column("title")] for row in kept]
    # No axis label given: the x column's label.
    assert axes.get_xlabel() == "Title"


def test_grouped_bars_draw_every_series_for_every_row() -> None:
    document = full_document()
    chart = Chart(
        name="daily_bars", title="Daily", chart_type=ChartType.BAR, table="daily", x="day", y=["views", "unique_views"]
    )
    document.charts.append(chart)
    table = document.table("daily")
    axes = chart_figure(document, chart).axes[0]
    assert [len(container) for container in axes.containers] == [len(table.rows), len(table.rows)]
    first, second = axes.containers
    # Side by side, not stacked.
    assert all(a.get_x() + a.get_width() <= b.get_x() + 1e-9 for a, b in zip(first, second, strict=True))
    assert [bar.get_height() for bar in second] == [row[table.column("unique_views")] for row in table.rows]
    # Days of one year are labelled "2 Mar".
    assert [label.get_text() for label in axes.get_xticklabels()] == [
        f"{row[0].day} Mar"
        for row in table.rows  # type: ignore[union-attr]
    ]


def test_pie_draws_a_wedge_per_row_sized_by_its_share() -> None:
    document = full_document()
    chart = _chart(document, "devices")
    table = document.table("devices")
    axes = chart_figure(document, chart).axes[0]
    wedges = [patch for patch in axes.patches if isinstance(patch, Wedge)]
    assert len(wedges) == len(table.rows) == 3
    sizes = [row[table.column("views")] for row in table.rows]
    total = sum(sizes)  # type: ignore[arg-type]
    for wedge, size in zip(wedges, sizes, strict=True):
        assert (wedge.theta2 - wedge.theta1) / 360 == pytest.approx(size / total)  # type: ignore[operator]
    assert [wedge.get_facecolor() for wedge in wedges] == [to_rgba(color) for color in DEFAULT_PALETTE[:3]]
    texts = {text.get_text() for text in axes.texts}
    assert {"desktop", "mobile", "tablet"} <= texts


def test_heatmap_places_every_value_by_weekday_and_hour() -> None:
    document = full_document()
    chart = _chart(document, "heatmap")
    table = document.table("hour_by_weekday")
    axes = chart_figure(document, chart).axes[0]
    grid = np.asarray(axes.images[0].get_array())
    assert grid.shape == (7, 24)
    expected = np.zeros((7, 24))
    for weekday, hour, views in table.rows:
        expected[weekday - 1, hour] = views  # type: ignore[operator, index]
    assert np.array_equal(grid, expected)
    assert [label.get_text() for label in axes.get_yticklabels()] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def test_heatmap_cells_without_rows_are_zero() -> None:
    document = full_document()
    table = document.table("hour_by_weekday")
    # Tuesday 5:00 and Sunday 23:00 only, and a row outside the grid.
    table.rows = [[2, 5, 17], [7, 23, 40], [8, 1, 99]]
    axes = chart_figure(document, _chart(document, "heatmap")).axes[0]
    grid = np.asarray(axes.images[0].get_array())
    assert grid[1, 5] == 17 and grid[6, 23] == 40
    assert grid.sum() == 57


def test_labels_are_text_not_formulas() -> None:
    document = full_document()
    chart = _chart(document, "devices")
    chart.title = "Revenue from $5 to $10"
    axes = chart_figure(document, chart).axes[0]
    assert not cbook.is_math_text(axes.get_title())


def _svg_text_glyphs(svg: str) -> list[list[int]]:
    """The glyphs of every text of a matplotlib SVG, each text's left to right.

    Text is drawn as ``<use>`` of glyph paths whose ids are ``<font>-<glyph index in hex>``, each
    translated along the text's baseline."""
    texts = []
    for group in ET.fromstring(svg).iter(f"{SVG}g"):
        if not group.attrib.get("id", "").startswith("text_"):
            continue
        placed = []
        for use in group.iter(f"{SVG}use"):
            match = re.fullmatch(r"#DejaVuSans-([0-9a-f]+)", use.attrib[XLINK_HREF])
            if match is None:
                continue
            shift = re.match(r"translate\(([-0-9.e]+)", use.attrib.get("transform", "translate(0"))
            assert shift is not None
            placed.append((float(shift.group(1)), int(match.group(1), 16)))
        texts.append([glyph for _x, glyph in sorted(placed)])
    return texts


def _shaped(font_path: str, text: str) -> list[int]:
    """The glyphs HarfBuzz sets for ``text`` (one script, one direction), left to right."""
    font = uharfbuzz.Font(uharfbuzz.Face(uharfbuzz.Blob.from_file_path(font_path)))
    buffer = uharfbuzz.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    uharfbuzz.shape(font, buffer, {})
    return [info.codepoint for info in buffer.glyph_infos]


def test_arabic_labels_are_drawn_joined_and_right_to_left() -> None:
    """The glyphs drawn for an Arabic label are the joined forms, in visual order.

    The reference is HarfBuzz shaping the label with the font matplotlib draws in: for a right-to-left
    run it gives the contextual glyphs (initial, medial, final forms and the lam-alef ligature) left to
    right. The test first makes sure that reference differs from the letters' isolated glyphs in either
    order, so it fails when labels are drawn unjoined or in logical order; then finds the label and the
    title among the texts of the chart's SVG."""
    document = arabic_document()
    chart = _chart(document, "arabic_bars")
    font_path = findfont(FontProperties(family=FONT_FAMILY))
    cmap = TTFont(font_path).getBestCmap()
    glyph_ids = {name: index for index, name in enumerate(TTFont(font_path).getGlyphOrder())}
    drawn = _svg_text_glyphs(chart_svg(document, chart))
    for text in (ARABIC_CONTENT, ARABIC_TITLE):
        expected = _shaped(font_path, text)
        isolated = [glyph_ids[cmap[ord(character)]] for character in text]
        assert expected != isolated and expected != isolated[::-1]
        assert expected in drawn, text


def test_arabic_tick_labels_are_handed_to_matplotlib_in_the_form_it_draws() -> None:
    """A matplotlib that lays out text itself (libraqm) gets the text as it is; an older one the reshaped
    text in visual order (passing that to the newer one would reverse it twice)."""
    document = arabic_document()
    axes = chart_figure(document, _chart(document, "arabic_bars")).axes[0]
    table = document.table("top_content")
    names = [format_cell(row[table.column("title")], table.columns[table.column("title")].type) for row in table.rows]
    expected = names if MATPLOTLIB_LAYS_OUT_TEXT else [get_display(reshape(name)) for name in names]
    assert [label.get_text() for label in axes.get_xticklabels()] == expected
    assert axes.get_title() == (ARABIC_TITLE if MATPLOTLIB_LAYS_OUT_TEXT else get_display(reshape(ARABIC_TITLE)))


def test_the_chart_font_has_arabic_glyphs() -> None:
    font_path = findfont(FontProperties(family=FONT_FAMILY))
    assert Path(font_path).name == "DejaVuSans.ttf"
    cmap = TTFont(font_path).getBestCmap()
    assert all(ord(character) in cmap for character in ARABIC_TITLE + ARABIC_CONTENT + reshape(ARABIC_TITLE))
