"""What every benchmark shares: machine facts, percentiles, result files, and a service to measure."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson

REPO_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_DIR / "bench" / "results"
VERSIONED_PACKAGES = (
    "ray",
    "chdb",
    "clickhouse-connect",
    "fastapi",
    "uvicorn",
    "strawberry-graphql",
    "pyarrow",
    "pydantic",
)
# Environment variables whose names contain one of these are never written into a result.
_SECRET_WORDS = ("KEY", "DSN", "URL", "PASSWORD", "SECRET", "TOKEN")
POSTGRES_ADMIN_DSN = os.environ.get("ANALYTICS_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _git(*args: str) -> str:
    """Output of a read-only git command in this repository, or "" where git or the repository is missing."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def machine_info() -> dict[str, Any]:
    """What a figure depends on: the machine, Python and the main packages, the date, the code measured."""
    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    commit = _git("rev-parse", "--short", "HEAD")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit or None,
        # Tracked files changed since that commit: the figures are then of code no commit holds.
        "worktree_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None,
    }


def run_command() -> str | None:
    """How this benchmark was started (``python -m bench.bench_x --size small``), when it was a bench module."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = getattr(spec, "name", "") or ""
    if not module.startswith("bench."):
        return None
    return shlex.join(["python", "-m", module, *sys.argv[1:]])


def run_environment() -> dict[str, str]:
    """The ``ANALYTICS_*`` settings the run was given, leaving out anything that may hold a secret."""
    return {
        key: value
        for key, value in sorted(os.environ.items())
        if key.startswith("ANALYTICS_") and not any(word in key for word in _SECRET_WORDS)
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


def size_arguments(description: str | None, sizes: Iterable[str]) -> argparse.Namespace:
    """``--size`` and ``--results-dir`` from the command line: what every benchmark takes (bench.run
    passes its own ``--results-dir`` on to each)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(sizes), default="small")
    parser.add_argument("--results-dir", type=Path, default=None)
    return parser.parse_args()


def write_result(name: str, payload: dict[str, Any], results_dir: Path | None = None) -> Path:
    """Write ``<results_dir>/<name>.json``, replacing the previous result of that benchmark and mode.

    One stable file per name: git keeps the earlier results, and docs/benchmarks.md and the README
    render their figures from these files (``python -m bench.benchmarks_doc``).
    """
    folder = results_dir or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    document = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        "command": run_command(),
        "environment": run_environment(),
        **payload,
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return path


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


class Progress:
    """A one-line progress bar on stderr (redrawn at most 5 times a second), and a final line."""

    def __init__(self, total: int, label: str, unit: str = "events", enabled: bool | None = None) -> None:
        self.total = max(1, total)
        self.label = label
        self.unit = unit
        self.done = 0
        self.started = time.perf_counter()
        self._drawn = 0.0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def advance(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if self.enabled and (now - self._drawn > 0.2 or self.done >= self.total):
            self._drawn = now
            elapsed = now - self.started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            share = min(1.0, self.done / self.total)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            bar = "#" * int(share * 30)
            sys.stderr.write(
                f"\r{self.label} [{bar:<30}] {share:6.1%} {self.done:,}/{self.total:,} {self.unit} "
                f"{rate:,.0f}/s ETA {eta:4.0f}s "
            )
            sys.stderr.flush()

    def close(self) -> float:
        elapsed = time.perf_counter() - self.started
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
        return elapsed


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return [round(x, 2) for x in os.getloadavg()]


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
        global _DRIVER_AT_START
        _DRIVER_AT_START = _own_memory()
        return self.running

    def __exit__(self, *exc: object) -> None:
        global _DRIVER_AT_START
        _DRIVER_AT_START = None
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


# Ray process titles ("ray::ClassName...") name what a process does; the rest by executable.
def _process_role(process: Any) -> str:
    try:
        cmdline = process.cmdline()
    except Exception:  # noqa: BLE001 - a process may vanish while we look
        return "gone"
    title = cmdline[0] if cmdline else process.name()
    if title.startswith("ray::"):
        name = title[5:].split(".", 1)[0].split(":", 1)[0].split(" ", 1)[0]
        return name or "ray_worker"
    base = os.path.basename(title)
    if base in ("raylet", "gcs_server") or "ray/" in " ".join(cmdline[:2]):
        return "ray_system"
    return base or "process"


def service_processes(exclude: Sequence[int] = ()) -> list[Any]:
    """This process (the Ray driver) and every process under it, except ``exclude`` and their children."""
    import psutil

    me = psutil.Process()
    skipped: set[int] = set(exclude)
    for pid in exclude:
        with contextlib.suppress(psutil.Error):
            skipped.update(c.pid for c in psutil.Process(pid).children(recursive=True))
    return [me] + [p for p in me.children(recursive=True) if p.pid not in skipped]


def cpu_by_role(processes: Sequence[Any]) -> dict[str, float]:
    """CPU seconds (user + system) used so far, summed per process role."""
    out: dict[str, float] = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except Exception:  # noqa: BLE001, S112 - a process may end while we look
            continue
        role = "driver" if process.pid == os.getpid() else _process_role(process)
        out[role] = out.get(role, 0.0) + times.user + times.system
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    used = {role: after[role] - before.get(role, 0.0) for role in after}
    return {role: round(seconds, 3) for role, seconds in used.items() if seconds > 0.0005}


def settle(
    event_store: Any, processes: Sequence[Any], *, quiet_share: float = 0.15, max_seconds: float = 90.0
) -> dict[str, float]:
    """Wait until the work a cell left behind is done, so the next cell measures its own load.

    A cell's tail is real work (the rollup feed of its rows, the merges of its parts), but run
    into the next cell it would be charged to that cell: after the throughput cells, the event
    store spent seconds merging while the single-event cells ran. So: the rollups catch up with
    every acknowledged event, then ``processes`` together use under ``quiet_share`` of one core
    for a whole second. Returns how long that took and the CPU used meanwhile.
    """
    import ray

    started = time.monotonic()
    before = cpu_by_role(processes)
    ray.get(event_store.settle_rollups.remote())
    while time.monotonic() - started < max_seconds:
        window = sum(cpu_by_role(processes).values())
        time.sleep(1.0)
        if sum(cpu_by_role(processes).values()) - window < quiet_share:
            break
    used = cpu_delta(before, cpu_by_role(processes))
    return {"seconds": round(time.monotonic() - started, 2), "cpu_seconds": round(sum(used.values()), 3)}


# (rss, pss) bytes of this process right after BenchService started the service, before the
# benchmark generated or loaded anything: what the driver of `analytics run` holds.
_DRIVER_AT_START: tuple[int, int] | None = None


def _own_memory() -> tuple[int, int] | None:
    import psutil

    try:
        info = psutil.Process().memory_full_info()
    except psutil.Error:
        return None
    return info.rss, getattr(info, "pss", info.rss)


def service_memory(exclude: Sequence[int] = ()) -> dict[str, Any]:
    """RSS and PSS of the whole running service: the driver plus every Ray process under it.

    Every process of the service descends from the driver: the GCS and the raylet are its
    children, and every Ray worker (actors, Serve controller, proxy, replicas, the per-node
    agents) is the raylet's child. ``exclude`` names the benchmark's own load generators.

    RSS counts shared pages (Ray's object store, shared libraries) once per process, so its sum
    overstates; PSS splits shared pages between their users and sums to the real footprint.

    In a benchmark the driver also holds the benchmark's data, so ``service_rss_mib`` /
    ``service_pss_mib`` count the driver as it was right after the service started (what
    `analytics run`'s driver holds) plus every other process as it is now. Both benchmarks
    generate their events after that point.
    """
    by_role: dict[str, dict[str, float]] = {}
    total_rss = total_pss = 0
    processes = service_processes(exclude)
    for process in processes:
        try:
            info = process.memory_full_info()
        except Exception:  # noqa: BLE001, S112 - a process may end while we look
            continue
        role = "driver" if process.pid == os.getpid() else _process_role(process)
        entry = by_role.setdefault(role, {"processes": 0, "rss_mib": 0.0, "pss_mib": 0.0})
        entry["processes"] += 1
        entry["rss_mib"] = round(entry["rss_mib"] + info.rss / 2**20, 1)
        entry["pss_mib"] = round(entry["pss_mib"] + getattr(info, "pss", info.rss) / 2**20, 1)
        total_rss += info.rss
        total_pss += getattr(info, "pss", info.rss)
    driver = by_role.get("driver", {"rss_mib": 0.0, "pss_mib": 0.0})
    baseline: dict[str, float] = {}
    if _DRIVER_AT_START is not None:
        start_rss, start_pss = (round(v / 2**20, 1) for v in _DRIVER_AT_START)
        baseline = {
            "driver_at_start_rss_mib": start_rss,
            "driver_at_start_pss_mib": start_pss,
            "service_rss_mib": round(total_rss / 2**20 - driver["rss_mib"] + start_rss, 1),
            "service_pss_mib": round(total_pss / 2**20 - driver["pss_mib"] + start_pss, 1),
        }
    return {
        "processes": len(processes),
        "rss_mib": round(total_rss / 2**20, 1),
        "pss_mib": round(total_pss / 2**20, 1),
        # In a benchmark the driver also holds the benchmark's own data; `analytics run`'s does not.
        "rss_mib_without_driver": round(total_rss / 2**20 - driver["rss_mib"], 1),
        "pss_mib_without_driver": round(total_pss / 2**20 - driver["pss_mib"], 1),
        **baseline,
        "by_role": dict(sorted(by_role.items(), key=lambda kv: -kv[1]["rss_mib"])),
    }


def listening_addresses(processes: Sequence[Any]) -> list[str]:
    """TCP addresses the given processes listen on (to check that HTTP stays on loopback)."""
    import psutil

    pids = {p.pid for p in processes}
    found = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids and conn.laddr:
            found.add(f"{conn.laddr.ip}:{conn.laddr.port}")
    return sorted(found)
