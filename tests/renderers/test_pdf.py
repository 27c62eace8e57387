"""The PDF of report documents, read back with pypdf and rendered with poppler's pdftoppm."""

from __future__ import annotations

import io
import math
import re
import struct
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pypdf
import pytest
import uharfbuzz
from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.ttLib import TTFont

from renderers.cell_format import (
    format_as_of,
    format_cell,
    format_change,
    format_datetime,
    format_kpi_previous,
    format_kpi_value,
    format_period,
)
from renderers.charts import chart_png, drawable
from renderers.pdf import CHART_DPI, FONT_FILES, MISSING, render_pdf
from semantic.report_document import ReportDocument, Table
from tests.renderers.sample_documents import (
    ARABIC_TITLE,
    arabic_document,
    long_table_document,
    one_table_document,
    table_chart_document,
    wide_table_document,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Rendered:
    def __init__(self, document: ReportDocument) -> None:
        self.document = document
        self.pdf = render_pdf(document)
        self.reader = pypdf.PdfReader(io.BytesIO(self.pdf))
        self.pages = [page.extract_text() for page in self.reader.pages]
        self.lines = [line.strip() for text in self.pages for line in text.splitlines()]


@pytest.fixture(scope="module")
def full() -> Rendered:
    """The full sample document (four charts of every drawn type, four tables, KPIs) and a table chart."""
    return Rendered(table_chart_document())


@pytest.fixture(scope="module")
def one_table() -> Rendered:
    return Rendered(one_table_document())


@pytest.fixture(scope="module")
def arabic() -> Rendered:
    return Rendered(arabic_document())


def table_lines(table: Table) -> list[str]:
    """The header and every row of ``table`` as lines of text: cells formatted by type, space-separated."""
    lines = [" ".join(column.label for column in table.columns)]
    for row in table.rows:
        lines.append(
            " ".join(format_cell(value, column.type) for column, value in zip(table.columns, row, strict=True))
        )
    return [line.strip() for line in lines]


def test_title_page(full: Rendered) -> None:
    document = full.document
    assert len(full.pages) >= 2
    title_page = full.pages[0].splitlines()
    assert title_page[0] == document.title
    assert document.description in title_page
    assert f"Period: {format_period(document.period)}" in title_page
    assert document.previous_period is not None
    assert f"Previous period: {format_period(document.previous_period)}" in title_page
    assert format_as_of(document.as_of) in title_page
    assert "Data as of 2026-03-09T06:00:12Z" in title_page
    assert f"Scope: {document.scope}" in title_page
    assert f"Generated at {format_datetime(document.generated_at)}" in title_page
    assert full.reader.metadata is not None and full.reader.metadata.title == document.title


def test_key_figures_with_their_change(full: Rendered) -> None:
    kpi_page = full.pages[1].splitlines()
    assert "Indicator Value Previous period Change" in kpi_page
    for kpi in full.document.kpis:
        value, previous = format_kpi_value(kpi), format_kpi_previous(kpi) or MISSING
        change = format_change(kpi.change_percent) or MISSING
        assert f"{kpi.label} {value} {previous} {change}" in kpi_page
    assert "Views 12,199 10,000 +21.99 %" in kpi_page
    assert "Unique viewers 3,100 3,300 -6.06 %" in kpi_page


def test_every_page_is_numbered_in_its_footer(full: Rendered) -> None:
    total = len(full.pages)
    for number, text in enumerate(full.pages, start=1):
        assert re.findall(r"Page (\d+) of (\d+)", text) == [(str(number), str(total))]
        assert text.rstrip().splitlines()[-1].startswith(format_as_of(full.document.as_of))


def test_tables_print_every_cell_formatted(full: Rendered, one_table: Rendered) -> None:
    for line in table_lines(full.document.table("top_content")):
        assert line in full.lines
    assert 'c-3 Cooking, with commas "and quotes" 1,999 0:30:05 40.50' in full.lines
    for table in full.document.tables:
        assert table.title in full.lines
    assert len(one_table.pages) == 2
    table_page = one_table.pages[1].splitlines()
    assert table_page[0] == "Views per day"
    assert table_page[1 : 1 + 8] == table_lines(one_table.document.table("daily"))
    assert "2026-03-02 1,000 400 41.00 %" in table_page


def test_a_long_table_runs_over_pages_under_its_header() -> None:
    rendered = Rendered(long_table_document(120))
    header, *rows = table_lines(rendered.document.table("daily"))
    assert len(rendered.pages) >= 4
    for text in rendered.pages[1:]:
        lines = text.splitlines()
        first_row = 1 if lines[0] == "Views per day" else 0
        assert lines[first_row] == header
    body = [line for line in rendered.lines if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert body == rows


def test_a_wide_table_gets_landscape_pages() -> None:
    rendered = Rendered(wide_table_document())
    assert len(rendered.pages) == 2
    title_page, table_page = rendered.reader.pages
    assert title_page.mediabox.width < title_page.mediabox.height
    assert table_page.mediabox.width > table_page.mediabox.height
    assert "Wide table" in rendered.lines


def test_an_image_per_drawn_chart(full: Rendered) -> None:
    document = full.document
    drawn = [chart for chart in document.charts if drawable(chart)]
    assert len(drawn) == 4 < len(document.charts)
    images = [image for page in full.reader.pages for image in page.images]
    assert len(images) == len(drawn)
    width, height = struct.unpack(">II", chart_png(document, drawn[0], dpi=CHART_DPI)[16:24])
    assert {image.image.size for image in images} == {(width, height)}  # type: ignore[union-attr]


def test_charts_drawn_elsewhere_are_placed_as_given(full: Rendered) -> None:
    # A run draws a report's charts as parallel tasks and hands them over: those are the images placed.
    document = full.document
    drawn = [chart for chart in document.charts if drawable(chart)]
    given = {drawn[0].name: chart_png(document, drawn[0], dpi=72)}
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(document, given)))
    sizes = [image.image.size for page in reader.pages for image in page.images]  # type: ignore[union-attr]
    small = struct.unpack(">II", given[drawn[0].name][16:24])
    full_size = struct.unpack(">II", chart_png(document, drawn[1], dpi=CHART_DPI)[16:24])
    assert sizes == [small] + [full_size] * (len(drawn) - 1)


def test_pdftoppm_renders_every_page(full: Rendered, tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(full.pdf)
    subprocess.run(["/usr/bin/pdftoppm", "-r", "20", "-png", str(path), str(tmp_path / "page")], check=True, timeout=60)
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == len(full.pages)
    for image, page in zip(images, full.reader.pages, strict=True):
        png = image.read_bytes()
        assert png[:8] == PNG_SIGNATURE and png[12:16] == b"IHDR"
        width, height = struct.unpack(">II", png[16:24])
        # The page's size in points (A4 portrait) at 20 dots per inch, rounded up.
        assert (width, height) == (math.ceil(page.mediabox.width / 72 * 20), math.ceil(page.mediabox.height / 72 * 20))
        assert (width, height) == (166, 234)


def test_one_document_always_gives_the_same_bytes(one_table: Rendered) -> None:
    assert render_pdf(one_table.document) == one_table.pdf


def _fonts(reader: pypdf.PdfReader, page: pypdf.PageObject) -> dict[str, Any]:
    return {name: font.get_object() for name, font in page["/Resources"]["/Font"].items()}


def test_the_arabic_pdf_embeds_its_font(arabic: Rendered) -> None:
    fonts = _fonts(arabic.reader, arabic.reader.pages[0]).values()
    names = {str(font["/BaseFont"]) for font in fonts}
    assert {re.sub(r"^/[A-Z]{6}\+", "", name) for name in names} == {"DejaVuSansBook", "DejaVuSansBold"}
    for font in fonts:
        descendant = font["/DescendantFonts"][0].get_object()
        embedded = descendant["/FontDescriptor"].get_object()["/FontFile2"].get_object().get_data()
        assert len(embedded) > 1000
        TTFont(io.BytesIO(embedded))


def test_the_arabic_title_is_extracted(arabic: Rendered) -> None:
    title = unicodedata.normalize("NFKC", arabic.pages[0].splitlines()[0])
    assert title == ARABIC_TITLE
    assert arabic.document.table("top_content").rows[0][1] in "\n".join(arabic.pages)


Outline = tuple[tuple[str, tuple[tuple[float, float], ...]], ...]


def _outline(font: TTFont, glyph: str) -> Outline:
    """The glyph's drawing operations, its points relative to its first one: embedding may move a glyph
    within its box and round its components' offsets, never change its shape."""
    pen = DecomposingRecordingPen(font.getGlyphSet())
    font.getGlyphSet()[glyph].draw(pen)
    points = [point for _operator, operands in pen.value for point in operands]
    x0, y0 = points[0] if points else (0, 0)
    return tuple((operator, tuple((x - x0, y - y0) for x, y in operands)) for operator, operands in pen.value)


def _same_glyphs(drawn: list[Outline], expected: list[Outline]) -> bool:
    """Whether two glyph sequences have the same shapes, to within 2 font units."""
    if len(drawn) != len(expected):
        return False
    for one, other in zip(drawn, expected, strict=True):
        if [operator for operator, _ in one] != [operator for operator, _ in other]:
            return False
        for (_, points), (_, other_points) in zip(one, other, strict=True):
            if len(points) != len(other_points):
                return False
            for (x, y), (u, v) in zip(points, other_points, strict=True):
                if abs(x - u) > 2 or abs(y - v) > 2:
                    return False
    return True


# Tokens of a content stream: literal strings, array brackets, names, numbers, operators.
_TOKEN = re.compile(rb"\((?:\\.|[^\\)])*\)|\[|\]|/[^\s/\[\]()<>]+|[-+]?(?:\d+\.?\d*|\.\d+)|[A-Za-z*'\"]+", re.DOTALL)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _literal(token: bytes) -> bytes:
    """The bytes of a PDF literal string token, escapes resolved."""
    out = bytearray()
    body, index = token[1:-1], 0
    while index < len(body):
        byte = body[index : index + 1]
        if byte != b"\\":
            out += byte
            index += 1
            continue
        escaped = body[index + 1 : index + 2]
        octal = re.match(rb"[0-7]{1,3}", body[index + 1 : index + 4])
        if octal:
            out.append(int(octal.group(), 8) & 0xFF)
            index += 1 + len(octal.group())
        else:
            out += _ESCAPES.get(escaped, escaped)
            index += 2
    return bytes(out)


def _operations(content: bytes) -> list[tuple[list[Any], bytes]]:
    operations: list[tuple[list[Any], bytes]] = []
    operands: list[Any] = []
    arrays: list[list[Any]] = []
    for token in _TOKEN.findall(content):
        target = arrays[-1] if arrays else operands
        if token.startswith(b"("):
            target.append(_literal(token))
        elif token == b"[":
            arrays.append([])
        elif token == b"]":
            array = arrays.pop()
            (arrays[-1] if arrays else operands).append(array)
        elif token.startswith(b"/"):
            target.append(token.decode())
        elif re.fullmatch(rb"[-+]?(?:\d+\.?\d*|\.\d+)", token):
            target.append(float(token))
        else:
            operations.append((operands, token))
            operands = []
    return operations


def _drawn_lines(reader: pypdf.PdfReader, page: pypdf.PageObject) -> list[tuple[str, list[Outline]]]:
    """Each text object of the page: its font's BaseFont and the outlines of its glyphs, left to right.

    The content stream names glyphs by CID (two bytes each, Identity-H), the font's CIDToGIDMap maps them
    to glyphs of the embedded subset, whose outlines are compared with the original font's."""
    fonts = _fonts(reader, page)
    subsets: dict[str, tuple[TTFont, bytes]] = {}
    for name, font in fonts.items():
        descendant = font["/DescendantFonts"][0].get_object()
        embedded = descendant["/FontDescriptor"].get_object()["/FontFile2"].get_object().get_data()
        subsets[name] = (TTFont(io.BytesIO(embedded)), descendant["/CIDToGIDMap"].get_object().get_data())
    lines: list[tuple[str, list[Outline]]] = []
    font_name = ""
    placed: list[tuple[float, int, Outline]] = []
    x = 0.0
    for operands, operator in _operations(page.get_contents().get_data()):
        if operator == b"Tf":
            font_name = operands[0]
        elif operator == b"BT":
            placed, x = [], 0.0
        elif operator == b"Td":
            x += operands[0]
        elif operator == b"Tm":
            x = operands[4]
        elif operator in (b"Tj", b"TJ"):
            strings = operands[0] if operator == b"TJ" else [operands[0]]
            subset, cid_to_gid = subsets[font_name]
            order = subset.getGlyphOrder()
            for raw in strings:
                if not isinstance(raw, bytes):
                    continue
                for offset in range(0, len(raw), 2):
                    cid = int.from_bytes(raw[offset : offset + 2], "big")
                    gid = int.from_bytes(cid_to_gid[2 * cid : 2 * cid + 2], "big")
                    placed.append((x, len(placed), _outline(subset, order[gid])))
        elif operator == b"ET" and placed:
            lines.append((str(fonts[font_name]["/BaseFont"]), [outline for _x, _n, outline in sorted(placed)]))
            placed = []
    return lines


def test_the_arabic_title_is_drawn_joined_and_right_to_left(arabic: Rendered) -> None:
    """The glyphs drawn for the Arabic title are its joined forms, in visual order.

    Text extraction alone cannot tell: the PDF maps every glyph back to the letters it stands for, so an
    unjoined, reversed title extracts much the same. The test reads what is drawn instead: the glyphs of the
    title page's text objects (content stream → CIDToGIDMap → embedded subset → outlines), left to right,
    against HarfBuzz's shaping of the title with the original bold font, which for this right-to-left run
    gives the contextual forms and the lam-alef ligature, left to right. It first checks that this reference
    differs from the letters' isolated glyphs in either order, so a title drawn unshaped, or shaped but in
    logical order, fails."""
    original = TTFont(FONT_FILES["B"])
    order = original.getGlyphOrder()
    hb_font = uharfbuzz.Font(uharfbuzz.Face(uharfbuzz.Blob.from_file_path(str(FONT_FILES["B"]))))
    buffer = uharfbuzz.Buffer()
    buffer.add_str(ARABIC_TITLE)
    buffer.guess_segment_properties()
    uharfbuzz.shape(hb_font, buffer, {})
    expected = [_outline(original, order[info.codepoint]) for info in buffer.glyph_infos]
    cmap = original.getBestCmap()
    isolated = [_outline(original, cmap[ord(character)]) for character in ARABIC_TITLE]
    assert not _same_glyphs(isolated, expected) and not _same_glyphs(isolated[::-1], expected)
    font, drawn = _drawn_lines(arabic.reader, arabic.reader.pages[0])[0]
    assert font.endswith("DejaVuSansBold")
    assert _same_glyphs(drawn, expected)
