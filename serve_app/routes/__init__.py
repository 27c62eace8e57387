"""One router per resource, aggregated once in the app factory."""
