"""Input limits end to end, through the running service over HTTP: an event whose properties nest 500
levels deep, or whose ip_address is not an address, is refused on its own in a batch, naming the field,
and exactly the good events beside it are stored (docs/ingest.md#limits)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import all_event_ids

pytestmark = pytest.mark.e2e

EVENTS = "/api/v1/analytics/events"
DEEP_LEVELS = 500


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_a_500_deep_event_is_refused_alone_and_the_good_ones_are_stored(
    admin: httpx.Client, client_for: Callable[[str], httpx.Client], unique: str
) -> None:
    session = f"limits-{unique}"
    start = datetime.now(UTC) - timedelta(minutes=10)

    def event(i: int, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"{session}-{i}",
            "event_type": "content_view",
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "session_id": session,
            "content_id": f"c{i}",
            **fields,
        }

    deep = nested(DEEP_LEVELS)
    batch = [
        event(0, properties={"position": 1}),
        event(1, properties=deep),
        event(2, ip_address="203.0.113.7"),
        event(3, ip_address="999.1.1.1::zz"),
        event(4, properties={"tags": ["a", "b"], "nested": {"ok": [1, 2]}}),
    ]
    refused = {1: ("properties", "too_deep"), 3: ("ip_address", "invalid_value")}
    good = [e["id"] for i, e in enumerate(batch) if i not in refused]
    # Written by the standard library, as a client would: 500 levels are past what orjson itself writes.
    body = json.dumps({"events": batch})

    ingest = client_for("service")
    response = ingest.post(f"{EVENTS}/batch", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"], answer["duplicates"]) == (len(good), len(refused), 0)
    assert {e["index"]: (e["field"], e["code"]) for e in answer["errors"]} == refused
    assert len(answer["errors"]) == len(refused)
    assert "32 levels" in answer["errors"][0]["message"]

    assert sorted(all_event_ids(admin, session_id=session)) == sorted(good)
    stored_ip = admin.get(f"{EVENTS}/{session}-2").json()["ip_address"]
    assert stored_ip == "203.0.113.0"  # anonymized to its /24, as ANALYTICS_ANONYMIZE_IP does by default

    # The same event alone is a 422 naming the field, and nothing more is stored.
    single = ingest.post(
        EVENTS, content=json.dumps(event(5, properties=deep)), headers={"Content-Type": "application/json"}
    )
    assert single.status_code == 422, single.text
    assert [(d["field"], d["code"]) for d in single.json()["details"]] == [("properties", "too_deep")]
    assert sorted(all_event_ids(admin, session_id=session)) == sorted(good)
