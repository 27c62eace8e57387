"""Adapters behind small interfaces: events (ClickHouse / chDB), metadata (PostgreSQL), cache (Redis / in-process)."""
