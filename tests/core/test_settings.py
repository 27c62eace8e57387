"""Settings: ANALYTICS_* variables, defaults, and the refusal of placeholder secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings
from serve_app.app import settings_env


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANALYTICS_DATA_DIR", "ANALYTICS_PORT", "ANALYTICS_CLICKHOUSE_DSN", "ANALYTICS_POSTGRES_DSN"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.data_dir == Path("./.analytics-data")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.embedded_clickhouse
    assert settings.postgres_dsn is None
    assert (settings.max_event_bytes, settings.max_batch_bytes, settings.max_batch_events) == (
        32768,
        5 * 1024 * 1024,
        5000,
    )
    assert settings.anonymize_ip is True
    assert (settings.ingress_mode, settings.ingress_replicas) == ("direct", 1)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANALYTICS_PORT", "9123")
    monkeypatch.setenv("ANALYTICS_CLICKHOUSE_DSN", "http://ch:8123")
    monkeypatch.setenv("ANALYTICS_INTERNAL_HOSTS", "Platform.Example, cdn.platform.example ,")
    monkeypatch.setenv("ANALYTICS_ANONYMIZE_IP", "false")
    settings = Settings()
    assert settings.port == 9123
    assert settings.chdb_path == (tmp_path / "chdb").resolve()
    assert not settings.embedded_clickhouse
    assert settings.internal_hosts == ["platform.example", "cdn.platform.example"]
    assert settings.anonymize_ip is False


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        Settings()


@pytest.mark.parametrize("key", ["changeme", "admin", "short-key"])
def test_production_refuses_placeholder_admin_keys(key: str) -> None:
    with pytest.raises(ValidationError, match="BOOTSTRAP_ADMIN_KEY"):
        Settings(environment="production", bootstrap_admin_key=key)
    # Development accepts anything, for local automation.
    assert Settings(environment="development", bootstrap_admin_key=key).bootstrap_admin_key == key


def test_settings_travel_to_replicas_as_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(
        port=8111, internal_hosts=["a.example", "b.example"], anonymize_ip=False, redis_url="redis://r:6379/2"
    )
    for name, value in settings_env(original).items():
        monkeypatch.setenv(name, value)
    rebuilt = Settings()
    assert rebuilt.model_dump() == original.model_dump()


@pytest.mark.parametrize("name", ["retention_days", "rollup_retention_days", "minute_retention_days"])
def test_a_retention_past_clickhouses_last_date_is_refused(name: str) -> None:
    # A TTL beyond 2106 wraps around in ClickHouse and deletes events at once.
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: 36_500})
    assert getattr(Settings(**{name: 25_000}), name) == 25_000
