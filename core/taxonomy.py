"""The event taxonomy: the spec's event types, their categories, and the rule for custom types."""

from __future__ import annotations

import re
from enum import StrEnum


class EventType(StrEnum):
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


class EventCategory(StrEnum):
    CONTENT = "content"
    SEARCH = "search"
    USER = "user"
    SYSTEM = "system"
    IMPORT = "import"
    RECOMMENDATION = "recommendation"
    CUSTOM = "custom"


# Types the platform sends beyond the spec's enum; they get a category like the built-ins.
WELL_KNOWN_CUSTOM_TYPES: dict[str, EventCategory] = {
    "content_like": EventCategory.CONTENT,
    "content_comment": EventCategory.CONTENT,
    "content_resume": EventCategory.CONTENT,
    "content_published": EventCategory.CONTENT,
    "content_updated": EventCategory.CONTENT,
    "search_impression": EventCategory.SEARCH,
    "recommendation_impression": EventCategory.RECOMMENDATION,
    "recommendation_click": EventCategory.RECOMMENDATION,
    "import_failed": EventCategory.IMPORT,
    "import_stage_completed": EventCategory.IMPORT,
    "page_view": EventCategory.USER,
}

_BUILTIN_CATEGORY: dict[str, EventCategory] = {
    **{t.value: EventCategory.CONTENT for t in EventType if t.value.startswith("content_")},
    **{t.value: EventCategory.SEARCH for t in EventType if t.value.startswith("search_")},
    **{t.value: EventCategory.USER for t in EventType if t.value.startswith("user_")},
    EventType.API_REQUEST.value: EventCategory.SYSTEM,
    EventType.ERROR_OCCURRED.value: EventCategory.SYSTEM,
    EventType.IMPORT_STARTED.value: EventCategory.IMPORT,
    EventType.IMPORT_COMPLETED.value: EventCategory.IMPORT,
    **{name: category for name, category in WELL_KNOWN_CUSTOM_TYPES.items()},
}

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
