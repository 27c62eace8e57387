"""The analytics layer: ingestion contract, metric catalog, and the analytics built on the event store."""
