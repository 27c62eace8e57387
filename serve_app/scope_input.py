"""The content scope a caller is given, as input: by an API key's creator, or by a JWT's claims.

Both are held to the same bounds, so a scope is never larger to store, cache or apply than these.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from core.access import ContentScope

MAX_SCOPE_CATEGORIES = 100
MAX_SCOPE_CONTENT_IDS = 1000
MAX_SCOPE_VALUE_CHARS = 256


def _without_nul(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold U+0000: refused here rather than failing in the database.
    if "\x00" in text:
        raise ValueError("must not contain the NUL character (U+0000)")
    return text


ScopeValue = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SCOPE_VALUE_CHARS), AfterValidator(_without_nul)
]


class ScopeIn(BaseModel):
    """Content in any of ``categories``, or any of ``content_ids``; both empty = all content."""

    model_config = ConfigDict(extra="forbid")
    categories: list[ScopeValue] = Field(default_factory=list, max_length=MAX_SCOPE_CATEGORIES)
    content_ids: list[ScopeValue] = Field(default_factory=list, max_length=MAX_SCOPE_CONTENT_IDS)

    def to_scope(self) -> ContentScope:
        return ContentScope.of(self.categories, self.content_ids)
