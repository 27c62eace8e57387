"""How fresh an analytics answer is: the data watermark.

The event store reports, per read, how far its tables are: ``stored_seq`` (inserts in the events
table), ``fed_seq`` (inserts fed to the rollups) and ``as_of`` (every event acknowledged before this
instant is in both). Answers carry ``as_of``; the result cache keys on the two sequence numbers, so
a cached answer is never older than the data it would be computed from now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Watermark:
    stored_seq: int
    fed_seq: int
    as_of_ms: int

    @property
    def as_of(self) -> datetime:
        return datetime.fromtimestamp(self.as_of_ms / 1000, UTC)

    @property
    def key(self) -> str:
        return f"{self.stored_seq}.{self.fed_seq}"
