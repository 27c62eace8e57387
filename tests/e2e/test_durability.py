"""Kill the actor that owns chDB while batches stream in: every acknowledged event is stored
exactly once, and unacknowledged batches, once retried, land exactly once too; the rollups,
fed after the acknowledgement, end up holding each stored event once."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
import ray

from storage.events import EventFilter
from tests.support import all_event_ids

pytestmark = pytest.mark.e2e

BATCHES = 48
BATCH_SIZE = 500
CLIENTS = 4


def actor_pid(actor: Any, previous: int | None = None) -> int:
    """The actor's process id; after a kill, wait until a new process answers (ray.kill is asynchronous)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            pid = int(ray.get(actor.describe.remote(), timeout=30)["pid"])
            if pid != previous:
                return pid
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.ActorDiedError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the event store actor did not come back")
        time.sleep(0.1)


def test_killing_the_event_store_actor_loses_and_duplicates_nothing(
    service: Any, admin: httpx.Client, unique: str
) -> None:
    session = f"chaos-{unique}"
    batches = [
        [
            {"id": f"{session}-{b}-{i}", "event_type": "content_view", "session_id": session, "content_id": f"c{i % 7}"}
            for i in range(BATCH_SIZE)
        ]
        for b in range(BATCHES)
    ]
    acknowledged: list[list[str]] = []
    failures: list[str] = []
    done = [0]
    lock = threading.Lock()

    def send(batch_ids: list[int]) -> None:
        with httpx.Client(
            base_url=service.base_url, headers={"Authorization": f"Bearer {service.admin_key}"}, timeout=120
        ) as client:
            for b in batch_ids:
                attempts = 0
                while True:
                    attempts += 1
                    try:
                        response = client.post("/api/v1/analytics/events/batch", json={"events": batches[b]})
                    except httpx.HTTPError as exc:
                        failures.append(f"batch {b} attempt {attempts}: {exc!r}")
                        continue
                    if response.status_code == 200:
                        assert response.json()["accepted"] == BATCH_SIZE
                        with lock:
                            acknowledged.append([e["id"] for e in batches[b]])
                            done[0] += 1
                        break
                    # Not acknowledged: retry the very same batch, as a client would.
                    assert response.status_code == 503, f"{response.status_code} {response.text}"
                    failures.append(f"batch {b} attempt {attempts}: 503")
                    time.sleep(0.2)

    actor = service.event_store
    pids = [actor_pid(actor)]
    threads = [threading.Thread(target=send, args=(list(range(c, BATCHES, CLIENTS)),)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for fraction in (0.2, 0.5, 0.8):
        while done[0] < BATCHES * fraction and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        ray.kill(actor, no_restart=False)
        pids.append(actor_pid(actor, previous=pids[-1]))
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive()

    # The actor really was restarted each time (a new process, the id index rebuilt from the store).
    assert len(set(pids)) == 4, pids
    assert len(acknowledged) == BATCHES
    sent = {event_id for ids in acknowledged for event_id in ids}
    assert len(sent) == BATCHES * BATCH_SIZE

    stored = all_event_ids(admin, session_id=session)
    assert len(stored) == BATCHES * BATCH_SIZE, f"{len(stored) - len(set(stored))} duplicates; retries: {failures[:5]}"
    assert set(stored) == sent
    assert ray.get(actor.count.remote(EventFilter(session_id=session))) == BATCHES * BATCH_SIZE

    # Retrying everything after the chaos adds nothing.
    for batch in batches[:8]:
        assert admin.post("/api/v1/analytics/events/batch", json={"events": batch}).json()["duplicates"] == BATCH_SIZE
    assert ray.get(actor.count.remote(EventFilter(session_id=session))) == BATCHES * BATCH_SIZE

    # The rollups, fed after the acknowledgement by the actor that was killed three times, hold
    # every stored event exactly once too.
    service.settle_rollups()
    rolled_up = ray.get(
        actor.query.remote("SELECT sum(events) FROM session_rollup WHERE session_id = {s:String}", {"s": session})
    )
    assert rolled_up.rows[0][0] == BATCHES * BATCH_SIZE
