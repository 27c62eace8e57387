"""The ``analytics`` command: ``analytics run`` starts the service in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading

from core.access import Role
from core.settings import Settings


def _run(_: argparse.Namespace) -> int:
    from serve_app.runtime import start
    from serve_app.tls import check_tls_pair

    try:
        settings = Settings()
        check_tls_pair(settings)
    except ValueError as exc:
        # A setting that cannot work stops the start with what to change, not a traceback.
        print(f"analytics run: the settings cannot start the service:\n{exc}", file=sys.stderr, flush=True)
        return 2
    print(f"Starting the analytics service (data in {settings.data_dir.resolve()}) ...", flush=True)
    service = start(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(
        "\nAnalytics service is ready.\n"
        f"  REST API:    {service.base_url}/api/v1/analytics/...\n"
        f"  GraphQL:     {service.base_url}/graphql\n"
        f"  API docs:    {service.base_url}/docs\n"
        f"  Health:      {service.base_url}/healthz  {service.base_url}/readyz\n"
        f"  Metrics:     {service.base_url}/metrics\n"
        f"  Admin key:   {_admin_key_note(service.settings, service.admin_key)}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    # Waiting in short steps: a signal that lands on one of Ray's threads only flags the handler,
    # which runs when this (the main) thread next wakes; a wait with no timeout would never wake.
    while not stop.wait(0.5):
        pass
    print("Stopping ...", flush=True)
    service.stop()
    return 0


def _admin_key_note(settings: Settings, admin_key: str | None) -> str:
    """Where the admin key is, never the key: this output often ends up in a log (systemd's journal)."""
    from serve_app.runtime import admin_key_file

    if settings.bootstrap_admin_key:
        return "the value of ANALYTICS_BOOTSTRAP_ADMIN_KEY"
    if admin_key is not None:
        return f"in {admin_key_file(settings)} (readable by this user only)"
    return "made at the first start (see ANALYTICS_BOOTSTRAP_ADMIN_KEY)"


def _create_key(args: argparse.Namespace) -> int:
    from storage.embedded_postgres import EmbeddedPostgres
    from storage.metadata import MetadataStore

    settings = Settings()
    embedded = None
    dsn = settings.postgres_dsn
    if not dsn:
        embedded = EmbeddedPostgres(settings.postgres_data_path)
        dsn = embedded.start()

    async def create() -> str:
        store = await MetadataStore.connect(dsn)
        try:
            await store.migrate()
            key, plain = await store.create_api_key(args.name, Role(args.role))
            await store.audit(
                "api_key.create", actor_key_id=None, target=key.id, details={"role": key.role.value, "via": "cli"}
            )
            return plain
        finally:
            await store.close()

    try:
        print(asyncio.run(create()))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="analytics", description="Analytics & Reporting Service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the service in the foreground (Ctrl-C stops it)").set_defaults(func=_run)
    create = sub.add_parser("create-key", help="create an API key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.set_defaults(func=_create_key)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
