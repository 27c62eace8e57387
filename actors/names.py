"""Names of the service's named actors, in one place."""

NAMESPACE = "analytics"
EVENT_STORE = "analytics-event-store"
