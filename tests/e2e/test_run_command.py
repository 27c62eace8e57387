"""`analytics run` (what `make run` starts) stops cleanly when its whole process group is signalled:
Ctrl-C in a terminal, or SIGTERM to the group as systemd and `kill -- -PGID` send it. Ray's own
processes are in that group and get the signal too."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from serve_app import runtime
from tests.support import free_port

pytestmark = pytest.mark.e2e

# Ray's raylet and GCS take several seconds each to drain after a SIGTERM: the limit leaves room for that
# and still catches a stop that hangs.
STOP_SECONDS = 45


def left_running(pgid: int, data_dir: Path) -> list[psutil.Process]:
    """Live processes of the group, and any other that works in the service's data dir (PostgreSQL)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(process.pid) == pgid or str(data_dir) in " ".join(process.cmdline()):
                found.append(process)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def test_the_service_stops_when_its_process_group_is_signalled(tmp_path: Path) -> None:
    # One service per signal, started side by side: each start is mostly waiting on its own processes.
    with ThreadPoolExecutor(2) as pool:
        runs = {name: pool.submit(run_and_signal, tmp_path / name, name) for name in ("SIGINT", "SIGTERM")}
    for name, run in runs.items():
        assert run.exception() is None, (name, run.exception())


def run_and_signal(tmp_path: Path, signal_name: str) -> None:
    # As `make run` starts it: the embedded PostgreSQL too, in the data dir.
    tmp_path.mkdir()
    port = free_port()
    data_dir = tmp_path / "data"
    key = "ak_test_" + secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "ANALYTICS_PORT": str(port),
        "ANALYTICS_DATA_DIR": str(data_dir),
        "ANALYTICS_BOOTSTRAP_ADMIN_KEY": key,
        "ANALYTICS_ENVIRONMENT": "test",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as output_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "serve_app.cli", "run"],
            env=env,
            stdout=output_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        runtime.wait_http_ready(base, 180, alive=lambda: process.poll() is None)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            event = {"id": f"run-{signal_name}", "event_type": "content_view", "content_id": "c-run"}
            assert client.post("/api/v1/analytics/events", json=event).status_code == 201
        # The service prints its banner after it is ready; the signal must find its handler set.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"Press Ctrl-C" not in log.read_bytes():
            time.sleep(0.2)
        os.killpg(process.pid, getattr(signal, signal_name))
        started = time.monotonic()
        process.wait(timeout=STOP_SECONDS)
        took = time.monotonic() - started
        output = log.read_bytes()
        assert b"Stopping" in output, output[-2000:]
        assert process.returncode == 0, (process.returncode, output[-2000:])
        assert left_running(process.pid, data_dir) == [], f"left running after {took:.1f} s"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for leftover in left_running(process.pid, data_dir):
            leftover.kill()
