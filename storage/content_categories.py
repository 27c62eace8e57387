"""Content id -> category, from the content metadata dimension (the ``content_metadata`` view).

Trending ranks per category only for content that has metadata; without it an item is still
ranked globally.
"""

from __future__ import annotations

from storage.events import EventStore

METADATA_VIEW = "content_metadata"

_EXISTS_SQL = "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {name:String}"
_CATEGORIES_SQL = f"SELECT content_id, category FROM {METADATA_VIEW} WHERE category != ''"


async def load_categories(store: EventStore) -> dict[str, str]:
    exists = await store.query(_EXISTS_SQL, {"name": METADATA_VIEW})
    if not exists.rows or not exists.rows[0][0]:
        return {}
    result = await store.query(_CATEGORIES_SQL)
    return {str(content_id): str(category) for content_id, category in result.rows}
