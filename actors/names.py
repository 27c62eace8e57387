"""Names of the service's named actors, in one place."""

NAMESPACE = "analytics"
EVENT_STORE = "analytics-event-store"
LIVE_HUB = "analytics-live-hub"
REPORT_SCHEDULER = "analytics-report-scheduler"


def counter_shard(index: int) -> str:
    return f"analytics-counter-shard-{index}"
