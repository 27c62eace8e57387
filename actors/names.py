"""Names of the service's named actors, in one place."""

NAMESPACE = "analytics"
EVENT_STORE = "analytics-event-store"
LIVE_HUB = "analytics-live-hub"


def counter_shard(index: int) -> str:
    return f"analytics-counter-shard-{index}"
