"""What every resolver gets: the services it may call and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.fastapi import BaseContext

from core.access import Principal
from semantic.ingestion import IngestService
from storage.events import EventStore


@dataclass
class GraphQLContext(BaseContext):
    # None only for the in-browser IDE page; every resolver checks it through core.access.require.
    principal: Principal | None
    ingest: IngestService
    events: EventStore
    # The live layer (counter shards, trending, live hub) as seen from this replica.
    realtime: Any = None
    # The analytics services (semantic.analytics.Analytics): content, users, search.
    analytics: Any = None

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def build(cls, principal: Principal | None, services: Any) -> GraphQLContext:
        return cls(
            principal=principal,
            ingest=services.ingest,
            events=services.events,
            realtime=getattr(services, "realtime", None),
            analytics=getattr(services, "analytics", None),
        )
