"""``analytics create-key`` (serve_app/cli.py) with an expiry and a scope, on the real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from core.access import ContentScope, Role
from serve_app.cli import main
from storage.metadata import MetadataStore


async def stored(dsn: str, plain: str) -> tuple:
    store = await MetadataStore.connect(dsn)
    try:
        key = await store.find_api_key(plain)
        details = await store.pool.fetchval("SELECT details FROM audit_log WHERE target = $1", key.id)
        return key, details
    finally:
        await store.close()


def test_create_key_with_expiry_and_scope(
    make_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = make_database()
    monkeypatch.setenv("ANALYTICS_POSTGRES_DSN", dsn)
    argv = ["create-key", "--name", "newsroom", "--role", "viewer", "--expires-at", "2099-01-31T00:00:00Z"]
    argv += ["--category", "news", "--category", "sport", "--content-id", "c1"]
    assert main(argv) == 0
    plain = capsys.readouterr().out.strip()
    assert plain.startswith("ak_")
    key, details = asyncio.run(stored(dsn, plain))
    assert (key.name, key.role, key.scope) == ("newsroom", Role.VIEWER, ContentScope.of(["news", "sport"], ["c1"]))
    assert key.expires_at.isoformat() == "2099-01-31T00:00:00+00:00"
    assert '"via": "cli"' in details and '"expires_at": "2099-01-31T00:00:00+00:00"' in details


def test_create_key_refuses_a_past_expiry_and_an_empty_scope_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before any database is reached.
    monkeypatch.setenv("ANALYTICS_POSTGRES_DSN", "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(SystemExit) as exc:
        main(["create-key", "--name", "n", "--role", "viewer", "--expires-at", "2001-01-01"])
    assert exc.value.code == 2
    assert "--expires-at: '2001-01-01' is not in the future" in capsys.readouterr().err
    assert main(["create-key", "--name", "n", "--role", "viewer", "--content-id", ""]) == 2
    assert "--content-id: String should have at least 1 character" in capsys.readouterr().err
