"""The real-time layer's actors, created together: counter shards and the live hub (which ranks trending)."""

from __future__ import annotations

import ray

from actors.counter_shard import counter_shard_actors
from actors.live_hub import live_hub_actor
from core.settings import Settings


def realtime_actors(settings: Settings, *, detached: bool = False) -> list[ray.actor.ActorHandle]:
    """Create (or look up) every real-time actor; the event store actor must exist already."""
    return [
        *counter_shard_actors(settings, detached=detached),
        live_hub_actor(settings, detached=detached),
    ]


def wait_ready(handles: list[ray.actor.ActorHandle], timeout_seconds: float = 120.0) -> None:
    """Block until every shard has rebuilt its window and the loops run."""
    ray.get([h.ready.remote() for h in handles], timeout=timeout_seconds)
