"""The committed monitoring files as the tests read them: the PromQL expressions of the Grafana
dashboards and of the Prometheus alerting rules, the metric names an expression selects, and the
metric names a Prometheus exposition offers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))

# Grafana's own variables, as Grafana would fill them in before sending a query to Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"}
)
_NUMBER_WORDS = frozenset({"inf", "nan"})

# Series that Prometheus itself records for every target it scrapes, on no exposition.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

# The sample names of a metric family of each type (prometheus_client strips _total from a counter's name).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def metric_names(expression: str) -> set[str]:
    """The metric names ``expression`` selects: every bare identifier that is not a function,
    keyword, label name (in matchers or grouping clauses) or number."""
    text = _STRING.sub('""', expression)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == "." or word.lower() in _KEYWORDS | _NUMBER_WORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function
        names.add(word)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every sample name the exposition's families may carry, also for a family with no sample yet
    (a labelled counter before its first increment)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def for_prometheus(expression: str) -> str:
    """``expression`` with Grafana's variables filled in."""
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    return expression


def load_dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every Prometheus query in the Grafana dashboards."""
    found = []
    for path in DASHBOARDS:
        for panel in panels(load_dashboard(path)):
            for target in panel.get("targets", []):
                if "expr" in target:
                    found.append((f"{path.name}: {panel['title']} {target['refId']}", target["expr"]))
    return found


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def alert_expressions() -> list[tuple[str, str]]:
    return [(f"alerts.yml: {rule['alert']}", rule["expr"]) for rule in alert_rules()]
