"""The transport settings (core/settings.py): TLS files both or neither and present, CORS origins
normalized to what browsers send or refused, and both travelling to replicas as environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings
from serve_app.app import settings_env


@pytest.fixture
def pem_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("certificate\n")
    key.write_text("key\n")
    return cert, key


def test_no_tls_and_no_cors_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANALYTICS_TLS_CERT_FILE", "ANALYTICS_TLS_KEY_FILE", "ANALYTICS_CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.tls_cert_file, settings.tls_key_file, settings.cors_origins) == (None, None, [])


def test_tls_files_from_the_environment(monkeypatch: pytest.MonkeyPatch, pem_files: tuple[Path, Path]) -> None:
    cert, key = pem_files
    monkeypatch.setenv("ANALYTICS_TLS_CERT_FILE", str(cert))
    monkeypatch.setenv("ANALYTICS_TLS_KEY_FILE", str(key))
    settings = Settings()
    assert (settings.tls_cert_file, settings.tls_key_file) == (cert, key)


@pytest.mark.parametrize(("given", "named"), [("cert", "ANALYTICS_TLS_KEY_FILE"), ("key", "ANALYTICS_TLS_CERT_FILE")])
def test_one_tls_file_without_the_other_is_refused(pem_files: tuple[Path, Path], given: str, named: str) -> None:
    cert, key = pem_files
    one = {"tls_cert_file": cert} if given == "cert" else {"tls_key_file": key}
    with pytest.raises(ValidationError, match=f"{named} is not: HTTPS needs both"):
        Settings(**one)  # type: ignore[arg-type]


def test_a_missing_tls_file_is_named(pem_files: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _ = pem_files
    missing = tmp_path / "nowhere" / "key.pem"
    with pytest.raises(ValidationError, match=f"ANALYTICS_TLS_KEY_FILE: {missing} is not a readable file"):
        Settings(tls_cert_file=cert, tls_key_file=missing)
    # A directory is no file either.
    with pytest.raises(ValidationError, match="ANALYTICS_TLS_CERT_FILE"):
        Settings(tls_cert_file=tmp_path, tls_key_file=cert)


def test_cors_origins_are_kept_as_browsers_send_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ANALYTICS_CORS_ORIGINS",
        " https://App.Example.com , http://localhost:3000/,https://a.example:443,http://b.example:80,"
        "https://c.example:8443,http://[::1]:5173,",
    )
    assert Settings().cors_origins == [
        "https://app.example.com",
        "http://localhost:3000",
        "https://a.example",
        "http://b.example",
        "https://c.example:8443",
        "http://[::1]:5173",
    ]


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "https://*.example.com",
        "app.example.com",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "null",
    ],
)
def test_anything_but_an_origin_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="ANALYTICS_CORS_ORIGINS: .* is not an origin"):
        Settings(cors_origins=f"https://fine.example,{origin}")


def test_transport_settings_travel_to_replicas_as_environment(
    monkeypatch: pytest.MonkeyPatch, pem_files: tuple[Path, Path]
) -> None:
    cert, key = pem_files
    original = Settings(
        tls_cert_file=cert,
        tls_key_file=key,
        cors_origins=["https://a.example", "https://b.example:8443"],
        hsts_max_age_seconds=60,
    )
    for name, value in settings_env(original).items():
        monkeypatch.setenv(name, value)
    assert Settings().model_dump() == original.model_dump()
