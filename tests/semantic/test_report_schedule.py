"""semantic/report_schedule.py: parsing schedule_config, slot instants (time zones and clock changes), and
the catch-up plan of each policy. Expected instants are written out in UTC by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import InvalidRequest
from semantic.report_schedule import (
    DEFAULT_GRACE,
    PRESETS,
    Schedule,
    plan,
    starting_point,
)

BERLIN = "Europe/Berlin"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- parse -------------------------------------------------------------------------------------


def test_parse_reads_every_field() -> None:
    schedule = Schedule.parse(
        {"cron": "0 8 * * 1", "timezone": BERLIN, "start_at": "2025-01-06T00:00:00", "end_at": "2025-02-01T12:00:00Z"}
    )
    assert schedule.cron == "0 8 * * 1"
    assert schedule.timezone == BERLIN
    # Without an offset, start_at is Berlin wall-clock time (CET, UTC+1 in January).
    assert schedule.start_at == utc(2025, 1, 5, 23, 0)
    assert schedule.end_at == utc(2025, 2, 1, 12, 0)
    assert schedule.to_config() == {
        "cron": "0 8 * * 1",
        "timezone": BERLIN,
        "start_at": "2025-01-05T23:00:00+00:00",
        "end_at": "2025-02-01T12:00:00+00:00",
    }


def test_parse_defaults_to_utc_and_normalizes_spacing() -> None:
    schedule = Schedule.parse({"cron": "  */15   *  * * * "})
    assert (schedule.cron, schedule.timezone, schedule.start_at, schedule.end_at) == ("*/15 * * * *", "UTC", None, None)


@pytest.mark.parametrize(
    ("config", "field", "says"),
    [
        ("0 8 * * 1", "schedule_config", "must be an object"),
        ({"timezone": "UTC"}, "schedule_config.cron", "is required"),
        ({"cron": 5}, "schedule_config.cron", "is required"),
        ({"cron": "0 8 * * 1", "zone": "UTC", "every": 2}, "schedule_config", "unknown keys every, zone"),
        ({"cron": "0 8 * *"}, "schedule_config.cron", "has 4 fields"),
        ({"cron": "*/10 * * * * *"}, "schedule_config.cron", "at most once a minute"),
        ({"cron": "0 0 8 * * 1 2025"}, "schedule_config.cron", "at most once a minute"),
        ({"cron": "@daily"}, "schedule_config.cron", "is an alias"),
        ({"cron": "H 8 * * *"}, "schedule_config.cron", "random (R) or hashed (H)"),
        ({"cron": "R 8 * * *"}, "schedule_config.cron", "random (R) or hashed (H)"),
        ({"cron": "61 8 * * *"}, "schedule_config.cron", "is not a valid cron expression"),
        ({"cron": "0 0 30 2 *"}, "schedule_config.cron", "matches no date"),
        ({"cron": "yearly"}, "schedule_config.cron", "has 1 fields"),
        ({"cron": "daily", "timezone": "Mars/Olympus"}, "schedule_config.timezone", "not a known IANA time zone"),
        ({"cron": "daily", "timezone": ""}, "schedule_config.timezone", "IANA time zone name"),
        ({"cron": "daily", "timezone": "../etc/passwd"}, "schedule_config.timezone", "not a known IANA time zone"),
        ({"cron": "daily", "start_at": "next monday"}, "schedule_config.start_at", "ISO 8601"),
        ({"cron": "daily", "end_at": 20250101}, "schedule_config.end_at", "ISO 8601"),
        (
            {"cron": "daily", "start_at": "2025-02-01T00:00:00Z", "end_at": "2025-01-01T00:00:00Z"},
            "schedule_config.end_at",
            "after schedule_config.start_at",
        ),
    ],
)
def test_parse_errors_name_the_field(config: object, field: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Schedule.parse(config)
    assert caught.value.details["field"] == field
    assert says in caught.value.message


def test_unknown_keys_are_listed() -> None:
    with pytest.raises(InvalidRequest) as caught:
        Schedule.parse({"cron": "daily", "zone": "UTC", "every": 2})
    assert caught.value.details == {"field": "schedule_config", "unknown": ["every", "zone"]}


def test_day_and_month_names_are_not_taken_for_hashed_or_random_fields() -> None:
    assert Schedule.parse({"cron": "0 8 * MAR,APR THU"}).cron == "0 8 * MAR,APR THU"


@pytest.mark.parametrize(
    ("preset", "cron", "after", "expected"),
    [
        (
            "hourly",
            "0 * * * *",
            utc(2025, 1, 6, 10, 30),
            [utc(2025, 1, 6, 11), utc(2025, 1, 6, 12), utc(2025, 1, 6, 13)],
        ),
        ("daily", "0 0 * * *", utc(2025, 1, 6, 10, 30), [utc(2025, 1, 7), utc(2025, 1, 8), utc(2025, 1, 9)]),
        # 2025-01-06 is a Monday: weekly is Mondays at midnight.
        ("weekly", "0 0 * * 1", utc(2025, 1, 6, 10, 30), [utc(2025, 1, 13), utc(2025, 1, 20), utc(2025, 1, 27)]),
        ("monthly", "0 0 1 * *", utc(2025, 1, 6, 10, 30), [utc(2025, 2, 1), utc(2025, 3, 1), utc(2025, 4, 1)]),
    ],
)
def test_presets(preset: str, cron: str, after: datetime, expected: list[datetime]) -> None:
    assert PRESETS[preset] == cron
    schedule = Schedule.parse({"cron": preset.upper() if preset == "daily" else preset})
    assert schedule.cron == cron
    assert schedule.slots_between(after, expected[-1]) == expected
    assert schedule.next_after(after) == expected[0]


# --- slots ---------------------------------------------------------------------------------------


def test_every_quarter_hour_over_an_hour() -> None:
    schedule = Schedule.parse({"cron": "*/15 * * * *"})
    # after is exclusive, until inclusive.
    assert schedule.slots_between(utc(2025, 1, 6, 10, 0), utc(2025, 1, 6, 11, 0)) == [
        utc(2025, 1, 6, 10, 15),
        utc(2025, 1, 6, 10, 30),
        utc(2025, 1, 6, 10, 45),
        utc(2025, 1, 6, 11, 0),
    ]
    assert schedule.slots_between(utc(2025, 1, 6, 9, 59, 59), utc(2025, 1, 6, 10, 44, 59)) == [
        utc(2025, 1, 6, 10, 0),
        utc(2025, 1, 6, 10, 15),
        utc(2025, 1, 6, 10, 30),
    ]
    assert schedule.slots_between(utc(2025, 1, 6, 10, 0), utc(2025, 1, 6, 10, 0)) == []
    # The newest ones only, still oldest first.
    assert schedule.slots_between(utc(2025, 1, 6, 10, 0), utc(2025, 1, 6, 11, 0), limit=2) == [
        utc(2025, 1, 6, 10, 45),
        utc(2025, 1, 6, 11, 0),
    ]


def test_slots_follow_the_zones_wall_clock_in_winter_and_summer() -> None:
    schedule = Schedule.parse({"cron": "0 8 * * *", "timezone": BERLIN})
    assert schedule.slots_between(utc(2025, 1, 10), utc(2025, 1, 11)) == [utc(2025, 1, 10, 7)]  # CET, UTC+1
    assert schedule.slots_between(utc(2025, 7, 10), utc(2025, 7, 11)) == [utc(2025, 7, 10, 6)]  # CEST, UTC+2
    new_york = Schedule.parse({"cron": "0 8 * * *", "timezone": "America/New_York"})
    assert new_york.next_after(utc(2025, 1, 10)) == utc(2025, 1, 10, 13)


def test_a_skipped_wall_clock_time_runs_when_the_clock_jumps() -> None:
    # 2025-03-30: Berlin's clocks jump from 02:00 CET (01:00 UTC) to 03:00 CEST; 02:00 never happens.
    two = Schedule.parse({"cron": "0 2 * * *", "timezone": BERLIN})
    assert two.slots_between(utc(2025, 3, 28), utc(2025, 3, 31, 12)) == [
        utc(2025, 3, 28, 1),  # 02:00 CET
        utc(2025, 3, 29, 1),
        utc(2025, 3, 30, 1),  # the jump: 03:00 CEST
        utc(2025, 3, 31, 0),  # 02:00 CEST
    ]
    # Any skipped time runs at the jump (not shifted by the hour to 03:30).
    half_past = Schedule.parse({"cron": "30 2 * * *", "timezone": BERLIN})
    assert half_past.slots_between(utc(2025, 3, 29, 12), utc(2025, 3, 31, 12)) == [
        utc(2025, 3, 30, 1),
        utc(2025, 3, 31, 0, 30),
    ]
    assert half_past.next_after(utc(2025, 3, 29, 12)) == utc(2025, 3, 30, 1)
    # Skipped quarter hours collapse into the one slot at the jump.
    quarters = Schedule.parse({"cron": "*/15 * * * *", "timezone": BERLIN})
    assert quarters.slots_between(utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 1, 30)) == [
        utc(2025, 3, 30, 0, 45),  # 01:45 CET
        utc(2025, 3, 30, 1, 0),  # 03:00 CEST (and the skipped 02:00-02:45)
        utc(2025, 3, 30, 1, 15),
        utc(2025, 3, 30, 1, 30),
    ]


def test_a_repeated_wall_clock_time_runs_once() -> None:
    # 2025-10-26: Berlin's clocks go back from 03:00 CEST (01:00 UTC) to 02:00 CET; 02:00-02:59 happen twice.
    repeated = Schedule.parse({"cron": "30 2 * * *", "timezone": BERLIN})
    assert repeated.slots_between(utc(2025, 10, 25), utc(2025, 10, 28)) == [
        utc(2025, 10, 25, 0, 30),  # 02:30 CEST
        utc(2025, 10, 26, 0, 30),  # the first 02:30 (CEST); not again at 01:30 UTC
        utc(2025, 10, 27, 1, 30),  # 02:30 CET
    ]
    # Asked from inside the repeated hour, the second 02:30 is not a slot either.
    assert repeated.next_after(utc(2025, 10, 26, 0, 45)) == utc(2025, 10, 27, 1, 30)
    assert repeated.slots_between(utc(2025, 10, 26, 0, 45), utc(2025, 10, 26, 1, 45)) == []
    # 01:30 is before the repeated hour in Berlin: once a day, its UTC time moves with the offset.
    before = Schedule.parse({"cron": "30 1 * * *", "timezone": BERLIN})
    assert before.slots_between(utc(2025, 10, 25), utc(2025, 10, 28)) == [
        utc(2025, 10, 25, 23, 30),  # 2025-10-26 01:30 CEST
        utc(2025, 10, 27, 0, 30),  # 2025-10-27 01:30 CET
    ]
    # In New York the clocks go back at 02:00 EDT (06:00 UTC) to 01:00 EST: 01:30 happens twice.
    new_york = Schedule.parse({"cron": "30 1 * * *", "timezone": "America/New_York"})
    assert new_york.slots_between(utc(2025, 11, 1, 12), utc(2025, 11, 3, 12)) == [
        utc(2025, 11, 2, 5, 30),  # 01:30 EDT; 01:30 EST (06:30 UTC) is the same wall-clock time
        utc(2025, 11, 3, 6, 30),
    ]
    # An hourly schedule has one slot for 02:00, so the UTC hour of the second 02:00 has none.
    hourly = Schedule.parse({"cron": "hourly", "timezone": BERLIN})
    assert hourly.slots_between(utc(2025, 10, 25, 23, 30), utc(2025, 10, 26, 2, 30)) == [
        utc(2025, 10, 26, 0, 0),  # 02:00 CEST
        utc(2025, 10, 26, 2, 0),  # 03:00 CET
    ]


def test_start_at_and_end_at_bound_the_slots() -> None:
    schedule = Schedule.parse(
        {"cron": "0 * * * *", "start_at": "2025-01-06T10:00:00Z", "end_at": "2025-01-06T12:30:00+00:00"}
    )
    assert schedule.slots_between(utc(2025, 1, 6, 8), utc(2025, 1, 6, 15)) == [
        utc(2025, 1, 6, 10),  # start_at itself is a slot
        utc(2025, 1, 6, 11),
        utc(2025, 1, 6, 12),
    ]
    assert schedule.next_after(utc(2025, 1, 6, 3)) == utc(2025, 1, 6, 10)
    assert schedule.next_after(utc(2025, 1, 6, 11, 59)) == utc(2025, 1, 6, 12)
    assert schedule.next_after(utc(2025, 1, 6, 12)) is None


def test_a_rare_expression_is_found_years_ahead() -> None:
    leap_day = Schedule.parse({"cron": "0 12 29 2 *"})
    assert leap_day.next_after(utc(2025, 3, 1)) == utc(2028, 2, 29, 12)
    assert leap_day.slots_between(utc(2023, 1, 1), utc(2030, 1, 1)) == [utc(2024, 2, 29, 12), utc(2028, 2, 29, 12)]


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        Schedule.parse({"cron": "daily"}).slots_between(datetime(2025, 1, 1), utc(2025, 1, 2))


# --- plan ------------------------------------------------------------------------------------------

EVERY_MINUTE = Schedule.parse({"cron": "* * * * *"})
LAST_SEEN = utc(2025, 1, 6, 10, 0)
# Five slots passed: 10:01 to 10:05.
FIVE = [utc(2025, 1, 6, 10, minute) for minute in range(1, 6)]


def plan_at(now: datetime, policy: str, max_slots: int = 24) -> tuple[list[datetime], list[datetime]]:
    return plan(EVERY_MINUTE, last_seen=LAST_SEEN, now=now, policy=policy, max_slots=max_slots)


def test_plan_latest_runs_the_newest_slot_and_misses_the_others() -> None:
    # 10:05 is 40 s old: late, like the others; the newest late slot runs.
    assert plan_at(utc(2025, 1, 6, 10, 5, 40), "latest") == (FIVE[4:], FIVE[:4])
    # On time (5 s old): the same.
    assert plan_at(utc(2025, 1, 6, 10, 5, 5), "latest") == (FIVE[4:], FIVE[:4])


def test_plan_all_runs_every_slot_up_to_the_cap_newest_kept() -> None:
    assert plan_at(utc(2025, 1, 6, 10, 5, 40), "all") == (FIVE, [])
    assert plan_at(utc(2025, 1, 6, 10, 5, 40), "all", max_slots=2) == (FIVE[3:], FIVE[:3])
    assert plan_at(utc(2025, 1, 6, 10, 5, 40), "all", max_slots=5) == (FIVE, [])


def test_plan_none_runs_only_an_on_time_slot() -> None:
    assert plan_at(utc(2025, 1, 6, 10, 5, 40), "none") == ([], FIVE)
    assert plan_at(utc(2025, 1, 6, 10, 5, 5), "none") == (FIVE[4:], FIVE[:4])
    # "On time" is younger than the grace: exactly the grace old is late.
    assert plan_at(FIVE[4] + DEFAULT_GRACE, "none") == ([], FIVE)
    assert plan_at(FIVE[4] + DEFAULT_GRACE - timedelta(microseconds=1), "none") == (FIVE[4:], FIVE[:4])


def test_plan_runs_every_on_time_slot_whatever_the_policy() -> None:
    # A grace longer than the schedule's period: 10:04 and 10:05 are both on time.
    for policy in ("latest", "none", "all"):
        run, missed = plan(
            EVERY_MINUTE,
            last_seen=LAST_SEEN,
            now=utc(2025, 1, 6, 10, 5, 10),
            policy=policy,
            max_slots=1,
            grace=timedelta(seconds=90),
        )
        assert (run, missed) == (FIVE[3:], FIVE[:3]), policy


def test_plan_without_due_slots_and_with_an_unknown_policy() -> None:
    assert plan_at(utc(2025, 1, 6, 10, 0, 59), "latest") == ([], [])
    with pytest.raises(ValueError, match="not one of latest, all, none"):
        plan_at(utc(2025, 1, 6, 10, 5), "some")


def test_starting_point() -> None:
    updated = utc(2025, 1, 6, 10, 0, 5)
    grace = timedelta(seconds=30)
    # No slot yet: slots before the schedule was set are not due.
    assert starting_point(last_slot=None, updated_at=updated, grace=grace) == updated
    # The newest recorded slot, when the report was not edited since.
    assert starting_point(last_slot=utc(2025, 1, 6, 10, 30), updated_at=updated, grace=grace) == utc(2025, 1, 6, 10, 30)
    # Edited after a downtime: the slots long before the edit are not due, the one just before it is.
    assert starting_point(last_slot=utc(2025, 1, 6, 9, 0), updated_at=updated, grace=grace) == utc(
        2025, 1, 6, 9, 59, 35
    )
