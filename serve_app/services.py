"""The services one replica (or a test, or a plain uvicorn run) works with, built from Settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.event_store import RemoteEventStore, find_event_store_actor
from actors.realtime_client import RealtimeClient
from core.access import Principal
from core.enrichment import locate_ip, parse_user_agent
from core.settings import Settings
from pipelines.daily_aggregation import aggregation_launcher
from pipelines.exports import export_launcher
from pipelines.report_runs import link_signer, report_launcher
from semantic.aggregation_jobs import AggregationJobs
from semantic.analytics import Analytics
from semantic.answers import Answers
from semantic.dashboard_feed import DashboardFeeds
from semantic.dashboards import DashboardService
from semantic.exports import ExportService
from semantic.freshness import WatermarkTracker
from semantic.ingestion import IngestService
from semantic.privacy import Privacy
from semantic.recorded_cache import recorded_cache
from semantic.reports import ReportService
from semantic.result_cache import ResultCache
from semantic.saved_kinds import saved_kinds
from semantic.saved_queries import SavedQueryService
from semantic.self_telemetry import SelfTelemetry
from semantic.widget_data import WidgetSources
from serve_app import metrics
from serve_app.audit_trail import AUDIT_TRAIL_METRICS, AuditTrail
from serve_app.auth import Authenticator
from serve_app.jwt_tokens import JwtVerifier
from serve_app.recorded_event_store import event_store
from serve_app.request_telemetry import self_telemetry
from storage.aggregates import AggregateStore
from storage.blobs import BlobStore, open_blob_store
from storage.cache import Cache, open_cache
from storage.dashboards import DashboardRepository
from storage.exports import ExportRepository
from storage.metadata import MetadataStore
from storage.report_deliveries import ReportDeliveries
from storage.reports import ReportRepository


@dataclass(slots=True)
class Services:
    settings: Settings
    metadata: MetadataStore
    events: RemoteEventStore
    cache: Cache
    ingest: IngestService
    auth: Authenticator
    realtime: RealtimeClient
    analytics: Analytics
    # Every analytics answer: pinned to the data watermark, through the result cache.
    answers: Answers
    saved_queries: SavedQueryService
    # The recorder of the service's own requests and statements (None: self_telemetry is off).
    telemetry: SelfTelemetry | None = None
    # Writes the audit entries of this replica's requests (serve_app/audit_trail.py).
    audit_trail: AuditTrail | None = None
    # The suppression list ingest checks, erasure jobs and access requests (semantic/privacy.py).
    privacy: Privacy | None = None
    # The files the service writes (reports, exports), sealed at rest with a key (docs/files.md).
    blobs: BlobStore | None = None
    # Report definitions, runs, files and sharing (semantic/reports.py); runs go to Ray tasks.
    reports: ReportService | None = None
    # Data exports (semantic/exports.py); each is written by a Ray task, chunk by chunk.
    exports: ExportService | None = None
    # Dashboards and their widgets' data (semantic/dashboards.py); live updates by feed (one per
    # dashboard and viewer scope in this replica).
    dashboards: DashboardService | None = None
    dashboard_feeds: DashboardFeeds | None = None
    # The batch aggregation runs (pipelines/daily_aggregation.py), started as Ray tasks.
    aggregation_jobs: AggregationJobs | None = None

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        if not settings.postgres_dsn:
            raise RuntimeError("ANALYTICS_POSTGRES_DSN must be resolved before replicas start")
        telemetry = self_telemetry(settings)
        metadata = await MetadataStore.connect(
            settings.postgres_dsn, query_logger=telemetry.postgres_statement if telemetry else None
        )
        # Safe from every replica at once (advisory lock); a no-op once applied.
        await metadata.migrate()
        if settings.bootstrap_admin_key:
            await metadata.ensure_bootstrap_admin(settings.bootstrap_admin_key)
        warm_up_enrichment()
        events = event_store(find_event_store_actor(), telemetry)
        cache = recorded_cache(open_cache(settings.redis_url), telemetry, redis=bool(settings.redis_url))
        analytics = Analytics.build(events, settings)
        answers = Answers(
            ResultCache(cache, ttl_seconds=settings.result_cache_seconds, metrics=metrics.RESULT_CACHE),
            WatermarkTracker(events.watermark, poll_seconds=settings.watermark_poll_ms / 1000),
        )
        audit_trail = AuditTrail(metadata.audit_log, AUDIT_TRAIL_METRICS)
        realtime = RealtimeClient(settings.counter_shards, events)
        privacy = Privacy.build(metadata.pool, events, metadata, settings, live=realtime.resync_shards)
        saved_queries = SavedQueryService.build(metadata, saved_kinds(analytics, answers, events))
        blobs = open_blob_store(settings)
        reports = ReportService(
            ReportRepository(metadata.pool),
            launch=report_launcher(settings),
            saved_query_check=saved_queries.get,
            links=await link_signer(settings, metadata),
            blobs=blobs,
            deliveries=ReportDeliveries(metadata.pool),
        )
        exports = ExportService(
            ExportRepository(metadata.pool),
            launch=export_launcher(settings),
            query=analytics.query,
            saved_query=saved_queries.get,
        )
        dashboards = _dashboards(metadata, answers, analytics, realtime, events, saved_queries)
        # Made once, whichever replica starts first (semantic/prebuilt_dashboards.py).
        await dashboards.ensure_prebuilt()
        services = cls(
            settings=settings,
            metadata=metadata,
            events=events,
            cache=cache,
            ingest=IngestService(events, settings, metrics.INGEST, privacy.suppression),
            auth=Authenticator(
                metadata, cache, cache_seconds=settings.auth_cache_seconds, jwt=JwtVerifier.from_settings(settings)
            ),
            realtime=realtime,
            analytics=analytics,
            answers=answers,
            saved_queries=saved_queries,
            telemetry=telemetry,
            audit_trail=audit_trail,
            privacy=privacy,
            blobs=blobs,
            reports=reports,
            exports=exports,
            dashboards=dashboards,
            dashboard_feeds=DashboardFeeds(dashboards),
            aggregation_jobs=AggregationJobs(AggregateStore(metadata.pool), launch=aggregation_launcher(settings)),
        )
        audit_trail.start()
        await privacy.start()
        if telemetry is not None:
            telemetry.start(services.ingest)
        return services

    async def close(self) -> None:
        if self.privacy is not None:
            await self.privacy.close()
        if self.audit_trail is not None:
            # Before the pool closes: the last minute's tallies and the queued entries are written.
            await self.audit_trail.close()
        if self.telemetry is not None:
            await self.telemetry.close()
        await self.answers.close()
        await self.cache.close()
        await self.metadata.close()


def _dashboards(
    metadata: MetadataStore,
    answers: Answers,
    analytics: Analytics,
    realtime: RealtimeClient,
    events: RemoteEventStore,
    saved_queries: SavedQueryService,
) -> DashboardService:
    async def run_saved_query(query_id: str, reader: Principal, principal: Principal) -> tuple[str, Any]:
        run = await saved_queries.run_for(query_id, reader, principal)
        return run.saved_query.kind, run.result

    return DashboardService(
        DashboardRepository(metadata.pool),
        answers=answers,
        sources=WidgetSources(answers, analytics, realtime, events, run_saved_query),
        saved_query_check=saved_queries.get,
        resolve_query=analytics.query.resolve,
        check_query_role=analytics.query.check_role,
    )


def warm_up_enrichment() -> None:
    """Load the user-agent rules and the geo database now, not on the first request."""
    parse_user_agent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    )
    locate_ip("8.8.8.8")
