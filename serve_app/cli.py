"""The ``analytics`` command: ``analytics run`` starts the service in the foreground; ``create-key``,
``aggregate`` and ``backfill`` (serve_app/batch_cli.py) work with it."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from datetime import UTC, datetime

from core.access import Role
from core.settings import Settings
from serve_app.batch_cli import add_commands


def _run(_: argparse.Namespace) -> int:
    from serve_app.jwt_tokens import JwtVerifier
    from serve_app.runtime import start
    from serve_app.tls import check_tls_pair

    try:
        settings = Settings()
        check_tls_pair(settings)
        # JWT keys that do not load would otherwise fail every replica.
        JwtVerifier.from_settings(settings)
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
        f"  Dashboards:  {service.base_url}/  (sign in with the admin key)\n"
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


def _expiry(text: str) -> datetime:
    """``--expires-at``: an ISO 8601 time in the future (UTC unless it has an offset)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or time, e.g. 2027-01-31T00:00:00Z"
        ) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"{text!r} is not in the future")
    return moment


def _create_key(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from serve_app.scope_input import ScopeIn
    from storage.embedded_postgres import EmbeddedPostgres
    from storage.metadata import MetadataStore

    try:
        scope = ScopeIn(categories=args.category, content_ids=args.content_id).to_scope()
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = {"categories": "--category", "content_ids": "--content-id"}[str(first["loc"][0])]
        print(f"analytics create-key: {flag}: {first['msg']}", file=sys.stderr)
        return 2
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
            key, plain = await store.create_api_key(args.name, Role(args.role), expires_at=args.expires_at, scope=scope)
            details: dict[str, object] = {"role": key.role.value, "via": "cli"}
            if key.expires_at is not None:
                details["expires_at"] = key.expires_at.isoformat()
            if not scope.unrestricted:
                details["scope"] = {"categories": len(scope.categories), "content_ids": len(scope.content_ids)}
            await store.audit("api_key.create", actor_key_id=None, target=key.id, details=details)
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
    create.add_argument("--expires-at", type=_expiry, help="ISO 8601 time the key stops working (UTC unless given)")
    create.add_argument(
        "--category", action="append", default=[], help="limit the key to content of this category (repeatable)"
    )
    create.add_argument(
        "--content-id", action="append", default=[], help="limit the key to this content id (repeatable)"
    )
    create.set_defaults(func=_create_key)
    add_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
