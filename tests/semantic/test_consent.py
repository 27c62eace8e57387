"""The privacy rules of ingest (semantic/consent.py through semantic/ingestion.py): consent (drop or
anonymize), refused events of erased users with an error naming user_id, pseudonymized user ids, and
addresses truncated or removed. The events go through IngestService into an in-memory store."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from core.errors import ValidationFailed
from core.settings import Settings
from core.user_ids import pseudonym, suppression_digest
from semantic.consent import ERASED_USER_CODE
from semantic.ingest_metrics import IngestMetrics
from semantic.ingestion import IngestService
from storage.suppression_list import SuppressionList
from tests.graphql.fakes import MemoryEventStore

CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)


def visit(event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "event_type": "content_view",
        "content_id": "c-1",
        "user_id": "u-7",
        "session_id": "s-1",
        "ip_address": "81.2.69.160",
        "user_agent": CHROME_ON_WINDOWS,
        "region": "England",
        "city": "London",
        **fields,
    }


def service(erased: SuppressionList | None = None, **settings: Any) -> tuple[IngestService, MemoryEventStore]:
    store = MemoryEventStore()
    ingest = IngestService(store, Settings(**settings), IngestMetrics(CollectorRegistry()), erased)  # type: ignore[arg-type]
    return ingest, store


async def test_without_consent_flags_events_are_stored_as_sent() -> None:
    ingest, store = service()
    result = await ingest.ingest_batch([visit("a"), visit("b", consent={"analytics": True, "marketing": False})])
    assert (result.accepted, result.dropped, result.errors) == (2, 0, [])
    stored = store.rows["b"]
    assert (stored["user_id"], stored["session_id"], stored["ip_address"]) == ("u-7", "s-1", "81.2.69.0")
    assert stored["user_agent"] == CHROME_ON_WINDOWS and "consent" not in stored


async def test_the_drop_policy_stores_nothing_of_an_event_without_analytics_consent() -> None:
    ingest, store = service(consent_policy="drop")
    result = await ingest.ingest_batch([visit("a"), visit("b", consent={"analytics": False}), visit("c")])
    assert (result.accepted, result.rejected, result.dropped) == (2, 0, 1)
    assert result.to_dict()["dropped"] == 1
    assert set(store.rows) == {"a", "c"}

    event_id, duplicate = await ingest.ingest_one(visit("d", consent={"analytics": False}))
    assert (event_id, duplicate) == ("d", False) and "d" not in store.rows


async def test_the_anonymize_policy_stores_the_event_without_what_identifies_its_user() -> None:
    ingest, store = service(consent_policy="anonymize")
    result = await ingest.ingest_batch([visit("a", consent={"analytics": False}), visit("b")])
    assert (result.accepted, result.dropped) == (2, 0)
    anonymous, known = store.rows["a"], store.rows["b"]
    for name in ("user_id", "session_id", "ip_address", "region", "city"):
        assert anonymous[name] == "", name
    assert anonymous["user_agent"] == "Chrome; Windows; desktop"
    # What the enrichment derived from the full address and user agent stays: it names nobody.
    assert (anonymous["country"], anonymous["browser"], anonymous["os"], anonymous["device_type"]) == (
        "GB",
        "Chrome",
        "Windows",
        "desktop",
    )
    assert (known["user_id"], known["session_id"], known["city"]) == ("u-7", "s-1", "London")


async def test_consent_must_be_an_object_of_booleans() -> None:
    ingest, store = service()
    result = await ingest.ingest_batch([visit("a", consent={"analytics": "no"}), visit("b", consent=["analytics"])])
    assert result.accepted == 0
    assert [(e.index, e.field) for e in result.errors] == [(0, "consent.analytics"), (1, "consent")]
    assert result.errors[1].message == "must be a JSON object"


async def test_events_of_an_erased_user_are_refused_naming_user_id() -> None:
    erased = SuppressionList(None)
    await erased.add([suppression_digest("u-gone")], "erasure_x")
    ingest, store = service(erased)
    result = await ingest.ingest_batch([visit("a"), visit("b", user_id="u-gone"), visit("c", user_id=" u-gone ")])
    assert result.accepted == 1 and set(store.rows) == {"a"}
    body = result.to_dict()
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [
        (1, "user_id", ERASED_USER_CODE),
        (2, "user_id", ERASED_USER_CODE),
    ]
    assert "erased" in body["errors"][0]["message"]

    with pytest.raises(ValidationFailed) as refused:
        await ingest.ingest_one(visit("d", user_id="u-gone"))
    assert refused.value.to_dict()["details"] == [
        {"field": "user_id", "code": ERASED_USER_CODE, "message": refused.value.errors[0].message}
    ]
    assert "d" not in store.rows


async def test_errors_keep_the_order_of_the_request() -> None:
    erased = SuppressionList(None)
    await erased.add([suppression_digest("u-gone")], "erasure_x")
    ingest, _ = service(erased)
    result = await ingest.ingest_batch([visit("a", user_id="u-gone"), {"event_type": "Bad Type"}, visit("c")])
    assert [e.index for e in result.errors] == [0, 1]


async def test_with_a_salt_user_ids_are_stored_as_pseudonyms() -> None:
    erased = SuppressionList(None)
    await erased.add([suppression_digest("u-gone")], "erasure_x")
    ingest, store = service(erased, user_id_hash_salt="pepper")
    result = await ingest.ingest_batch(
        [visit("a"), visit("b"), visit("c", user_id="u-8"), visit("d", user_id="u-gone")]
    )
    assert result.accepted == 3 and result.errors[0].field == "user_id"
    assert store.rows["a"]["user_id"] == store.rows["b"]["user_id"] == pseudonym("u-7", "pepper")
    assert store.rows["c"]["user_id"] == pseudonym("u-8", "pepper") != store.rows["a"]["user_id"]
    await ingest.ingest_one(visit("e"))
    assert store.rows["e"]["user_id"] == pseudonym("u-7", "pepper")


async def test_addresses_are_truncated_kept_or_removed_as_configured() -> None:
    truncated, kept, removed = service(), service(anonymize_ip=False), service(ip_handling="remove")
    for ingest, _ in (truncated, kept, removed):
        await ingest.ingest_batch([visit("a")])
    assert truncated[1].rows["a"]["ip_address"] == "81.2.69.0"
    assert kept[1].rows["a"]["ip_address"] == "81.2.69.160"
    assert removed[1].rows["a"]["ip_address"] == ""
    # The place is looked up from the address before it is removed.
    assert removed[1].rows["a"]["country"] == "GB"


def test_settings_refuse_unknown_policies() -> None:
    with pytest.raises(ValueError, match="consent_policy"):
        Settings(consent_policy="keep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ip_handling"):
        Settings(ip_handling="hash")  # type: ignore[arg-type]
    assert Settings(user_id_hash_previous_salts="a, b,,c").user_id_hash_previous_salts == ["a", "b", "c"]  # type: ignore[arg-type]
