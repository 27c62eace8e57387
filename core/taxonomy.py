"""The event taxonomy: every named event type, their categories, the groups the analytics count, and the
rule for custom types.

``EventType`` is the one list of names. The module-level constants below are the same names as plain
``str`` (and the groups as tuples and frozensets of them): hot paths compare and hash plain strings, and
SQL text is built from them, so nothing downstream spells an event type itself.
"""

from __future__ import annotations

import re
from enum import StrEnum


class EventType(StrEnum):
    # The spec's types.
    # Content events
    CONTENT_VIEW = "content_view"
    CONTENT_PLAY = "content_play"
    CONTENT_PAUSE = "content_pause"
    CONTENT_COMPLETE = "content_complete"
    CONTENT_SHARE = "content_share"
    CONTENT_BOOKMARK = "content_bookmark"
    # Search events
    SEARCH_QUERY = "search_query"
    SEARCH_RESULT_CLICK = "search_result_click"
    SEARCH_FILTER = "search_filter"
    # User events
    USER_REGISTER = "user_register"
    USER_LOGIN = "user_login"
    USER_LOGOUT = "user_logout"
    # System events
    API_REQUEST = "api_request"
    ERROR_OCCURRED = "error_occurred"
    IMPORT_STARTED = "import_started"
    IMPORT_COMPLETED = "import_completed"

    # Types the platform sends beyond the spec's list (custom types with a fixed meaning).
    CONTENT_LIKE = "content_like"
    CONTENT_COMMENT = "content_comment"
    CONTENT_RESUME = "content_resume"
    CONTENT_PUBLISHED = "content_published"
    CONTENT_UPDATED = "content_updated"
    SEARCH_IMPRESSION = "search_impression"
    RECOMMENDATION_IMPRESSION = "recommendation_impression"
    RECOMMENDATION_CLICK = "recommendation_click"
    IMPORT_FAILED = "import_failed"
    IMPORT_STAGE_COMPLETED = "import_stage_completed"
    PAGE_VIEW = "page_view"
    RESOURCE_USAGE = "resource_usage"
    HEALTH_CHECK = "health_check"
    PROCESSING_STARTED = "processing_started"
    PROCESSING_COMPLETED = "processing_completed"
    PROCESSING_FAILED = "processing_failed"
    # A statement this service ran on one of its databases (ClickHouse, PostgreSQL, Redis).
    DATABASE_QUERY = "database_query"


class EventCategory(StrEnum):
    CONTENT = "content"
    SEARCH = "search"
    USER = "user"
    SYSTEM = "system"
    IMPORT = "import"
    RECOMMENDATION = "recommendation"
    CUSTOM = "custom"


# --- the names as plain strings ----------------------------------------------------------------------
CONTENT_VIEW = EventType.CONTENT_VIEW.value
CONTENT_PLAY = EventType.CONTENT_PLAY.value
CONTENT_PAUSE = EventType.CONTENT_PAUSE.value
CONTENT_COMPLETE = EventType.CONTENT_COMPLETE.value
CONTENT_SHARE = EventType.CONTENT_SHARE.value
CONTENT_BOOKMARK = EventType.CONTENT_BOOKMARK.value
SEARCH_QUERY = EventType.SEARCH_QUERY.value
SEARCH_RESULT_CLICK = EventType.SEARCH_RESULT_CLICK.value
SEARCH_FILTER = EventType.SEARCH_FILTER.value
USER_REGISTER = EventType.USER_REGISTER.value
USER_LOGIN = EventType.USER_LOGIN.value
USER_LOGOUT = EventType.USER_LOGOUT.value
API_REQUEST = EventType.API_REQUEST.value
ERROR_OCCURRED = EventType.ERROR_OCCURRED.value
IMPORT_STARTED = EventType.IMPORT_STARTED.value
IMPORT_COMPLETED = EventType.IMPORT_COMPLETED.value
CONTENT_LIKE = EventType.CONTENT_LIKE.value
CONTENT_COMMENT = EventType.CONTENT_COMMENT.value
CONTENT_RESUME = EventType.CONTENT_RESUME.value
CONTENT_PUBLISHED = EventType.CONTENT_PUBLISHED.value
CONTENT_UPDATED = EventType.CONTENT_UPDATED.value
SEARCH_IMPRESSION = EventType.SEARCH_IMPRESSION.value
RECOMMENDATION_IMPRESSION = EventType.RECOMMENDATION_IMPRESSION.value
RECOMMENDATION_CLICK = EventType.RECOMMENDATION_CLICK.value
IMPORT_FAILED = EventType.IMPORT_FAILED.value
IMPORT_STAGE_COMPLETED = EventType.IMPORT_STAGE_COMPLETED.value
PAGE_VIEW = EventType.PAGE_VIEW.value
RESOURCE_USAGE = EventType.RESOURCE_USAGE.value
HEALTH_CHECK = EventType.HEALTH_CHECK.value
PROCESSING_STARTED = EventType.PROCESSING_STARTED.value
PROCESSING_COMPLETED = EventType.PROCESSING_COMPLETED.value
PROCESSING_FAILED = EventType.PROCESSING_FAILED.value
DATABASE_QUERY = EventType.DATABASE_QUERY.value

# --- groups of types ---------------------------------------------------------------------------------
# A play segment opens with one of these and closes with one of those (watch time, storage/playback_rollup).
SEGMENT_OPENERS: tuple[str, ...] = (CONTENT_PLAY, CONTENT_RESUME)
SEGMENT_CLOSERS: tuple[str, ...] = (CONTENT_PAUSE, CONTENT_COMPLETE)
# The events watch time is made of: segments, else the durations views report.
PLAYBACK_EVENT_TYPES: tuple[str, ...] = (CONTENT_VIEW, *SEGMENT_OPENERS, *SEGMENT_CLOSERS)
# Events that put a session among a content's playback sessions.
PLAYBACK_SESSION_TYPES: tuple[str, ...] = (CONTENT_VIEW, CONTENT_PLAY, CONTENT_COMPLETE)
# Events that count as a page a user saw (pages visited, bounce, journeys).
PAGE_TYPES: tuple[str, ...] = (CONTENT_VIEW, SEARCH_QUERY, PAGE_VIEW)
# Events about one content item (named by content_id or properties.content_id) that content analytics count.
CONTENT_EVENT_TYPES: tuple[str, ...] = (
    CONTENT_VIEW,
    CONTENT_PLAY,
    CONTENT_COMPLETE,
    CONTENT_LIKE,
    CONTENT_SHARE,
    CONTENT_BOOKMARK,
    CONTENT_COMMENT,
    SEARCH_IMPRESSION,
    SEARCH_RESULT_CLICK,
    RECOMMENDATION_IMPRESSION,
    RECOMMENDATION_CLICK,
)
# The spec's search events (what the live counters count as searches).
SEARCH_EVENT_TYPES: tuple[str, ...] = (SEARCH_QUERY, SEARCH_RESULT_CLICK, SEARCH_FILTER)

# Jobs: imports and media processing, read the same way (semantic/imports.py).
IMPORT_JOB_TYPES: tuple[str, ...] = (IMPORT_STARTED, IMPORT_STAGE_COMPLETED, IMPORT_COMPLETED, IMPORT_FAILED)
PROCESSING_JOB_TYPES: tuple[str, ...] = (PROCESSING_STARTED, PROCESSING_COMPLETED, PROCESSING_FAILED)
# What the service health board reads (semantic/system.py).
SYSTEM_EVENT_TYPES: tuple[str, ...] = (API_REQUEST, ERROR_OCCURRED, RESOURCE_USAGE, HEALTH_CHECK, DATABASE_QUERY)

# --- categories --------------------------------------------------------------------------------------
# The platform's types beyond the spec, with their category (page_view's is not its prefix's).
WELL_KNOWN_CUSTOM_TYPES: dict[str, EventCategory] = {
    CONTENT_LIKE: EventCategory.CONTENT,
    CONTENT_COMMENT: EventCategory.CONTENT,
    CONTENT_RESUME: EventCategory.CONTENT,
    CONTENT_PUBLISHED: EventCategory.CONTENT,
    CONTENT_UPDATED: EventCategory.CONTENT,
    SEARCH_IMPRESSION: EventCategory.SEARCH,
    RECOMMENDATION_IMPRESSION: EventCategory.RECOMMENDATION,
    RECOMMENDATION_CLICK: EventCategory.RECOMMENDATION,
    IMPORT_FAILED: EventCategory.IMPORT,
    IMPORT_STAGE_COMPLETED: EventCategory.IMPORT,
    PAGE_VIEW: EventCategory.USER,
    RESOURCE_USAGE: EventCategory.SYSTEM,
    HEALTH_CHECK: EventCategory.SYSTEM,
    DATABASE_QUERY: EventCategory.SYSTEM,
    PROCESSING_STARTED: EventCategory.IMPORT,
    PROCESSING_COMPLETED: EventCategory.IMPORT,
    PROCESSING_FAILED: EventCategory.IMPORT,
}

# The spec's types: by prefix, but for the system events.
_SPEC_CATEGORY: dict[str, EventCategory] = {
    **{t.value: EventCategory.CONTENT for t in EventType if t.value.startswith("content_")},
    **{t.value: EventCategory.SEARCH for t in EventType if t.value.startswith("search_")},
    **{t.value: EventCategory.USER for t in EventType if t.value.startswith("user_")},
    API_REQUEST: EventCategory.SYSTEM,
    ERROR_OCCURRED: EventCategory.SYSTEM,
    IMPORT_STARTED: EventCategory.IMPORT,
    IMPORT_COMPLETED: EventCategory.IMPORT,
}
# Every named type's category (the prefix rule above also meets some platform types: the table wins).
_BUILTIN_CATEGORY: dict[str, EventCategory] = {**_SPEC_CATEGORY, **WELL_KNOWN_CUSTOM_TYPES}

# Custom event types: lower snake case, starting with a letter, 2-64 characters.
CUSTOM_EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
CATEGORY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,31}$")

_PREFIX_CATEGORY = {
    "content": EventCategory.CONTENT,
    "search": EventCategory.SEARCH,
    "user": EventCategory.USER,
    "import": EventCategory.IMPORT,
    "recommendation": EventCategory.RECOMMENDATION,
    "system": EventCategory.SYSTEM,
}


def is_known_event_type(event_type: str) -> bool:
    return event_type in _BUILTIN_CATEGORY


# Plain strings for the ingest path: an enum member's ``.value`` is a property lookup per event.
_BUILTIN_CATEGORY_NAME = {event_type: category.value for event_type, category in _BUILTIN_CATEGORY.items()}


def default_category(event_type: str) -> str:
    """Category of an event type when the client leaves it out."""
    known = _BUILTIN_CATEGORY_NAME.get(event_type)
    if known is not None:
        return known
    prefix = event_type.split("_", 1)[0]
    return _PREFIX_CATEGORY.get(prefix, EventCategory.CUSTOM).value
