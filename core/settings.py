"""One Settings class: every knob comes from an ``ANALYTICS_*`` environment variable."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_PLACEHOLDERS = frozenset({"changeme", "change-me", "admin", "password", "secret", "test"})

# JWT signature algorithms a token may use (never "none"); each key is used only with its own kind.
JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
_DEFAULT_JWT_ALGORITHMS: tuple[JwtAlgorithm, ...] = ("HS256", "RS256", "ES256")
# An HMAC secret at least as long as the hash's output, as RFC 7518 asks.
_HMAC_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
# Retention TTLs must end before 2106, where ClickHouse's DateTime ends (about 29,000 days from now).
MAX_RETENTION_DAYS = 25_000


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting's message names it, but never echoes the values given,
    # which hold keys and passwords.
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore", hide_input_in_errors=True)

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./.analytics-data")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    # Unset = embedded chDB in the data dir; http(s)://user:pass@host:port/db = ClickHouse server.
    clickhouse_dsn: str | None = None
    clickhouse_database: str = "analytics"
    # Unset = embedded PostgreSQL started in the data dir.
    postgres_dsn: str | None = None
    redis_url: str | None = None
    nats_url: str | None = None
    # When set at first start, this string becomes the admin API key (for automation).
    bootstrap_admin_key: str | None = None

    # Ingest limits (docs/ingest.md).
    max_event_bytes: int = Field(32 * 1024, ge=256)
    max_batch_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_batch_events: int = Field(5000, ge=1)
    max_future_skew_seconds: int = Field(300, ge=0)
    # At most MAX_RETENTION_DAYS: a TTL past 2106 wraps around and deletes what it should keep.
    retention_days: int = Field(730, ge=1, le=MAX_RETENTION_DAYS)
    # Acknowledged events (in the write-ahead log) are inserted into ClickHouse this often. Each insert
    # makes new parts that ClickHouse later merges, whatever its size: fewer, larger ones cost less.
    store_flush_interval_ms: int = Field(500, ge=1, le=10_000)
    # Rollups (content/user/search analytics) trail acknowledged events by about this much.
    rollup_feed_interval_ms: int = Field(1000, ge=10, le=60_000)

    # Privacy and enrichment.
    anonymize_ip: bool = True
    # Privacy (docs/security.md#privacy). An event whose consent says "analytics": false is dropped, or
    # stored anonymized (no user or session id, no address, the user agent reduced to its families).
    consent_policy: Literal["drop", "anonymize"] = "drop"
    # truncate: addresses are stored truncated while anonymize_ip is true (whole when false); remove: no
    # address is stored (the place is looked up from it first).
    ip_handling: Literal["truncate", "remove"] = "truncate"
    # Set: user ids are stored as keyed hashes under this salt (core/user_ids.py); empty: as sent. The
    # salts used before it (comma-separated) let erasure and access requests find the older forms.
    user_id_hash_salt: str = ""
    user_id_hash_previous_salts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # How often each replica reloads the suppression list, and looks for erasure jobs to run or resume.
    suppression_refresh_seconds: float = Field(2.0, gt=0, le=60)
    erasure_poll_seconds: float = Field(10.0, gt=0, le=3600)
    # Comma-separated hosts of the platform itself, for traffic-source classification.
    internal_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Ray / Serve topology.
    ray_address: str | None = None  # unset = start a local Ray instance
    # The port a local Ray instance exports its metrics on (Prometheus scrapes it); unset = Ray picks one.
    ray_metrics_port: int | None = Field(None, ge=1, le=65535)
    # direct: each ingress replica serves HTTP itself on host:port (serve_app/direct_server.py), no
    # Serve proxy; proxy: Serve's HTTP proxy listens on host:port and forwards to the replicas.
    ingress_mode: Literal["direct", "proxy"] = "direct"
    # One by default: on two cores a second replica helps only many concurrent large batches and slows
    # small batches and single events (docs/benchmarks.md); more cores, or that kind of load, is when
    # to raise it.
    ingress_replicas: int = Field(1, ge=1)
    ingress_max_ongoing_requests: int = Field(256, ge=1)
    auth_cache_seconds: float = Field(5.0, ge=0)

    # API keys and JWT bearer tokens (docs/security.md#authentication). A rotated key's previous secret
    # keeps working this long unless the rotation says otherwise (0: it stops at once; at most 30 days).
    api_key_rotation_grace_seconds: int = Field(86_400, ge=0, le=30 * 86_400)
    # JWTs are accepted once a key for them is set: a shared secret (HS*), a PEM public key or
    # certificate (RS*, PS*, ES*, EdDSA), and/or a local JWKS file whose keys tokens choose by `kid`.
    jwt_hmac_secret: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_jwks_file: Path | None = None
    jwt_algorithms: Annotated[list[JwtAlgorithm], NoDecode] = Field(
        default_factory=lambda: list(_DEFAULT_JWT_ALGORITHMS), min_length=1
    )
    # When set, a token must name this audience (`aud`) / come from this issuer (`iss`).
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # The claims that carry the caller's role and content scope (lists of strings; absent = all content).
    jwt_role_claim: str = Field("role", min_length=1)
    jwt_categories_claim: str = Field("categories", min_length=1)
    jwt_content_ids_claim: str = Field("content_ids", min_length=1)
    # Clock skew allowed when checking `exp`, `nbf` and `iat`.
    jwt_leeway_seconds: float = Field(30.0, ge=0, le=300)

    # Analytics queries: the window when none is given, the longest one allowed, segment rules, conversion window.
    default_range_days: int = Field(30, ge=1)
    max_range_days: int = Field(366, ge=1)
    segment_power_min_share: float = Field(0.5, gt=0, le=1)
    segment_regular_min_share: float = Field(0.25, gt=0, le=1)
    segment_churn_inactive_days: int = Field(7, ge=1)
    search_conversion_minutes: int = Field(30, ge=1, le=1440)

    # Query budgets: ClickHouse enforces these on every analytics statement (docs/api.md#query-budgets);
    # a statement over budget is refused with 422 naming the limit, and the process stays healthy.
    query_max_execution_seconds: float = Field(10.0, gt=0, le=3600)
    query_max_memory_bytes: int = Field(1 << 30, ge=16 << 20)
    query_max_rows_to_read: int = Field(2_000_000_000, ge=1000)
    # The time limit of the statements of report runs and exports (the other limits are the same).
    batch_query_max_execution_seconds: float = Field(600.0, gt=0, le=86_400)
    # Analytics statements waiting for a read thread of the event store beyond this many are refused
    # with 503 (overloaded), so a burst cannot queue work for minutes.
    query_max_queued: int = Field(64, ge=1)
    # Analytics results are cached this long, keyed by the query, the caller's scope and the data
    # watermark (docs/api.md#result-cache); 0 turns the cache off.
    result_cache_seconds: float = Field(300.0, ge=0)
    # How often a replica asks the event store for the data watermark (the cache key's freshness part).
    watermark_poll_ms: int = Field(200, ge=20, le=5000)

    # System health (docs/system.md): a service is degraded or down at these error rates (share of its
    # requests answered 5xx in the window), or when its latest health check says so.
    health_degraded_error_rate: float = Field(0.05, gt=0, le=1)
    health_down_error_rate: float = Field(0.5, gt=0, le=1)
    # Capacity planning: the utilization (percent) each resource's trend is forecast to cross.
    capacity_cpu_percent: float = Field(80.0, gt=0, le=100)
    capacity_memory_percent: float = Field(85.0, gt=0, le=100)
    capacity_disk_percent: float = Field(90.0, gt=0, le=100)
    # The infrastructure cost model of /system/usage, in the currency the operator bills in.
    cost_per_cpu_hour: float = Field(0.04, ge=0)
    cost_per_gb_hour: float = Field(0.005, ge=0)
    cost_per_million_requests: float = Field(0.20, ge=0)
    # A database statement slower than this counts as slow (/database/performance).
    slow_query_ms: float = Field(500.0, gt=0)
    # An import or processing job that started and reported nothing more for this long is stuck.
    import_stuck_after_minutes: int = Field(60, ge=1)
    # The service records its own requests and statement timings as system events of service
    # "analytics", flushed in batches this often; false turns that off.
    self_telemetry: bool = True
    self_telemetry_flush_ms: int = Field(1000, ge=100, le=60_000)

    # Shape limits of an event's properties (docs/ingest.md#limits): levels of objects and arrays
    # (properties itself is level 1), and keys at every level. The depth stays well inside the JSON
    # encoder's own limit, so whatever is accepted can always be written back.
    max_properties_depth: int = Field(32, ge=1, le=200)
    max_properties_keys: int = Field(1000, ge=1)

    # Transport (docs/security.md#tls): a PEM certificate (chain) and its key make the service listen on
    # HTTPS only; both or neither. Browser origins allowed to call the API across origins (exact
    # match, comma-separated); empty = no CORS answers at all. HSTS lifetime sent over HTTPS.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    hsts_max_age_seconds: int = Field(365 * 86400, ge=0)

    # Rate limits per API key and route class (docs/security.md#rate-limits): a token bucket holding
    # `burst` requests, refilled at `per_second`; past it a request is refused with 429 and Retry-After.
    # The buckets are in Redis when ANALYTICS_REDIS_URL is set (one per key for all replicas), else
    # in each replica. The defaults only stop a runaway client.
    rate_limits_enabled: bool = True
    rate_limit_ingest_per_second: float = Field(2000.0, gt=0)
    rate_limit_ingest_burst: int = Field(2000, ge=1)
    rate_limit_query_per_second: float = Field(10_000.0, gt=0)
    rate_limit_query_burst: int = Field(10_000, ge=1)
    rate_limit_export_per_second: float = Field(10.0, gt=0)
    rate_limit_export_burst: int = Field(50, ge=1)
    rate_limit_admin_per_second: float = Field(100.0, gt=0)
    rate_limit_admin_burst: int = Field(200, ge=1)

    # Retention (docs/operations.md#retention): raw events and their per-event copies keep retention_days
    # (above); the hourly and daily rollups keep rollup_retention_days; the per-minute table behind the
    # live counters keeps minute_retention_days, at least the three days a counter shard rebuilds its
    # trending baselines from. The event store applies them to the tables' TTLs at its start.
    rollup_retention_days: int = Field(730, ge=1, le=MAX_RETENTION_DAYS)
    minute_retention_days: int = Field(30, ge=3, le=MAX_RETENTION_DAYS)

    # Real-time layer: counter shard actors (by content id), live update tick, Redis snapshot period.
    counter_shards: int = Field(1, ge=1, le=64)
    realtime_tick_ms: int = Field(200, ge=50, le=5000)
    realtime_flush_seconds: float = Field(1.0, gt=0, le=1.0)
    # Safety net: a shard re-reads its whole window from ClickHouse this often (0 = only when needed).
    realtime_resync_seconds: float = Field(600.0, ge=0)

    # Files the service writes: reports and exports (docs/files.md). Unset = <data dir>/files;
    # s3://bucket/prefix = S3, or an S3-compatible store at s3_endpoint_url. Without the two S3
    # credentials here, the standard AWS ones (environment, profile, instance role) are used.
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    # Encryption at rest of those files (docs/files.md#encryption-at-rest): base64 of 32 random bytes, or
    # a file holding keys one a line (the first current, the others older ones). New files are sealed
    # under the current key; the previous keys (comma-separated) still open older files.
    file_encryption_key: str | None = None
    file_encryption_key_file: Path | None = None
    file_encryption_previous_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # True: a stored file without the encryption header is refused on read, so a plain file put in the
    # place of a sealed one is never served (set once every file is encrypted).
    file_encryption_required: bool = False

    # Report notifications (storage/notifier.py)
    smtp_host: str | None = Field(None, description="SMTP server that sends report e-mails; unset = no e-mail")
    smtp_port: int = Field(25, ge=1, le=65535, description="its port (587 with STARTTLS, 465 with SSL, usually)")
    smtp_username: str | None = Field(None, description="login name; the login needs TLS unless the host is loopback")
    smtp_password: str | None = Field(None, description="password of that login")
    smtp_starttls: bool = Field(False, description="upgrade the connection with STARTTLS (the certificate verified)")
    smtp_ssl: bool = Field(False, description="connect over TLS from the start (SMTPS); STARTTLS is then not used")
    smtp_from: str = Field("analytics@localhost", min_length=3, description="the From address of report e-mails")
    smtp_timeout_seconds: float = Field(30.0, gt=0, le=600, description="timeout of each SMTP network operation")
    notify_attachment_max_bytes: int = Field(
        5 * 1024 * 1024, ge=0, description="a report file up to this size is attached to e-mails; above it, only linked"
    )
    webhook_signing_secret: str | None = Field(
        None, min_length=16, description="HMAC-SHA256 key of webhook signatures; unset = no webhook is sent"
    )
    notify_retries: int = Field(4, ge=0, le=10, description="retries of a delivery after a transient failure")
    notify_backoff_seconds: float = Field(1.0, ge=0, le=60, description="the first retry's delay, doubled each time")
    notify_timeout_seconds: float = Field(10.0, gt=0, le=300, description="timeout of one webhook/Slack/Teams POST")

    # Report schedules (actors/report_scheduler.py)
    # The daily job (docs/batch.md): each UTC day is computed once it has been closed for this long, so
    # events that arrive a little late are in its first run.
    daily_aggregation: bool = True
    aggregation_lateness_minutes: int = Field(15, ge=0, le=24 * 60)
    report_scheduler: bool = Field(
        True, description="run the report scheduler actor (schedules, and retries of runs whose worker died)"
    )
    report_schedule_poll_seconds: float = Field(
        15.0, gt=0, le=3600, description="how often the scheduler looks for due slots; a slot starts within this"
    )
    report_catch_up: Literal["latest", "all", "none"] = Field(
        "latest",
        description="slots that passed while no scheduler ran: latest = run only the newest, record the others "
        "missed; all = run them (at most report_catch_up_max_slots, the newest); none = record them all missed",
    )
    report_catch_up_max_slots: int = Field(
        24, ge=1, le=10_000, description="with report_catch_up=all, at most this many late slots of a report run"
    )

    # Report runs and exports (pipelines/report_runs.py, pipelines/exports.py)
    public_url: str | None = Field(
        None,
        description="the address clients reach the service at (https://analytics.example.com), for links in "
        "notifications; unset = http://host:port",
    )
    link_signing_secret: str | None = Field(
        None,
        min_length=32,
        description="HMAC key of signed download links; unset = a random key the service keeps in PostgreSQL",
    )
    report_link_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=60, le=90 * 24 * 3600, description="how long the download link of a notification works"
    )
    report_run_stale_seconds: float = Field(
        120.0,
        gt=0,
        le=86_400,
        description="a generating run or running export whose task has not reported for this long has lost its "
        "worker: it is retried, or failed once it has had report_run_max_attempts",
    )
    report_run_max_attempts: int = Field(3, ge=1, le=10, description="attempts of a run or export before it fails")
    report_run_timeout_seconds: float = Field(
        1800.0, gt=0, le=86_400, description="a report run or export taking longer than this fails"
    )

    @field_validator("internal_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @field_validator("user_id_hash_previous_salts", mode="before")
    @classmethod
    def _split_salts(cls, value: object) -> object:
        if isinstance(value, str):
            return [salt.strip() for salt in value.split(",") if salt.strip()]
        return value

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return [a.strip() for a in value.split(",") if a.strip()]
        return value

    @model_validator(mode="after")
    def _usable_jwt_keys(self) -> Settings:
        secret = self.jwt_hmac_secret
        if secret is not None:
            hmac = [a for a in self.jwt_algorithms if a in _HMAC_SECRET_BYTES]
            if not hmac:
                raise ValueError("ANALYTICS_JWT_HMAC_SECRET is set but ANALYTICS_JWT_ALGORITHMS has no HS* algorithm")
            needed = max(_HMAC_SECRET_BYTES[a] for a in hmac)
            if len(secret.encode()) < needed:
                raise ValueError(
                    f"ANALYTICS_JWT_HMAC_SECRET must be a random secret of at least {needed} bytes "
                    f"for {', '.join(hmac)}"
                )
        for name, path in (("PUBLIC_KEY", self.jwt_public_key_file), ("JWKS", self.jwt_jwks_file)):
            if path is not None and not path.is_file():
                raise ValueError(f"ANALYTICS_JWT_{name}_FILE: {path} is not a readable file")
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        key = self.bootstrap_admin_key
        weak = key is not None and (len(key) < 24 or key.lower() in _PLACEHOLDERS)
        if weak and self.environment == "production":
            raise ValueError(
                "ANALYTICS_BOOTSTRAP_ADMIN_KEY must be a random secret of at least 24 characters in production"
            )
        return self

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _exact_origins(cls, value: object) -> object:
        """Origins as browsers send them (``scheme://host[:port]``, lower case, no default port), so that
        an exact comparison is right; anything that is not one origin (a path, a wildcard) is refused."""
        if isinstance(value, str):
            value = [o.strip() for o in value.split(",") if o.strip()]
        if not isinstance(value, list):
            return value
        origins = []
        for text in value:
            parts = urlsplit(str(text).lower().removesuffix("/"))
            try:
                port = parts.port
            except ValueError:
                port = -1
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or "*" in parts.netloc
                or "@" in parts.netloc
                or port == -1
                or parts.path
                or parts.query
                or parts.fragment
            ):
                raise ValueError(
                    f"ANALYTICS_CORS_ORIGINS: {text!r} is not an origin; write scheme://host[:port], "
                    "e.g. https://app.example.com (no path, no wildcard)"
                )
            default_port = {"http": ":80", "https": ":443"}[parts.scheme]
            origins.append(f"{parts.scheme}://{parts.netloc.removesuffix(default_port)}")
        return origins

    @model_validator(mode="after")
    def _tls_files_together(self) -> Settings:
        cert, key = self.tls_cert_file, self.tls_key_file
        if (cert is None) != (key is None):
            given, missing = ("CERT", "KEY") if key is None else ("KEY", "CERT")
            raise ValueError(
                f"ANALYTICS_TLS_{given}_FILE is set but ANALYTICS_TLS_{missing}_FILE is not: HTTPS needs both "
                "(or neither, for plain HTTP)"
            )
        for name, path in (("CERT", cert), ("KEY", key)):
            if path is not None and not path.is_file():
                raise ValueError(f"ANALYTICS_TLS_{name}_FILE: {path} is not a readable file")
        return self

    @field_validator("file_encryption_previous_keys", mode="before")
    @classmethod
    def _split_file_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("blob_url")
    @classmethod
    def _blob_location(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        scheme, _, rest = value.strip().partition("://")
        # A local directory is absolute: replicas may run in other working directories.
        if (
            scheme not in ("s3", "file")
            or (scheme == "s3" and not rest.split("/", 1)[0])
            or (scheme == "file" and not rest.startswith("/"))
        ):
            raise ValueError(
                f"ANALYTICS_BLOB_URL: {value!r} is neither s3://bucket[/prefix] nor file:///absolute/directory "
                "(unset = <data dir>/files)"
            )
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _usable_file_keys(self) -> Settings:
        if self.file_encryption_key and self.file_encryption_key_file:
            raise ValueError("set ANALYTICS_FILE_ENCRYPTION_KEY or ANALYTICS_FILE_ENCRYPTION_KEY_FILE, not both")
        if not self.file_encryption_keys and self.file_encryption_required:
            raise ValueError(
                "ANALYTICS_FILE_ENCRYPTION_REQUIRED is set but no file encryption key is "
                "(ANALYTICS_FILE_ENCRYPTION_KEY or ANALYTICS_FILE_ENCRYPTION_KEY_FILE)"
            )
        return self

    @property
    def file_encryption_keys(self) -> list[bytes]:
        """The file encryption keys, the current one first; empty = files are written plain."""
        named: list[tuple[str, str]] = []
        if self.file_encryption_key:
            named.append(("ANALYTICS_FILE_ENCRYPTION_KEY", self.file_encryption_key))
        if self.file_encryption_key_file is not None:
            setting = "ANALYTICS_FILE_ENCRYPTION_KEY_FILE"
            try:
                lines = self.file_encryption_key_file.read_text().splitlines()
            except (OSError, UnicodeDecodeError):
                raise ValueError(f"{setting}: {self.file_encryption_key_file} is not a readable text file") from None
            named += [(f"{setting} line {n}", line) for n, line in enumerate(lines, 1) if line.strip()]
            if not named:
                raise ValueError(f"{setting}: {self.file_encryption_key_file} holds no key")
        named += [("ANALYTICS_FILE_ENCRYPTION_PREVIOUS_KEYS", key) for key in self.file_encryption_previous_keys]
        return [_file_key(text, setting) for setting, text in named] if named else []

    @property
    def embedded_clickhouse(self) -> bool:
        return not self.clickhouse_dsn

    @property
    def chdb_path(self) -> Path:
        return (self.data_dir / "chdb").resolve()

    @property
    def postgres_data_path(self) -> Path:
        return (self.data_dir / "postgres").resolve()


def _file_key(text: str, setting: str) -> bytes:
    """A file encryption key as configured: base64 (standard or URL-safe) of exactly 32 random bytes."""
    try:
        raw = base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        raise ValueError(f"{setting}: a key is not base64 (make one with `openssl rand -base64 32`)") from None
    if len(raw) != 32:
        raise ValueError(f"{setting}: a key is {len(raw)} bytes, not 32 (make one with `openssl rand -base64 32`)")
    return raw


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
