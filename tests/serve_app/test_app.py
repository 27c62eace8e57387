"""The Serve application's builder (serve_app/app.py): credentials never travel in a runtime_env (Ray's
runtime-env agent logs it), replicas rebuild the exact Settings from their constructor argument, and
HTTPS settings in proxy mode are refused while Serve's proxy listens on plain HTTP."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from ray.serve.config import HTTPOptions

from core.settings import Settings
from serve_app import app as serve_application
from serve_app.app import SECRET_SETTINGS, build_app, runtime_env_vars, settings_env
from serve_app.direct_server import replica_settings
from tests.certificates import make_certificates

CREDENTIALS = {
    "postgres_dsn": "postgresql://analytics:pg-secret@db.example:5432/analytics",
    "redis_url": "redis://default:redis-secret@cache.example:6379/0",
    "clickhouse_dsn": "http://default:ch-secret@clickhouse.example:8123/analytics",
    "nats_url": "nats://user:nats-secret@nats.example:4222",
    "bootstrap_admin_key": "ak_" + "k" * 40,
    "jwt_hmac_secret": "jwt-secret-" + "j" * 40,
    "user_id_hash_salt": "salt-secret-" + "s" * 20,
    "user_id_hash_previous_salts": "old-salt-secret-" + "o" * 20,
    "s3_access_key_id": "AKIA-s3-key-id",
    "s3_secret_access_key": "s3-secret-access-key",
    # base64 of 32 bytes: the current file encryption key and a previous one.
    "file_encryption_key": "ZmlsZS1rZXktc2VjcmV0LWZpbGUta2V5LXNlY3JldC0=",
    "file_encryption_previous_keys": "b2xkLWZpbGUta2V5LXNlY3JldC1vbGQtZmlsZS1rZXk=",
}


def test_a_runtime_env_carries_every_setting_but_the_credentials() -> None:
    settings = Settings(port=8123, cors_origins="https://a.example", **CREDENTIALS)  # type: ignore[arg-type]
    assert set(CREDENTIALS) == SECRET_SETTINGS
    env = runtime_env_vars(settings)
    text = repr(env)
    for secret in ("pg-secret", "redis-secret", "ch-secret", "nats-secret", "jwt-secret", "s3-key-id", "s3-secret"):
        assert secret not in text
    assert CREDENTIALS["bootstrap_admin_key"] not in text
    assert CREDENTIALS["file_encryption_key"] not in text and CREDENTIALS["file_encryption_previous_keys"] not in text
    everything = settings_env(settings)
    assert set(everything) - set(env) == {f"ANALYTICS_{name.upper()}" for name in SECRET_SETTINGS}
    assert env["ANALYTICS_PORT"] == "8123" and env["ANALYTICS_CORS_ORIGINS"] == "https://a.example"


def test_a_replica_rebuilds_the_settings_it_is_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The replica's own environment has none of it (as on a node that only runs replicas).
    for name in settings_env(Settings(**CREDENTIALS)):  # type: ignore[arg-type]
        monkeypatch.delenv(name, raising=False)
    certificates = make_certificates(tmp_path)
    original = Settings(
        port=8124,
        tls_cert_file=certificates.cert_file,
        tls_key_file=certificates.key_file,
        internal_hosts=["platform.example"],
        **CREDENTIALS,  # type: ignore[arg-type]
    )
    assert replica_settings(original.model_dump(mode="json")).model_dump() == original.model_dump()


def test_https_in_proxy_mode_needs_serves_proxy_to_hold_the_certificate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    certificates = make_certificates(tmp_path)
    args = {
        "ingress_mode": "proxy",
        "postgres_dsn": "postgresql://postgres@127.0.0.1:5432/unused",
        "tls_cert_file": str(certificates.cert_file),
        "tls_key_file": str(certificates.key_file),
    }
    # Serve as started from a serve_config.yaml whose http_options name no certificate.
    plain_proxy = SimpleNamespace(http_config=HTTPOptions(host="127.0.0.1", port=8000))
    monkeypatch.setattr(serve_application, "_get_global_client", lambda: plain_proxy)
    with pytest.raises(ValueError, match=r"http_options\.ssl_certfile .* serve_config\.yaml"):
        build_app(args)
