"""Cells as the PDF and the web page print them, by column type, and the direction of text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from arabic_reshaper import reshape
from bidi.algorithm import get_display

from renderers.cell_format import (
    format_as_of,
    format_cell,
    format_change,
    format_kpi_previous,
    format_kpi_value,
    format_period,
    is_numeric,
)
from renderers.text_direction import base_direction, display_form, has_rtl, needs_shaping
from semantic.report_document import ColumnType, DocumentPeriod, Kpi
from tests.renderers.sample_documents import ARABIC_CONTENT, ARABIC_TITLE


@pytest.mark.parametrize(
    ("value", "column_type", "text"),
    [
        (12199, ColumnType.INTEGER, "12,199"),
        (1234567, ColumnType.INTEGER, "1,234,567"),
        (-5000, ColumnType.INTEGER, "-5,000"),
        (999, ColumnType.INTEGER, "999"),
        (72.25, ColumnType.DECIMAL, "72.25"),
        (61, ColumnType.DECIMAL, "61.00"),
        (1234.5, ColumnType.DECIMAL, "1,234.50"),
        (0.4412, ColumnType.PERCENT, "44.12 %"),
        (1, ColumnType.PERCENT, "100.00 %"),
        (0.0, ColumnType.PERCENT, "0.00 %"),
        (311.5, ColumnType.DURATION, "0:05:12"),
        (95.0, ColumnType.DURATION, "0:01:35"),
        (1805.25, ColumnType.DURATION, "0:30:05"),
        (0, ColumnType.DURATION, "0:00:00"),
        (93600, ColumnType.DURATION, "26:00:00"),
        (date(2026, 3, 2), ColumnType.DATE, "2026-03-02"),
        (datetime(2026, 3, 8, 23, 59, 1, tzinfo=UTC), ColumnType.DATETIME, "2026-03-08T23:59:01Z"),
        (
            datetime(2026, 3, 9, 1, 59, 1, 250000, tzinfo=timezone(timedelta(hours=2))),
            ColumnType.DATETIME,
            "2026-03-08T23:59:01Z",
        ),
        (datetime(2026, 3, 8, 23, 59, 1), ColumnType.DATETIME, "2026-03-08T23:59:01Z"),
        ("Evening sports", ColumnType.TEXT, "Evening sports"),
        (None, ColumnType.INTEGER, ""),
        (None, ColumnType.TEXT, ""),
        (None, ColumnType.DATETIME, ""),
        ("n/a", ColumnType.INTEGER, "n/a"),
    ],
)
def test_cells_print_by_column_type(value: object, column_type: ColumnType, text: str) -> None:
    assert format_cell(value, column_type) == text  # type: ignore[arg-type]


def test_changes_carry_their_sign() -> None:
    assert format_change(21.99) == "+21.99 %"
    assert format_change(-6.06) == "-6.06 %"
    assert format_change(0.0) == "0.00 %"
    assert format_change(-0.001) == "0.00 %"
    assert format_change(1234.5) == "+1,234.50 %"
    assert format_change(None) == ""


def test_kpis_print_by_their_type() -> None:
    rate = Kpi(name="rate", label="Rate", value=0.4412, previous=0.5, change_percent=-11.76, type=ColumnType.PERCENT)
    assert (format_kpi_value(rate), format_kpi_previous(rate)) == ("44.12 %", "50.00 %")
    views = Kpi(name="views", label="Views", value=12199)
    assert (format_kpi_value(views), format_kpi_previous(views)) == ("12,199", "")


def test_periods_and_watermark() -> None:
    period = DocumentPeriod(start_date=date(2026, 3, 2), end_date=date(2026, 3, 8), timezone="Asia/Riyadh")
    assert format_period(period) == "2026-03-02 to 2026-03-08 (Asia/Riyadh)"
    assert format_as_of(datetime(2026, 3, 9, 6, 0, 12, tzinfo=UTC)) == "Data as of 2026-03-09T06:00:12Z"
    assert format_as_of(None) == "Data as of: not recorded"


def test_numeric_columns() -> None:
    assert [column_type for column_type in ColumnType if is_numeric(column_type)] == [
        ColumnType.INTEGER,
        ColumnType.DECIMAL,
        ColumnType.PERCENT,
        ColumnType.DURATION,
    ]


def test_text_direction() -> None:
    assert has_rtl(ARABIC_TITLE) and has_rtl(f"c-1 {ARABIC_CONTENT}") and not has_rtl("Evening sports — 5 %")
    assert base_direction(ARABIC_TITLE) == "rtl"
    assert base_direction(f"{ARABIC_CONTENT} (c-1)") == "rtl"
    assert base_direction(f"Top: {ARABIC_CONTENT}") == "ltr"
    assert base_direction("2026-03-02") == "ltr"
    assert needs_shaping(ARABIC_TITLE) and not needs_shaping("Café — 44.12 % … ✓") and not needs_shaping("Привет")
    assert display_form(ARABIC_TITLE) == get_display(reshape(ARABIC_TITLE))
    # Joined presentation forms, in visual order: the last letter (yeh, final form) comes first.
    assert display_form(ARABIC_TITLE)[0] == "\ufef2"
    assert display_form("Evening sports") == "Evening sports"
