"""Session-wide fixtures: the real PostgreSQL and Redis on this machine, and (for e2e tests)
the whole service on Ray Serve, started once per session."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from storage.metadata import MetadataStore

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


@pytest.fixture(scope="module")
def dsn(make_database: Callable[[], str]) -> str:
    """A fresh PostgreSQL database for the module (a plain fixture: make_database runs its own event loop)."""
    return make_database()


@pytest.fixture(scope="module")
async def migrated(dsn: str) -> AsyncIterator[MetadataStore]:
    """The module's database with every metadata migration applied."""
    store = await MetadataStore.connect(dsn)
    await store.migrate()
    yield store
    await store.close()


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


# The chDB directory of this process, once a test has asked for it.
_CHDB_DIRS: list[Path] = []


@pytest.fixture(scope="session")
def chdb_dir(session_tmp: Path) -> Path:
    """The one chDB data directory of this test process: chDB allows only one per process.

    Tests keep apart by using their own ``database=`` inside it; each module's are dropped after it
    (``_drop_the_modules_chdb_databases``).
    """
    path = session_tmp / "chdb"
    path.mkdir(exist_ok=True)
    _CHDB_DIRS.append(path.resolve())
    return path.resolve()


_ENGINE_DATABASES = frozenset({"default", "system", "information_schema", "INFORMATION_SCHEMA", "_local"})


@pytest.fixture(scope="module", autouse=True)
def _drop_the_modules_chdb_databases() -> Iterator[None]:
    """Drop every chDB database a test module made, once the module is done (its own fixtures are
    torn down first: this fixture is set up before them).

    They all live in one engine in this process (``chdb_dir``): kept, their tables' background merges
    and the engine's memory grow with every module, and the modules after run slower and slower.
    """
    yield
    if not _CHDB_DIRS:
        return
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=f"chdb://{_CHDB_DIRS[0]}")
    try:
        for (name,) in client.query("SELECT name FROM system.databases").result_rows:
            if name not in _ENGINE_DATABASES:
                client.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")
    finally:
        client.close()
