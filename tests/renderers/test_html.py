"""The web page of report documents, read back with the standard library's HTML parser."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from renderers.cell_format import (
    format_as_of,
    format_cell,
    format_change,
    format_datetime,
    format_kpi_previous,
    format_kpi_value,
    format_period,
)
from renderers.charts import drawable
from renderers.html import MISSING, render_html
from semantic.report_document import ReportDocument, Table
from tests.renderers.sample_documents import (
    ARABIC_CONTENT,
    ARABIC_TITLE,
    arabic_document,
    one_table_document,
    script_title_document,
    table_chart_document,
)

# Attributes whose value a browser fetches or follows.
URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "poster", "data", "action", "formaction", "background"}


class Page(HTMLParser):
    """Elements with their attributes and text, and the tables as header and rows of cell texts."""

    def __init__(self, html: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html.decode("utf-8")
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[int, str] = {}
        self.tables: list[tuple[list[str], list[list[str]]]] = []
        self._open: list[int] = []
        self._cells: list[str] | None = None
        self.feed(self.html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        index = len(self.elements) - 1
        self.texts[index] = ""
        if tag not in {"meta", "br", "img", "input", "link", "path", "use", "rect", "stop"}:
            self._open.append(index)
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr":
            self._cells = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self.texts[len(self.elements) - 1] = ""

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            index = self._open.pop()
            if self.elements[index][0] == tag:
                break
        if tag in {"td", "th"} and self._cells is not None:
            self._cells.append(self.texts[index])
        elif tag == "tr" and self._cells is not None:
            header, rows = self.tables[-1]
            if header or not self._cells:
                rows.append(self._cells)
            else:
                header.extend(self._cells)
            self._cells = None

    def handle_data(self, data: str) -> None:
        for index in self._open:
            self.texts[index] += data

    def find(self, tag: str, **attributes: str) -> list[tuple[dict[str, str | None], str]]:
        return [
            (attrs, self.texts[index])
            for index, (name, attrs) in enumerate(self.elements)
            if name == tag and all(attrs.get(key.replace("_", "-")) == value for key, value in attributes.items())
        ]


@pytest.fixture(scope="module")
def full() -> tuple[ReportDocument, Page]:
    """The full sample document (four drawn charts, four tables, KPIs) and a table chart."""
    document = table_chart_document()
    return document, Page(render_html(document))


def formatted(table: Table) -> tuple[list[str], list[list[str]]]:
    return [column.label for column in table.columns], [
        [format_cell(value, column.type) for column, value in zip(table.columns, row, strict=True)]
        for row in table.rows
    ]


def test_the_page_is_made_for_phones_and_utf8(full: tuple[ReportDocument, Page]) -> None:
    _document, page = full
    assert page.html.startswith("<!DOCTYPE html>")
    assert page.find("meta", name="viewport") == [
        ({"name": "viewport", "content": "width=device-width, initial-scale=1"}, "")
    ]
    assert page.find("meta", charset="utf-8")
    style = "".join(text for _attrs, text in page.find("style"))
    assert re.search(r"\.table-wrap\s*\{[^}]*overflow-x:\s*auto", style)
    assert re.search(r"\.cards\s*\{[^}]*flex-wrap:\s*wrap", style)
    # Every table sits in its scrolling frame.
    wrappers = len(page.find("div", **{"class": "table-wrap"}))
    assert wrappers == len(page.find("table")) == 4


def test_nothing_is_fetched(full: tuple[ReportDocument, Page]) -> None:
    _document, page = full
    for _tag, attrs in page.elements:
        for name, value in attrs.items():
            if name in URL_ATTRIBUTES:
                # Only references within the page: an element of it, or an image inside the reference itself
                # (a heatmap's raster is embedded in its SVG as a PNG).
                assert value is not None and re.match(r"#|data:image/png;base64,", value), (name, value)
    assert not page.find("link") and not page.find("script") and not page.find("iframe") and not page.find("img")
    assert "@import" not in page.html
    # CSS references: only clip paths of the charts, by fragment.
    assert set(re.findall(r"url\((.)", page.html)) == {"#"}


def test_header_and_watermark(full: tuple[ReportDocument, Page]) -> None:
    document, page = full
    assert page.find("title")[0][1] == document.title
    assert page.find("h1") == [({"dir": "auto"}, document.title)]
    assert page.find("p", **{"class": "watermark"})[0][1] == format_as_of(document.as_of)
    assert page.find("p", **{"class": "watermark"})[0][1] == "Data as of 2026-03-09T06:00:12Z"
    facts = [text for _attrs, text in page.find("dd")]
    assert document.previous_period is not None
    assert facts == [format_period(document.period), format_period(document.previous_period), document.scope]
    assert page.find("footer")[0][1].strip() == f"Generated at {format_datetime(document.generated_at)}"


def test_key_figure_cards(full: tuple[ReportDocument, Page]) -> None:
    document, page = full
    cards = page.find("div", **{"class": "card"})
    assert len(cards) == len(document.kpis)
    values = [text for _attrs, text in page.find("div", **{"class": "value"})]
    assert values == [format_kpi_value(kpi) for kpi in document.kpis]
    changes = [(attrs["class"], text) for attrs, text in _by_class_prefix(page, "change")]
    assert changes == [
        ("change up", format_change(document.kpis[0].change_percent)),
        ("change down", format_change(document.kpis[1].change_percent)),
        ("change", MISSING),
    ]
    assert [text for _attrs, text in changes] == ["+21.99 %", "-6.06 %", MISSING]
    previous = [text for _attrs, text in page.find("div", **{"class": "previous"})]
    assert previous == [f"Previous period: {format_kpi_previous(kpi) or MISSING}" for kpi in document.kpis]


def _by_class_prefix(page: Page, prefix: str) -> list[tuple[dict[str, str | None], str]]:
    return [
        (attrs, page.texts[index])
        for index, (tag, attrs) in enumerate(page.elements)
        if tag == "div" and (attrs.get("class") or "").split(" ")[0] == prefix
    ]


def test_a_chart_per_drawable_chart_inline(full: tuple[ReportDocument, Page]) -> None:
    document, page = full
    drawn = [chart for chart in document.charts if drawable(chart)]
    assert len(drawn) == 4 < len(document.charts)
    assert len(page.find("svg")) == len(drawn)
    figures = page.find("figure", **{"class": "chart"})
    assert [attrs["aria-label"] for attrs, _text in figures] == [chart.title for chart in drawn]
    # Each inline SVG is well-formed XML on its own.
    svgs = re.findall(r"<svg\b.*?</svg>", page.html, re.DOTALL)
    assert len(svgs) == len(drawn)
    for svg in svgs:
        assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"


def test_tables_print_every_cell_formatted(full: tuple[ReportDocument, Page]) -> None:
    document, page = full
    assert page.tables == [formatted(table) for table in document.tables]
    header, rows = formatted(document.table("top_content"))
    assert rows[0] == ["c-1", ARABIC_CONTENT, "5,120", "0:05:12", "72.25"]
    cells = [text for _attrs, text in page.find("td")]
    for row in rows:
        for cell in row:
            assert cell in cells
    assert [text for _attrs, text in page.find("h2", dir="auto")] == [table.title for table in document.tables]
    numbers = [text for _attrs, text in page.find("td", **{"class": "num"})]
    assert "5,120" in numbers and "0:05:12" in numbers and "41.00 %" in numbers
    texts = [text for _attrs, text in page.find("td", dir="auto")]
    assert ARABIC_CONTENT in texts and "2026-03-02" in texts
    # The device never seen has an empty cell.
    assert ["tablet", "999", ""] in page.tables[3][1]


def test_one_table_document() -> None:
    document = one_table_document()
    page = Page(render_html(document))
    assert page.tables == [formatted(document.table("daily"))]
    assert not page.find("svg") and not page.find("div", **{"class": "card"})


def test_markup_in_titles_stays_text() -> None:
    document = script_title_document()
    page = Page(render_html(document))
    assert not page.find("script")
    assert "<script" not in page.html
    assert page.find("h1")[0][1] == "<script>alert(1)</script> report"
    assert page.find("title")[0][1] == "<script>alert(1)</script> report"
    assert "<script>alert(1)</script>" in [text for _attrs, text in page.find("td")]


def test_right_to_left_text_has_its_direction() -> None:
    page = Page(render_html(arabic_document()))
    assert page.elements[0] == ("html", {"dir": "rtl"})
    assert page.find("h1") == [({"dir": "auto"}, ARABIC_TITLE)]
    assert ({"dir": "auto"}, ARABIC_CONTENT) in page.find("td")
    assert Page(render_html(one_table_document())).elements[0] == ("html", {"dir": "ltr"})
