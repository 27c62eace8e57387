"""What every benchmark shares: machine facts, percentiles, result files, and a service to measure."""

from __future__ import annotations

import asyncio
import os
import platform
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson

RESULTS_DIR = Path(__file__).resolve().parent / "results"
POSTGRES_ADMIN_DSN = os.environ.get("ANALYTICS_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for package in ("ray", "chdb", "clickhouse-connect", "fastapi", "uvicorn", "strawberry-graphql", "pyarrow", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "commit": commit or None,
    }


def percentiles(samples: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max of latencies in seconds, reported in milliseconds."""
    values = np.asarray(list(samples), dtype=float)
    if values.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "n": int(values.size),
        "p50_ms": round(float(p50) * 1000, 2),
        "p95_ms": round(float(p95) * 1000, 2),
        "p99_ms": round(float(p99) * 1000, 2),
        "mean_ms": round(float(values.mean()) * 1000, 2),
        "max_ms": round(float(values.max()) * 1000, 2),
    }


def write_result(name: str, payload: dict[str, Any], results_dir: Path | None = None) -> Path:
    folder = results_dir or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    document = {"benchmark": name, "at": datetime.now(UTC).isoformat(), "machine": machine_info(), **payload}
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return path


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BenchService:
    """The real service (Ray Serve + chDB actor) on a throwaway data dir and PostgreSQL database."""

    def __init__(self, **settings: Any) -> None:
        self._overrides = settings
        self._data_dir = Path(tempfile.mkdtemp(prefix="analytics-bench-"))
        self._database = f"analytics_bench_{secrets.token_hex(4)}"
        self.running: Any = None

    def __enter__(self) -> Any:
        from core.settings import Settings
        from serve_app import runtime

        asyncio.run(_admin(f'CREATE DATABASE "{self._database}"'))
        base, _, _ = POSTGRES_ADMIN_DSN.rpartition("/")
        settings = Settings(
            environment="production",
            data_dir=self._data_dir,
            port=free_port(),
            postgres_dsn=f"{base}/{self._database}",
            bootstrap_admin_key="ak_bench_" + secrets.token_urlsafe(24),
            **self._overrides,
        )
        self.running = runtime.start(settings)
        return self.running

    def __exit__(self, *exc: object) -> None:
        if self.running is not None:
            self.running.stop()
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{self._database}" WITH (FORCE)'))
        shutil.rmtree(self._data_dir, ignore_errors=True)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
