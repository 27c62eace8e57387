"""Ingestion: validate, enrich and durably store events; the one path REST, GraphQL and streams share.

Per-event work happens here, in the caller's process; the store sees one Arrow batch per
request, never one call per event. The ingest metrics are recorded here too
(semantic/ingest_metrics.py), so every entry point counts alike.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson

from core.enrichment import STORED_FIELDS, stored_enrichment
from core.errors import FieldError, InvalidRequest, PayloadTooLarge, StoreUnavailable, ValidationFailed
from core.models import EventIn, utc_now
from core.settings import Settings
from core.taxonomy import default_category
from core.validation import EventValidator
from semantic.consent import ErasedUsers, PrivacyScreen
from semantic.ingest_metrics import IngestMetrics
from storage.events import EventColumns, EventStore, WriteReceipt


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    # Events left unstored by the consent policy (semantic/consent.py).
    dropped: int = 0
    errors: list[FieldError] = field(default_factory=list)
    # Ids the service generated, by request index, for events that came without one.
    generated_ids: dict[int, str] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    batch_id: str = ""

    @property
    def rejected(self) -> int:
        return len({e.index for e in self.errors})

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "errors": [e.to_dict() for e in self.errors],
            "generated_ids": {str(k): v for k, v in self.generated_ids.items()},
            "batch_id": self.batch_id,
        }


class IngestService:
    def __init__(
        self,
        store: EventStore,
        settings: Settings,
        metrics: IngestMetrics | None = None,
        erased: ErasedUsers | None = None,
    ) -> None:
        """``erased``: the suppression list of erased users (storage/suppression_list.py)."""
        self.store = store
        self.settings = settings
        self.metrics = metrics if metrics is not None else IngestMetrics()
        self.validator = EventValidator(
            max_event_bytes=settings.max_event_bytes,
            max_future_skew_seconds=settings.max_future_skew_seconds,
            retention_days=settings.retention_days,
            max_properties_depth=settings.max_properties_depth,
            max_properties_keys=settings.max_properties_keys,
        )
        self._internal_hosts = frozenset(settings.internal_hosts)
        self.privacy = PrivacyScreen(settings, erased)

    def check_batch_shape(self, body: Any) -> list[Any]:
        """The batch envelope: ``{"events": [...]}`` within the count limit."""
        if not isinstance(body, dict) or "events" not in body:
            raise InvalidRequest("body must be a JSON object with an 'events' array", details={"field": "events"})
        extra = sorted(set(body) - {"events"})
        if extra:
            raise InvalidRequest(f"unknown field {extra[0]!r} in the batch body", details={"field": extra[0]})
        events = body["events"]
        if not isinstance(events, list):
            raise InvalidRequest("'events' must be an array", details={"field": "events"})
        if not events:
            raise InvalidRequest("'events' must hold at least one event", details={"field": "events"})
        if len(events) > self.settings.max_batch_events:
            raise PayloadTooLarge(
                f"batch holds {len(events)} events; the limit is {self.settings.max_batch_events} per batch",
                details={"field": "events"},
            )
        return events

    async def ingest_batch(self, raw_events: list[Any], route: str = "batch") -> IngestResult:
        """Store the valid events of a batch; the others come back as errors. ``route`` names the
        entry point in the latency metric."""
        started = time.perf_counter()
        now = utc_now()
        checked = self.validator.validate_batch(raw_events, now)
        screened = self.privacy.screen(checked.events)
        errors = checked.errors
        if screened.errors:
            errors = sorted(errors + screened.errors, key=lambda e: e.index or 0)
        result = IngestResult(errors=errors, dropped=screened.dropped, batch_id=uuid.uuid4().hex)
        if screened.events:
            columns, ids = self._to_columns(screened.events, now, result, screened.anonymized)
            receipt = await self._write(columns)
            result.accepted = len(ids)
            result.duplicates = len(receipt.duplicate_ids)
            result.ids = ids
        # Counted once the batch is answered: a batch the store refused counts as a store error only.
        self.metrics.record_rejections(result.errors)
        self.metrics.stored(route, time.perf_counter() - started, result.accepted, result.duplicates)
        return result

    async def ingest_one(self, raw: Any, route: str = "event") -> tuple[str, bool]:
        """Store one event; returns its id and whether it was stored already."""
        started = time.perf_counter()
        now = utc_now()
        try:
            event = self.validator.validate_one(raw, now)
        except ValidationFailed as exc:
            self.metrics.record_rejections(exc.errors)
            raise
        except PayloadTooLarge:
            self.metrics.event_too_large()
            raise
        screened = self.privacy.screen([(0, event)])
        if screened.errors:
            refused = [FieldError(field=e.field, message=e.message, code=e.code) for e in screened.errors]
            self.metrics.record_rejections(refused)
            raise ValidationFailed(refused)
        if screened.dropped:
            # Answered like a stored event, so the client does not send it again; nothing is stored.
            return event.get("id") or uuid.uuid4().hex, False
        result = IngestResult(batch_id=uuid.uuid4().hex)
        columns, ids = self._to_columns([(0, event)], now, result, screened.anonymized)
        receipt = await self._write(columns)
        duplicate = bool(receipt.duplicate_ids)
        self.metrics.stored(route, time.perf_counter() - started, 1, 1 if duplicate else 0)
        return ids[0], duplicate

    async def _write(self, columns: EventColumns) -> WriteReceipt:
        try:
            return await self.store.write(columns)
        except StoreUnavailable:
            self.metrics.event_store_error()
            raise
        except Exception as exc:
            self.metrics.event_store_error()
            raise StoreUnavailable(f"events could not be stored: {type(exc).__name__}; retry the request") from exc

    def _to_columns(
        self, events: list[tuple[int, EventIn]], now: datetime, result: IngestResult, anonymized: list[int]
    ) -> tuple[EventColumns, list[str]]:
        # Built column by column with comprehensions, which costs less on the hot path than
        # appending each event's row to 23 lists. The store's writer makes the Arrow table.
        ids: list[str] = []
        for index, event in events:
            event_id = event.get("id")
            if event_id is None:
                event_id = uuid.uuid4().hex
                result.generated_ids[index] = event_id
            ids.append(event_id)
        models = [event for _, event in events]
        hosts = self._internal_hosts
        anonymize = self.settings.anonymize_ip
        # One tuple per event, turned into columns by one zip (as STORED_FIELDS orders them).
        rows = [stored_enrichment(e, hosts, anonymize) for e in models]
        columns_of = map(list, zip(*rows, strict=True)) if rows else ([] for _ in STORED_FIELDS)
        enriched = dict(zip(STORED_FIELDS, columns_of, strict=True))
        dumps = orjson.dumps
        empty_properties = dumps({}).decode()

        # Read by field name: the TypedDict's value types are checked by the validator.
        plain = cast(list[dict[str, Any]], models)

        def text(name: str) -> list[str]:
            return [e.get(name) or "" for e in plain]

        columns: EventColumns = {
            "id": ids,
            "event_type": [e["event_type"] for e in models],
            "event_category": [e.get("event_category") or default_category(e["event_type"]) for e in models],
            "timestamp": [e.get("timestamp") or now for e in models],
            "user_id": text("user_id"),
            "session_id": text("session_id"),
            "content_id": text("content_id"),
            "resource_type": text("resource_type"),
            "resource_id": text("resource_id"),
            "ip_address": enriched["ip_address"],
            "user_agent": text("user_agent"),
            "referrer": text("referrer"),
            "country": enriched["country"],
            "region": enriched["region"],
            "city": enriched["city"],
            "properties": [dumps(p).decode() if (p := e.get("properties")) else empty_properties for e in models],
            "processed_at": now,
            "batch_id": result.batch_id,
            "device_type": enriched["device_type"],
            "browser": enriched["browser"],
            "os": enriched["os"],
            "traffic_source": enriched["traffic_source"],
            "referrer_host": enriched["referrer_host"],
        }
        self.privacy.finish_columns(columns, anonymized)
        return columns, ids
