import pytest

from core import taxonomy
from core.taxonomy import (
    CATEGORY_PATTERN,
    CONTENT_EVENT_TYPES,
    CUSTOM_EVENT_TYPE_PATTERN,
    IMPORT_JOB_TYPES,
    PAGE_TYPES,
    PLAYBACK_EVENT_TYPES,
    PLAYBACK_SESSION_TYPES,
    PROCESSING_JOB_TYPES,
    SEARCH_EVENT_TYPES,
    SEGMENT_CLOSERS,
    SEGMENT_OPENERS,
    SYSTEM_EVENT_TYPES,
    WELL_KNOWN_CUSTOM_TYPES,
    EventCategory,
    EventType,
    default_category,
    is_known_event_type,
)

BUILTIN_CATEGORIES = {
    EventType.CONTENT_VIEW: "content",
    EventType.CONTENT_PLAY: "content",
    EventType.CONTENT_PAUSE: "content",
    EventType.CONTENT_COMPLETE: "content",
    EventType.CONTENT_SHARE: "content",
    EventType.CONTENT_BOOKMARK: "content",
    EventType.SEARCH_QUERY: "search",
    EventType.SEARCH_RESULT_CLICK: "search",
    EventType.SEARCH_FILTER: "search",
    EventType.USER_REGISTER: "user",
    EventType.USER_LOGIN: "user",
    EventType.USER_LOGOUT: "user",
    EventType.API_REQUEST: "system",
    EventType.ERROR_OCCURRED: "system",
    EventType.IMPORT_STARTED: "import",
    EventType.IMPORT_COMPLETED: "import",
}


def test_the_enum_is_the_spec_types_and_the_well_known_ones():
    assert set(BUILTIN_CATEGORIES) | set(WELL_KNOWN_CUSTOM_TYPES) == set(EventType)
    assert not set(BUILTIN_CATEGORIES) & set(WELL_KNOWN_CUSTOM_TYPES)


def test_every_member_has_a_plain_string_constant():
    # Hot paths hash and compare these: they must be plain str, not enum members.
    for member in EventType:
        constant = getattr(taxonomy, member.name)
        assert type(constant) is str and constant == member.value


GROUPS = {
    "SEGMENT_OPENERS": SEGMENT_OPENERS,
    "SEGMENT_CLOSERS": SEGMENT_CLOSERS,
    "PLAYBACK_EVENT_TYPES": PLAYBACK_EVENT_TYPES,
    "PLAYBACK_SESSION_TYPES": PLAYBACK_SESSION_TYPES,
    "PAGE_TYPES": PAGE_TYPES,
    "CONTENT_EVENT_TYPES": CONTENT_EVENT_TYPES,
    "SEARCH_EVENT_TYPES": SEARCH_EVENT_TYPES,
    "IMPORT_JOB_TYPES": IMPORT_JOB_TYPES,
    "PROCESSING_JOB_TYPES": PROCESSING_JOB_TYPES,
    "SYSTEM_EVENT_TYPES": SYSTEM_EVENT_TYPES,
}


@pytest.mark.parametrize("name", GROUPS)
def test_groups_are_plain_strings_of_named_types(name):
    group = GROUPS[name]
    assert group and len(set(group)) == len(group)
    assert all(type(t) is str for t in group)
    assert set(group) <= {t.value for t in EventType}


def test_groups():
    assert SEGMENT_OPENERS == ("content_play", "content_resume")
    assert SEGMENT_CLOSERS == ("content_pause", "content_complete")
    playback = ("content_view", "content_play", "content_resume", "content_pause", "content_complete")
    assert playback == PLAYBACK_EVENT_TYPES
    assert PLAYBACK_SESSION_TYPES == ("content_view", "content_play", "content_complete")
    assert PAGE_TYPES == ("content_view", "search_query", "page_view")
    assert SEARCH_EVENT_TYPES == ("search_query", "search_result_click", "search_filter")
    assert len(CONTENT_EVENT_TYPES) == 11


@pytest.mark.parametrize(("event_type", "category"), BUILTIN_CATEGORIES.items(), ids=lambda v: str(v))
def test_builtin_types_have_their_category(event_type, category):
    assert default_category(event_type.value) == category
    assert is_known_event_type(event_type.value) is True


@pytest.mark.parametrize(
    ("event_type", "category"),
    [
        ("content_like", "content"),
        ("content_comment", "content"),
        ("content_resume", "content"),
        ("content_published", "content"),
        ("content_updated", "content"),
        ("search_impression", "search"),
        ("recommendation_impression", "recommendation"),
        ("recommendation_click", "recommendation"),
        ("import_failed", "import"),
        ("import_stage_completed", "import"),
        # Not derivable from the prefix: the table must win.
        ("page_view", "user"),
        ("resource_usage", "system"),
        ("health_check", "system"),
        ("database_query", "system"),
        ("processing_started", "import"),
        ("processing_completed", "import"),
        ("processing_failed", "import"),
    ],
)
def test_well_known_custom_types(event_type, category):
    assert WELL_KNOWN_CUSTOM_TYPES[event_type].value == category
    assert default_category(event_type) == category
    assert is_known_event_type(event_type) is True


def test_well_known_custom_types_are_all_tested_and_valid():
    assert len(WELL_KNOWN_CUSTOM_TYPES) == 17
    assert [t for t in WELL_KNOWN_CUSTOM_TYPES if not CUSTOM_EVENT_TYPE_PATTERN.match(t)] == []


@pytest.mark.parametrize(
    ("event_type", "category"),
    [
        ("content_foo", "content"),
        ("search_autocomplete", "search"),
        ("user_profile_updated", "user"),
        ("import_paused", "import"),
        ("recommendation_dismissed", "recommendation"),
        ("system_restart", "system"),
        ("xyz_thing", "custom"),
        ("video_play", "custom"),
        # The prefix is the text before the first underscore, not a substring.
        ("contents_view", "custom"),
        ("api_call", "custom"),
        ("error_logged", "custom"),
        ("newsletter", "custom"),
    ],
)
def test_custom_types_use_the_prefix_rule(event_type, category):
    assert is_known_event_type(event_type) is False
    assert default_category(event_type) == category


def test_categories_are_valid_category_names():
    assert [c.value for c in EventCategory if not CATEGORY_PATTERN.match(c.value)] == []
    assert default_category("anything_else") == EventCategory.CUSTOM.value


@pytest.mark.parametrize("name", ["ab", "content_view", "a1", "x_", "a_b_c_9", "a" * 64])
def test_custom_event_type_pattern_accepts(name):
    assert CUSTOM_EVENT_TYPE_PATTERN.match(name) is not None


@pytest.mark.parametrize(
    "name",
    ["", "a", "a" * 65, "1abc", "_abc", "Content_view", "content-view", "content view", "content.view", "cöntent"],
)
def test_custom_event_type_pattern_refuses(name):
    assert CUSTOM_EVENT_TYPE_PATTERN.match(name) is None
