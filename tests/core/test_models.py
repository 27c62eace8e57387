from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from core.models import (
    EVENT_IN,
    ContentAnalytics,
    DateRange,
    Report,
    ReportFormat,
    ReportStatus,
    ReportType,
    SystemAnalytics,
    UserAnalytics,
)


def _error_types(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple, str]]:
    return [(tuple(e["loc"]), e["type"]) for e in exc.value.errors()]


# --- EventIn ------------------------------------------------------------------------------


def _event(**fields):
    return EVENT_IN.validate_python(fields)


def test_event_in_holds_only_what_the_client_sent():
    assert _event(event_type="content_view") == {"event_type": "content_view"}
    assert _event(event_type="content_view", user_id=None, timestamp=None) == {
        "event_type": "content_view",
        "user_id": None,
        "timestamp": None,
    }


def test_event_in_refuses_unknown_top_level_field():
    with pytest.raises(ValidationError) as exc:
        EVENT_IN.validate_python({"event_type": "content_view", "colour": "red"})
    assert _error_types(exc) == [(("colour",), "extra_forbidden")]


def test_event_in_keeps_custom_data_in_properties():
    event = EVENT_IN.validate_python({"event_type": "content_view", "properties": {"colour": "red", "n": 3}})
    assert event["properties"] == {"colour": "red", "n": 3}


def test_event_in_strips_strings():
    event = EVENT_IN.validate_python(
        {"event_type": "  content_view\n", "user_id": " u1 ", "content_id": "\tc-9 ", "country": " US "}
    )
    assert event["event_type"] == "content_view"
    assert event["user_id"] == "u1"
    assert event["content_id"] == "c-9"
    assert event["country"] == "US"


def test_event_in_whitespace_only_text_is_refused_after_stripping():
    with pytest.raises(ValidationError) as exc:
        EVENT_IN.validate_python({"event_type": "content_view", "user_id": "   "})
    assert _error_types(exc) == [(("user_id",), "string_too_short")]


@pytest.mark.parametrize("country", ["US", "de", "Gb"])
def test_country_accepts_two_letters(country):
    assert _event(event_type="content_view", country=country)["country"] == country


@pytest.mark.parametrize(
    ("country", "error"),
    [
        ("U1", "string_pattern_mismatch"),
        ("1A", "string_pattern_mismatch"),
        ("USA", "string_too_long"),
        ("U", "string_too_short"),
    ],
)
def test_country_refuses_non_alpha2(country, error):
    with pytest.raises(ValidationError) as exc:
        _event(event_type="content_view", country=country)
    assert _error_types(exc) == [(("country",), error)]


@pytest.mark.parametrize("event_type", ["Content_View", "1abc", "content-view", "x", "a" * 65])
def test_event_type_refuses_bad_names(event_type):
    with pytest.raises(ValidationError) as exc:
        _event(event_type=event_type)
    assert [loc for loc, _ in _error_types(exc)] == [("event_type",)]


def test_event_type_is_required():
    with pytest.raises(ValidationError) as exc:
        EVENT_IN.validate_python({"user_id": "u1"})
    assert _error_types(exc) == [(("event_type",), "missing")]


def test_event_category_pattern():
    assert _event(event_type="content_view", event_category="my_category")["event_category"] == "my_category"
    with pytest.raises(ValidationError) as exc:
        _event(event_type="content_view", event_category="My-Category")
    assert _error_types(exc) == [(("event_category",), "string_pattern_mismatch")]


# --- DateRange ----------------------------------------------------------------------------


def test_date_range_defaults_to_daily_and_allows_a_single_day():
    one_day = DateRange(start_date=date(2026, 1, 5), end_date=date(2026, 1, 5))
    assert one_day.period_type == "daily"


def test_date_range_refuses_end_before_start():
    with pytest.raises(ValidationError, match="end_date must not be before start_date"):
        DateRange(start_date=date(2026, 1, 5), end_date=date(2026, 1, 4))


@pytest.mark.parametrize("period", ["hourly", "daily", "weekly", "monthly"])
def test_date_range_accepts_known_periods(period):
    assert DateRange(start_date=date(2026, 1, 1), end_date=date(2026, 2, 1), period_type=period).period_type == period


@pytest.mark.parametrize("period", ["yearly", "Daily", "daily ", "", "hourlyx"])
def test_date_range_refuses_other_periods(period):
    with pytest.raises(ValidationError) as exc:
        DateRange(start_date=date(2026, 1, 1), end_date=date(2026, 2, 1), period_type=period)
    assert _error_types(exc) == [(("period_type",), "string_pattern_mismatch")]


# --- analytics and report models ----------------------------------------------------------


def test_report_defaults():
    before = datetime.now(UTC)
    report = Report(
        id="r1",
        name="Weekly content",
        report_type="content_performance",
        report_format="csv",
        data_source="events",
        date_range={"start_date": "2026-01-01", "end_date": "2026-01-07"},
        created_by="key_1",
    )
    after = datetime.now(UTC)
    assert report.report_type is ReportType.CONTENT_PERFORMANCE
    assert report.report_format is ReportFormat.CSV
    assert report.status is ReportStatus.DRAFT
    assert report.date_range == DateRange(start_date=date(2026, 1, 1), end_date=date(2026, 1, 7), period_type="daily")
    assert (report.description, report.chart_type, report.schedule_config) == (None, None, None)
    assert (report.last_generated, report.output_url, report.file_size) == (None, None, None)
    assert report.filters == {} and report.visualization_config == {} and report.shared_with == []
    assert report.is_scheduled is False and report.is_public is False
    assert before <= report.created_at <= after
    assert before <= report.updated_at <= after


def test_report_defaults_are_not_shared_between_instances():
    kwargs = {
        "id": "r1",
        "name": "n",
        "report_type": "custom",
        "report_format": "json",
        "data_source": "events",
        "date_range": {"start_date": "2026-01-01", "end_date": "2026-01-01"},
        "created_by": "k",
    }
    first = Report(**kwargs)
    first.filters["a"] = 1
    first.shared_with.append("x")
    second = Report(**kwargs)
    assert second.filters == {} and second.shared_with == []


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("name", "", "string_too_short"),
        ("name", "n" * 201, "string_too_long"),
        ("report_type", "weekly", "enum"),
        ("report_format", "docx", "enum"),
    ],
)
def test_report_refuses_bad_values(field, value, error):
    kwargs = {
        "id": "r1",
        "name": "n",
        "report_type": "custom",
        "report_format": "json",
        "data_source": "events",
        "date_range": {"start_date": "2026-01-01", "end_date": "2026-01-01"},
        "created_by": "k",
    }
    with pytest.raises(ValidationError) as exc:
        Report(**{**kwargs, field: value})
    assert _error_types(exc) == [((field,), error)]


def test_content_analytics_defaults():
    row = ContentAnalytics(content_id="c1", date=date(2026, 1, 1))
    keys = {"content_id", "date", "calculated_at", "last_updated"}
    counters = {k: v for k, v in row.model_dump().items() if k not in keys}
    zero_dicts = {"top_countries", "top_regions", "hourly_distribution"}
    assert {k for k, v in counters.items() if v != ({} if k in zero_dicts else 0)} == set()
    assert isinstance(row.total_views, int) and isinstance(row.popularity_score, float)
    assert row.calculated_at.tzinfo is UTC


def test_user_analytics_defaults():
    row = UserAnalytics(user_id="u1", date=date(2026, 1, 1))
    dumped = row.model_dump()
    dict_fields = {
        "preferred_categories",
        "preferred_languages",
        "preferred_content_types",
        "device_types",
        "browser_types",
    }
    assert {k for k in dict_fields if dumped[k] != {}} == set()
    assert (row.sessions, row.content_views, row.bounce_rate, row.engagement_score) == (0, 0, 0.0, 0.0)
    assert row.last_updated.tzinfo is UTC


@pytest.mark.parametrize("hour", [0, 23])
def test_system_analytics_hour_bounds_accept(hour):
    row = SystemAnalytics(service_name="api", date=date(2026, 1, 1), hour=hour)
    assert row.hour == hour
    assert (row.request_count, row.error_count, row.cache_hit_rate) == (0, 0, 0.0)
    assert row.endpoint_stats == {} and row.status_code_distribution == {}


@pytest.mark.parametrize(("hour", "error"), [(-1, "greater_than_equal"), (24, "less_than_equal")])
def test_system_analytics_hour_bounds_refuse(hour, error):
    with pytest.raises(ValidationError) as exc:
        SystemAnalytics(service_name="api", date=date(2026, 1, 1), hour=hour)
    assert _error_types(exc) == [(("hour",), error)]


def test_system_analytics_hour_is_required():
    with pytest.raises(ValidationError) as exc:
        SystemAnalytics(service_name="api", date=date(2026, 1, 1))
    assert _error_types(exc) == [(("hour",), "missing")]
