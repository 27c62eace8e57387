"""Report runs on Ray: collect, render, store, record, notify — off the request path.

``POST /reports/{id}/generate`` (or a schedule's slot) records a run in ``generating`` and starts
``report_run_task`` on the cluster; the task (in any worker, on any node) opens what it needs from the
settings, and:

1. counts an attempt (a run finished already is left alone, so a retried task never redoes it);
2. collects the report's document for the requester, pinned to one data watermark;
3. renders the format in a thread (renderers/), stores the file (storage/blobs) with its SHA-256;
4. marks the run completed, or failed with the error;
5. notifies the report's targets and the e-mail addresses it is shared with, each delivery recorded,
   and publishes ``analytics.report_generated`` on the bus.

While it works the task beats (``heartbeat_at``). A task whose worker died stops beating: Ray retries
the task itself; if the whole cluster lost it, the reaper (pipelines/ray_jobs.py, run by the scheduler
actor) starts it again, or fails it once it has had ``report_run_max_attempts``. No run stays ``generating``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
import ray

from actors.event_store import RemoteEventStore, find_event_store_actor
from core.access import Principal
from core.errors import AnalyticsError
from core.models import utc_now
from core.settings import Settings
from pipelines.ray_jobs import JobTable, TaskLauncher, beating
from renderers.charts import drawable
from renderers.formats import RenderedFile, charts_drawn, draw_chart, render
from semantic.analytics import Analytics
from semantic.answers import Answers
from semantic.content_metadata import ContentMetadataStore
from semantic.freshness import WatermarkTracker
from semantic.report_collection import ReportSources, collect
from semantic.report_document import ReportDocument
from semantic.reports import LinkSigner, report_files
from semantic.result_cache import ResultCache
from semantic.saved_kinds import saved_kinds
from semantic.saved_queries import SavedQueryService
from storage.blobs import BlobStore, open_blob_store
from storage.bus import EventBus, open_bus
from storage.cache import open_cache
from storage.metadata import MetadataStore
from storage.notifier import Attachment, Notification, NotificationTarget, Notifier, parse_targets
from storage.report_deliveries import ReportDeliveries, notify_all
from storage.reports import CompletedFile, ReportRepository, ReportRun, StoredReport

log = logging.getLogger(__name__)

REPORT_GENERATED = "analytics.report_generated"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def link_base(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


async def link_signer(settings: Settings, metadata: MetadataStore) -> LinkSigner:
    """The link key from settings, else the service's own, made once and kept in PostgreSQL."""
    if settings.link_signing_secret:
        return LinkSigner(settings.link_signing_secret.encode())
    await metadata.pool.execute(
        "INSERT INTO service_secrets (name, value) VALUES ('link_signing', $1) ON CONFLICT (name) DO NOTHING",
        secrets.token_hex(32),
    )
    value = await metadata.pool.fetchval("SELECT value FROM service_secrets WHERE name = 'link_signing'")
    return LinkSigner(bytes.fromhex(value))


@dataclass(slots=True)
class RunEnvironment:
    """What a run reads and writes through, opened in the task's process."""

    settings: Settings
    metadata: MetadataStore
    reports: ReportRepository
    sources: ReportSources
    blobs: BlobStore
    notifier: Notifier
    deliveries: ReportDeliveries
    links: LinkSigner
    bus: EventBus
    answers: Answers

    @classmethod
    async def open(cls, settings: Settings) -> RunEnvironment:
        if not settings.postgres_dsn:
            raise RuntimeError("ANALYTICS_POSTGRES_DSN must be resolved before report runs start")
        metadata = await MetadataStore.connect(settings.postgres_dsn)
        # Runs and exports read under the batch query budget (a longer time limit, no queue refusal).
        events = RemoteEventStore(find_event_store_actor(), batch=True)
        analytics = Analytics.build(events, settings)
        answers = Answers(
            ResultCache(open_cache(settings.redis_url), ttl_seconds=settings.result_cache_seconds),
            WatermarkTracker(events.watermark, poll_seconds=settings.watermark_poll_ms / 1000),
        )
        saved_queries = SavedQueryService.build(metadata, saved_kinds(analytics, answers, events))

        async def run_saved_query(saved_query_id: str, principal: Principal) -> tuple[str, str, Any]:
            run = await saved_queries.run(saved_query_id, principal)
            return run.saved_query.kind, run.saved_query.name, run.result

        return cls(
            settings=settings,
            metadata=metadata,
            reports=ReportRepository(metadata.pool),
            sources=ReportSources(
                query=analytics.query,
                answers=answers,
                metadata=ContentMetadataStore(events),
                saved_query=run_saved_query,
            ),
            blobs=open_blob_store(settings),
            notifier=Notifier.from_settings(settings),
            deliveries=ReportDeliveries(metadata.pool),
            links=await link_signer(settings, metadata),
            bus=open_bus(settings.nats_url),
            answers=answers,
        )

    async def close(self) -> None:
        for closing in (self.notifier.close(), self.bus.close(), self.answers.close(), self.metadata.close()):
            with contextlib.suppress(Exception):
                await closing


async def execute_run(env: RunEnvironment, run_id: str) -> ReportRun | None:
    """Run ``run_id`` to completed or failed; None when it was finished already (or deleted)."""
    run = await env.reports.start_run(run_id)
    if run is None:
        return None
    report = await env.reports.get(run.report_id)
    if report is None:
        return None
    requester = Principal(
        key_id=run.requested_by, name=run.requested_by, role=run.requested_role, scope=run.requested_scope
    )
    try:
        async with beating(lambda: env.reports.beat(run_id)):
            done, data = await asyncio.wait_for(
                _produce(env, report, run, requester), timeout=env.settings.report_run_timeout_seconds
            )
    except TimeoutError:
        return await env.reports.fail_run(
            run_id, f"the run took longer than {env.settings.report_run_timeout_seconds:g} s and was stopped"
        )
    except AnalyticsError as exc:
        return await env.reports.fail_run(run_id, f"{exc.code}: {exc.message}")
    except Exception as exc:
        log.exception("report run %s failed", run_id)
        return await env.reports.fail_run(run_id, f"{type(exc).__name__}: {exc}")
    link = env.links.link(report.id, run_id, env.settings.report_link_ttl_seconds)
    url = f"{link_base(env.settings)}{link.url}"
    finished = await env.reports.complete_run(run_id, done, output_url=url)
    if finished is not None:
        await _announce(env, report, finished, url, data)
    return finished


async def _produce(
    env: RunEnvironment, report: StoredReport, run: ReportRun, requester: Principal
) -> tuple[CompletedFile, bytes]:
    """The run's file, stored; and its bytes, which the e-mails attach."""
    document = await collect(report, run, requester, env.sources)
    charts = await _draw_charts_in_parallel(document, report.report_format)
    rendered: RenderedFile = await asyncio.to_thread(render, document, report.report_format, charts)
    # The file name is an ASCII slug and dates (renderers/formats.py file_name): fit for a key as it is.
    key = f"{report_files(report.id)}/{run.id}/{rendered.file_name}"
    info = await env.blobs.put(key, rendered.data, content_type=rendered.content_type)
    done = CompletedFile(
        blob_key=key,
        content_type=rendered.content_type,
        file_name=rendered.file_name,
        file_size=info.size,
        sha256=info.sha256,
        as_of=document.as_of,
        period_start=document.period.start_date,
        period_end=document.period.end_date,
    )
    return done, rendered.data


@ray.remote
def chart_task(document: dict[str, Any], chart_name: str, kind: str) -> bytes | str:
    return draw_chart(ReportDocument.model_validate(document), chart_name, kind)


async def _draw_charts_in_parallel(document: ReportDocument, report_format: str) -> dict[str, bytes | str]:
    """A report's charts drawn as tasks of their own, in parallel, where the format draws several and the
    cluster has a CPU free; otherwise (a busy cluster, where runs already fill every CPU) the run draws
    them itself."""
    kind = charts_drawn(report_format)
    names = [chart.name for chart in document.charts if drawable(chart)]
    if kind is None or len(names) < 2 or ray.available_resources().get("CPU", 0) < 1:
        return {}
    shared = ray.put(document.model_dump(mode="json"))
    references = [chart_task.remote(shared, name, kind) for name in names]
    # On the task's main thread on purpose: only there does Ray lend the waiting task's CPU to its
    # charts; from another thread the run would hold it, and runs filling every CPU would wait forever.
    drawn = ray.get(references)
    return dict(zip(names, drawn, strict=True))


def notification_targets(report: StoredReport) -> list[NotificationTarget]:
    """The report's own targets, and an e-mail to each principal it is shared with whose id is an
    address (a JWT subject such as ``jwt:ana@example.com``)."""
    targets = parse_targets(report.notifications)
    for principal_id in report.shared_with:
        address = principal_id.removeprefix("jwt:")
        if _EMAIL.match(address):
            target = NotificationTarget.parse({"channel": "email", "target": address}, field="shared_with")
            if target not in targets:
                targets.append(target)
    return targets


async def _announce(env: RunEnvironment, report: StoredReport, run: ReportRun, link: str, data: bytes) -> None:
    payload = {
        "event": REPORT_GENERATED,
        "report_id": report.id,
        "report_name": report.name,
        "run_id": run.id,
        "status": run.status,
        "report_format": run.report_format,
        "file_name": run.file_name,
        "file_size": run.file_size,
        "sha256": run.sha256,
        "as_of": run.as_of.isoformat() if run.as_of else None,
        "period": run.to_dict()["period"],
        "download_url": link,
        "generated_at": utc_now().isoformat(),
    }
    with contextlib.suppress(Exception):
        await env.bus.publish(REPORT_GENERATED, orjson.dumps(payload), message_id=run.id)
    targets = notification_targets(report)
    if not targets:
        return
    attachment = None
    if len(data) <= env.settings.notify_attachment_max_bytes:
        attachment = Attachment(file_name=run.file_name or "report", content_type=run.content_type or "", data=data)
    period = payload["period"] or {}
    notification = Notification(
        subject=f"Report '{report.name}' is ready",
        text=(
            f"The report '{report.name}' for {period.get('start_date')} to {period.get('end_date')} was generated "
            f"(data as of {payload['as_of']}). Download it within "
            f"{env.settings.report_link_ttl_seconds // 3600} hours from the link below."
        ),
        link=link,
        attachment=attachment,
        payload=payload,
    )
    await notify_all(env.notifier, env.deliveries, run.id, targets, notification)


# --- on Ray --------------------------------------------------------------------------------------------


async def _run_in_task(settings: dict[str, Any], run_id: str) -> str | None:
    env = await RunEnvironment.open(Settings(**settings))
    try:
        run = await execute_run(env, run_id)
        return run.status if run is not None else None
    finally:
        await env.close()


# Ray retries the task when its worker dies (a system failure); an error inside the run is recorded as
# the run's failure instead, so application errors are never retried.
@ray.remote(max_retries=2, retry_exceptions=False)
def report_run_task(settings: dict[str, Any], run_id: str) -> str | None:
    return asyncio.run(_run_in_task(settings, run_id))


def report_launcher(settings: Settings) -> TaskLauncher:
    return TaskLauncher(settings, report_run_task, "report-run")


def run_jobs(reports: ReportRepository) -> JobTable:
    """Report runs as the reaper sees them (pipelines/ray_jobs.py)."""
    return JobTable(kind="run", stale=reports.stale_runs, claim=reports.touch_run, fail=reports.fail_run)
