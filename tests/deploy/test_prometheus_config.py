"""The committed Prometheus files (deploy/prometheus/) as promtool checks them, every alerting rule
shaped for an on-call reader (severity, summary, description, documented in docs/bi.md), and the PromQL
name extraction the end-to-end checks rely on (tests/deploy/promql.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.deploy.promql import PROMETHEUS_DIR, ROOT, alert_rules, metric_names

PROMTOOL = "/usr/bin/promtool"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_rules() -> None:
    checked = _promtool("check", "rules", "alerts.yml", cwd=PROMETHEUS_DIR)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_promtool_accepts_the_configuration_with_its_rules_and_key_file(tmp_path: Path) -> None:
    # As committed, without the key file it reads: the syntax.
    syntax = _promtool("check", "config", "--syntax-only", "prometheus.yml", cwd=PROMETHEUS_DIR)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    # Installed as docs/bi.md says (the key file beside it): the whole check, the rule files included.
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(PROMETHEUS_DIR / name, tmp_path / name)
    (tmp_path / "analytics-api-key").write_text("ak_example\n")
    full = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert full.returncode == 0, full.stdout + full.stderr
    assert "SUCCESS" in full.stdout and "rules found" in full.stdout
    # The check can fail: without the key file the configuration is refused.
    (tmp_path / "analytics-api-key").unlink()
    assert _promtool("check", "config", "prometheus.yml", cwd=tmp_path).returncode != 0


def test_the_configuration_scrapes_the_service_and_ray_and_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"analytics", "ray"}
    analytics = jobs["analytics"]
    assert analytics["metrics_path"] == "/metrics"
    # The key comes from a file, never from the configuration itself.
    assert analytics["authorization"] == {"type": "Bearer", "credentials_file": "analytics-api-key"}
    assert "credentials" not in analytics["authorization"]
    assert analytics["static_configs"][0]["targets"]
    assert jobs["ray"]["file_sd_configs"][0]["files"] == ["/tmp/ray/prom_metrics_service_discovery.json"]


def test_every_alert_has_a_severity_a_text_and_a_runbook_entry() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    runbook = (ROOT / "docs" / "bi.md").read_text()
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert re.search(rf"^#+ .*`{rule['alert']}`", runbook, re.MULTILINE), f"{rule['alert']} not in docs/bi.md"


def test_metric_names_are_the_selected_series_only() -> None:
    expression = (
        'sum by (le, route) (rate(foo_seconds_bucket{route="a", job=~"x|y"}[5m] offset 1h)) '
        "/ on(instance) group_left(zone) bar_total * 1e-3 > bool 0.5 and up{job='analytics'} unless absent(baz)"
    )
    assert metric_names(expression) == {"foo_seconds_bucket", "bar_total", "up", "baz"}
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(x_bucket[$__rate_interval])))") == {"x_bucket"}
    assert metric_names("max(analytics_store_flush_lag_seconds) > 60") == {"analytics_store_flush_lag_seconds"}
