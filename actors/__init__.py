"""Ray actors, one per module."""
