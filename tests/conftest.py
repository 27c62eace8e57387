"""Session-wide fixtures: the real PostgreSQL and Redis on this machine, and (for e2e tests)
the whole service on Ray Serve, started once per session."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

POSTGRES_ADMIN_DSN = os.environ.get("ANALYTICS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ANALYTICS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("ANALYTICS_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _database_dsn(name: str) -> str:
    base, _, _ = POSTGRES_ADMIN_DSN.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def make_database() -> Iterator:
    """Creates throwaway databases on the real PostgreSQL; all are dropped at the end of the session."""
    made: list[str] = []

    def make() -> str:
        name = f"analytics_test_{secrets.token_hex(4)}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return _database_dsn(name)

    yield make
    for name in made:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def unique() -> str:
    """A short random token to keep one test's data apart from another's."""
    return secrets.token_hex(6)


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def chdb_dir(session_tmp: Path) -> Path:
    """The one chDB data directory of this test process: chDB allows only one per process.

    Tests keep apart by using their own ``database=`` inside it.
    """
    path = session_tmp / "chdb"
    path.mkdir(exist_ok=True)
    return path.resolve()
