"""The benchmark figures in docs/benchmarks.md and README.md are rendered from bench/results, and the
renderer puts each figure of a result file in its row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import benchmarks_doc
from bench.benchmarks_doc import BEGIN, END

ROOT = Path(__file__).resolve().parent.parent.parent
RESULTS = ROOT / "bench" / "results"


# --- the committed docs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "render", "link"),
    [
        ("docs/benchmarks.md", benchmarks_doc.render_docs_block, "../bench/results"),
        ("README.md", benchmarks_doc.render_readme_block, "bench/results"),
    ],
)
def test_committed_figures_match_the_committed_results(document: str, render: Any, link: str) -> None:
    committed = benchmarks_doc.generated_block((ROOT / document).read_text())
    assert committed is not None, f"{document} has no generated block ({BEGIN} ... {END})"
    expected = render(benchmarks_doc.load_results(RESULTS), link)
    assert committed == expected, (
        f"{document}'s benchmark figures differ from bench/results: run `make docs-benchmarks` "
        "(python -m bench.benchmarks_doc) and commit the result"
    )


def test_check_passes_on_the_committed_tree() -> None:
    assert benchmarks_doc.stale(ROOT) == []


def test_committed_results_say_where_they_were_measured() -> None:
    names = sorted(p.stem for p in RESULTS.glob("*.json"))
    # One file per benchmark and mode, named as the benchmarks write them.
    assert names and set(names) <= set(benchmarks_doc.MODULES), names
    for name in names:
        doc = json.loads((RESULTS / f"{name}.json").read_text())
        machine = doc["machine"]
        for key in ("cpu_model", "cpus", "memory_gib", "python", "commit"):
            assert machine.get(key), f"{name}.json: machine.{key} is missing"
        assert benchmarks_doc.run_date(doc), f"{name}.json has no date"


def test_every_headline_figure_has_a_result() -> None:
    rows = benchmarks_doc.figure_rows(benchmarks_doc.load_results(RESULTS), headline=True)
    assert {r.figure for r in rows} == {f.label for f in benchmarks_doc.FIGURES if f.headline}
    assert len(rows) <= 15


# --- the renderer, on a synthetic results directory --------------------------------------------------

MACHINE = {"cpus": 4, "cpu_model": "Test CPU 9000", "memory_gib": 15.5, "python": "3.11.9", "commit": "abc1234"}


def _latency(p50: float, p95: float, p99: float) -> dict[str, float]:
    return {"n": 100, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def _ingest() -> dict[str, Any]:
    def cell(batch: int, concurrency: int, rate: int, ratio: float, cpu: float) -> dict[str, Any]:
        return {
            "batch_size": batch,
            "concurrency": concurrency,
            "service": {"events_per_second": rate, "cpu_us_per_event_with_tail": cpu},
            "ratio_to_baseline": ratio,
        }

    def single(rate: int, p: tuple[float, float, float], achieved: float) -> dict[str, Any]:
        return {"rate": rate, "service": {"latency": _latency(*p), "achieved_rate": achieved}}

    return {
        "benchmark": "ingest",
        "at": "2031-02-03T04:05:06+00:00",
        "machine": MACHINE,
        "size": "small",
        "ingress_mode": "direct",
        "ingress_replicas": 2,
        "serve_env": {},
        "batch": [
            cell(100, 4, 12345, 1.5, 70.25),
            cell(100, 16, 23456, 1.1, 60.0),
            cell(1000, 4, 61234, 1.234, 35.5),
            cell(1000, 16, 55555, 0.987, 36.04),
        ],
        "single": [single(500, (7.0, 23.0, 41.0), 498.2)],
        "idle": {"share_of_a_core": 0.0456},
        "durability": {"sent": 10, "acknowledged": 10, "stored": 10, "all_stored": True},
    }


def _queries_full() -> dict[str, Any]:
    return {
        "benchmark": "queries_full",
        "at": "2031-01-02T00:00:00+00:00",
        "machine": {**MACHINE, "cpu_model": "Other CPU"},
        "size": "full",
        "memory": {
            "processes": 9,
            "rss_mib": 4000.0,
            "pss_mib": 3000.0,
            "service_rss_mib": 3210.4,
            "service_pss_mib": 2345.6,
        },
        "classes": [
            {
                "name": "content.analytics",
                "rest_c1": _latency(60.0, 91.0, 99.0),
                "graphql_c1": _latency(62.0, 95.0, 99.0),
            },
            {"name": "users.analytics", "rest_c1": _latency(33.0, 44.0, 50.0)},
            # search.overview is absent: a run with --classes that left it out.
        ],
    }


def _realtime() -> dict[str, Any]:
    return {
        "benchmark": "realtime",
        "at": "2031-03-04T00:00:00+00:00",
        "machine": MACHINE,
        "size": "small",
        "command": "python -m bench.bench_realtime --size small",
        "environment": {"ANALYTICS_INGRESS_MODE": "proxy"},
        "reads": {"actor_content_live": _latency(3.25, 12.5, 20.0)},
        "event_to_subscriber_from_ack": _latency(250.0, 480.0, 600.0),
        "subscribers": 20,
        "missed_updates": 0,
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with the two documents and a results directory."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "README.md").write_text(f"# Title\n\nBefore.\n\n{BEGIN}\nold\n{END}\n\nAfter.\n")
    (tmp_path / "docs" / "benchmarks.md").write_text(f"# Benchmarks\n\n{BEGIN}\n{END}\n")
    for doc in (_ingest(), _queries_full(), _realtime()):
        (tmp_path / "bench" / "results" / f"{doc['benchmark']}.json").write_text(json.dumps(doc))
    return tmp_path


def table(block: str) -> dict[str, list[str]]:
    """The rows of the figures table (the first table of the block) by figure."""
    rows: dict[str, list[str]] = {}
    for line in block.split("\n\n")[0].splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows[cells[0]] = cells
    return rows


def blocks(repo: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    readme = benchmarks_doc.generated_block((repo / "README.md").read_text())
    docs = benchmarks_doc.generated_block((repo / "docs" / "benchmarks.md").read_text())
    assert readme is not None and docs is not None
    return table(readme), table(docs)


def test_rows_carry_each_figure_of_the_results(repo: Path) -> None:
    assert benchmarks_doc.main(["--root", str(repo)]) == 0
    readme, docs = blocks(repo)
    ingest, queries, realtime = _ingest(), _queries_full(), _realtime()

    cells = {(c["batch_size"], c["concurrency"]): c for c in ingest["batch"]}
    rate = docs["Durable ingest, 1,000-event batches, 4 / 16 connections"]
    four, sixteen = (cells[1000, c]["service"]["events_per_second"] for c in (4, 16))
    assert rate[1] == f"{four:,} / {sixteen:,} events/s"
    assert rate[2] == "≥ 50,000 events/s"
    assert rate[3] == f"{MACHINE['cpus']} × {MACHINE['cpu_model']}, {MACHINE['memory_gib']} GiB"
    assert rate[4] == ingest["at"][:10]
    assert rate[5] == "[ingest.json](../bench/results/ingest.json)"
    # No command recorded: rebuilt from the result, with the replica count it ran with.
    assert (
        rate[6]
        == f"`ANALYTICS_INGRESS_REPLICAS={ingest['ingress_replicas']} python -m bench.bench_ingest --size small`"
    )
    assert (
        readme["Durable ingest, 1,000-event batches, 4 / 16 connections"][5]
        == "[ingest.json](bench/results/ingest.json)"
    )

    ratios = " / ".join(f"{cells[1000, c]['ratio_to_baseline']:.2f}×" for c in (4, 16))
    assert (
        docs["Ingest vs the bare uvicorn + FastAPI app, same run, 1,000-event batches, 4 / 16 connections"][1] == ratios
    )
    cpu = " / ".join(f"{cells[1000, c]['service']['cpu_us_per_event_with_tail']:.1f}" for c in (4, 16))
    assert docs["CPU per stored event with its tail, 1,000-event batches, 4 / 16 connections"][1] == f"{cpu} µs"

    single = ingest["single"][0]["service"]
    p50, p95, p99 = (round(single["latency"][k]) for k in ("p50_ms", "p95_ms", "p99_ms"))
    assert docs["Single events at 500 req/s, open loop"][1] == (
        f"p95 {p95} ms (p50 {p50}, p99 {p99}; {round(single['achieved_rate'])} req/s achieved)"
    )
    assert docs["Idle service CPU (nothing sent)"][1] == f"{ingest['idle']['share_of_a_core'] * 100:.1f}% of one core"

    memory = queries["memory"]
    assert docs["Service memory with 10M events stored"][1] == (
        f"{round(memory['service_rss_mib']):,} MiB RSS, {round(memory['service_pss_mib']):,} MiB PSS "
        f"over {memory['processes']} processes"
    )
    content = queries["classes"][0]
    assert docs["Content analytics of the most viewed item, 10M-event store, REST and GraphQL"][1] == (
        f"p95 {round(content['rest_c1']['p95_ms'])} ms (p50 {round(content['rest_c1']['p50_ms'])}); "
        f"GraphQL p95 {round(content['graphql_c1']['p95_ms'])} ms (p50 {round(content['graphql_c1']['p50_ms'])})"
    )
    queries_row = docs["User analytics of the busiest user, 10M-event store"]
    assert queries_row[3] == f"{MACHINE['cpus']} × Other CPU, {MACHINE['memory_gib']} GiB"
    assert queries_row[6] == f"`python -m bench.bench_queries --size {queries['size']}`"

    read = realtime["reads"]["actor_content_live"]
    live = docs["Live counter read at the counter shard (`content_live`)"]
    assert live[1] == f"p95 {round(read['p95_ms'])} ms (p50 {read['p50_ms']:.1f})"
    # A recorded command, with the settings the run was given.
    assert live[6] == f"`ANALYTICS_INGRESS_MODE=proxy {realtime['command']}`"

    # What a run did not measure, or a result file that is not there, has no row.
    assert "Search overview, 10M-event store" not in docs
    assert not any(row[5].startswith("[replica_path.json]") for row in docs.values())
    # The README holds the headline rows only.
    assert "Durable ingest, 100-event batches, 4 / 16 connections" in docs
    assert "Durable ingest, 100-event batches, 4 / 16 connections" not in readme
    assert set(readme) <= set(docs)
    assert set(readme) == {f.label for f in benchmarks_doc.FIGURES if f.headline} & set(docs)


def test_the_results_table_lists_every_file(repo: Path) -> None:
    benchmarks_doc.write(repo)
    block = benchmarks_doc.generated_block((repo / "docs" / "benchmarks.md").read_text())
    assert block is not None
    listed = [line for line in block.split("\n\n")[-1].splitlines()[2:]]
    names = sorted(p.name for p in (repo / "bench" / "results").glob("*.json"))
    assert [line.split("]")[0].removeprefix("| [") for line in listed] == names
    assert all(f"| {MACHINE['commit']} |" in line for line in listed)


def test_only_the_block_changes_and_check_sees_staleness(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert benchmarks_doc.main(["--root", str(repo), "--check"]) == 1
    assert "README.md" in capsys.readouterr().err
    assert benchmarks_doc.main(["--root", str(repo)]) == 0
    readme = (repo / "README.md").read_text()
    assert readme.startswith(f"# Title\n\nBefore.\n\n{BEGIN}\n")
    assert readme.endswith(f"\n{END}\n\nAfter.\n")
    assert benchmarks_doc.main(["--root", str(repo), "--check"]) == 0
    assert benchmarks_doc.stale(repo) == []

    # A new result makes the docs stale until they are rendered again.
    path = repo / "bench" / "results" / "ingest.json"
    changed = _ingest()
    cell = next(c for c in changed["batch"] if (c["batch_size"], c["concurrency"]) == (1000, 4))
    cell["service"]["events_per_second"] = 70001
    path.write_text(json.dumps(changed))
    assert benchmarks_doc.stale(repo) == [repo / "docs" / "benchmarks.md", repo / "README.md"]
    assert benchmarks_doc.main(["--root", str(repo), "--check"]) == 1
    benchmarks_doc.write(repo)
    assert "70,001 / " in (repo / "README.md").read_text()


def _operations_full() -> dict[str, Any]:
    """Every route at one client; the system and import groups' p95s in the order of their classes."""
    system_p95 = [12.0, 35.0, 48.0, 91.0, 20.0, 22.0, 15.0, 11.0]
    import_p95 = [30.0, 14.0, 160.0, 40.0, 45.0, 52.0]
    names = [*benchmarks_doc.SYSTEM_ROUTES, *benchmarks_doc.IMPORT_ROUTES, "imports.optimization"]
    classes = [
        {
            "name": name,
            "floor_sql": _latency(p95 / 4, p95 / 2, p95),
            "rest_c1": {**_latency(p95 / 2, p95, p95), "ok": 100},
        }
        for name, p95 in zip(names, [*system_p95, *import_p95, 420.0], strict=True)
    ]
    return {
        "benchmark": "operations_full",
        "at": "2031-04-05T00:00:00+00:00",
        "machine": MACHINE,
        "size": "full",
        "command": "python -m bench.bench_operations --size full",
        "classes": classes,
    }


def test_operations_figures_name_each_groups_slowest_route_and_wait_for_their_result(repo: Path) -> None:
    labels = [f.label for f in benchmarks_doc.FIGURES if f.result == "operations_full"]
    assert len(labels) == 3 and not any(f.headline for f in benchmarks_doc.FIGURES if f.result == "operations_full")
    benchmarks_doc.write(repo)
    _, docs = blocks(repo)
    # No result yet: no row, and the rest renders.
    assert not set(labels) & set(docs)

    (repo / "bench" / "results" / "operations_full.json").write_text(json.dumps(_operations_full()))
    benchmarks_doc.write(repo)
    readme, docs = blocks(repo)
    system_row, import_row, optimization_row = (docs[label] for label in labels)
    assert system_row[1].startswith("p95 91 ms (system.usage; its raw SQL p50 23 ms); system.health 12, ")
    assert system_row[1].endswith(", database.performance 11 ms")
    assert system_row[2] == "p95 < 100 ms"
    assert import_row[1].startswith("p95 160 ms (imports.sources; its raw SQL p50 40 ms); imports.jobs 30, ")
    assert import_row[2] == "p95 < 200 ms"
    assert optimization_row[1] == "p95 420 ms (p50 210); its raw SQL p50 105 ms"
    assert optimization_row[2] == "p95 < 500 ms"
    assert optimization_row[6] == "`python -m bench.bench_operations --size full`"
    assert not set(labels) & set(readme)


def test_a_result_of_another_shape_loses_its_row_with_a_warning(repo: Path) -> None:
    odd = _ingest()
    del odd["idle"]
    (repo / "bench" / "results" / "ingest.json").write_text(json.dumps(odd))
    problems: list[str] = []
    rows = benchmarks_doc.figure_rows(benchmarks_doc.load_results(repo / "bench" / "results"), problems=problems)
    assert "Idle service CPU (nothing sent)" not in {r.figure for r in rows}
    assert any("Idle service CPU" in p for p in problems)


def test_a_document_without_markers_is_an_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "README.md").write_text("# No block here\n")
    assert benchmarks_doc.main(["--root", str(repo)]) == 1
    assert "no generated block" in capsys.readouterr().err


# --- what a benchmark writes -------------------------------------------------------------------------


def test_write_result_records_the_machine_and_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import common

    monkeypatch.setenv("ANALYTICS_INGRESS_MODE", "proxy")
    monkeypatch.setenv("ANALYTICS_BOOTSTRAP_ADMIN_KEY", "never-in-a-result")
    monkeypatch.setenv("ANALYTICS_BENCH_POSTGRES_DSN", "postgresql://user:secret@host/db")
    path = common.write_result("ingest", {"size": "tiny", "summary": {}}, tmp_path)
    assert path == tmp_path / "ingest.json"
    doc = json.loads(path.read_text())
    machine = doc["machine"]
    for key in ("cpu_model", "cpus", "memory_gib", "python", "date", "commit"):
        assert machine.get(key), key
    assert "worktree_dirty" in machine
    assert doc["environment"]["ANALYTICS_INGRESS_MODE"] == "proxy"
    assert "never-in-a-result" not in path.read_text()
    assert "secret" not in path.read_text()
    # Under pytest no bench module is __main__: the renderer rebuilds the command from the result.
    assert doc["command"] is None
    assert (
        benchmarks_doc.command_text("ingest", doc)
        == "ANALYTICS_INGRESS_MODE=proxy python -m bench.bench_ingest --size tiny"
    )
