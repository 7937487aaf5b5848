"""The summary `make bench` writes at the top of docs/benchmarks.md from the JSON reports."""

from __future__ import annotations

import json
from pathlib import Path

from cephalo_dev.benchreport import (
    Comparison,
    from_table,
    main,
    read_reports,
    regenerate,
    render_summary,
    write_report,
    write_section,
)

DOCUMENT = """# Benchmarks

Each section is written by its benchmark script.

<!-- bench-cli:start -->
## CLI
old numbers
<!-- bench-cli:end -->
"""


def test_a_report_holds_the_comparison_with_its_ratio(tmp_path: Path) -> None:
    path = write_report(
        "api",
        "API throughput",
        [
            Comparison("gateway list", 900.0, "req/s", "bare FastAPI", 2500.0, ">= 0.35", True),
            Comparison("p99", 41.0, "ms"),
        ],
        directory=tmp_path,
    )
    report = json.loads(path.read_text())
    assert path.name == "api.json"
    assert report["name"] == "api"
    assert report["run_at"].endswith("+00:00")
    assert len(report["load_average"]) == 3
    assert report["machine"]["cpus"]
    first, second = report["comparisons"]
    assert first["ratio"] == 0.36
    assert first["met"] is True
    assert second["ratio"] is None
    assert second["reference"] is None
    assert second["target"] is None


def test_the_summary_lists_every_comparison_ratio_target_and_run(tmp_path: Path) -> None:
    write_report(
        "cli",
        "CLI push",
        [Comparison("peak RSS", 50.6, "MiB", target="< 100 MiB", met=True)],
        directory=tmp_path,
    )
    write_report(
        "api",
        "API throughput",
        [Comparison("gateway list", 700.0, "req/s", "bare FastAPI", 2500.0, ">= 0.35", False)],
        directory=tmp_path,
    )
    text = render_summary(read_reports(tmp_path))
    assert (
        "| [API throughput](#bench-api) | gateway list | 700 req/s | bare FastAPI (2,500 req/s) | 0.28 | >= 0.35 | **not met** |"
        in text
    )
    assert "| [CLI push](#bench-cli) | peak RSS | 50.6 MiB | - | - | < 100 MiB | met |" in text
    assert "- [CLI push](#bench-cli): run " in text
    assert "Python" in text
    assert "![" not in text


def test_regenerating_keeps_every_section_and_replaces_only_the_summary(tmp_path: Path) -> None:
    document = tmp_path / "benchmarks.md"
    document.write_text(DOCUMENT)
    reports = tmp_path / "benchmarks"
    write_report("cli", "CLI push", [Comparison("time", 49.3, "s")], directory=reports)
    (reports / "deploy-fanout.png").write_bytes(b"\x89PNG")
    (reports / "broken.json").write_text("{not json")

    first = regenerate(document, reports)
    main(["--document", str(document), "--reports", str(reports)])
    second = document.read_text()

    assert first == second
    assert second.count("<!-- bench-summary:start -->") == 1
    assert second.index("bench-summary:start") < second.index("bench-cli:start")
    assert second.startswith("# Benchmarks\n\nEach section is written by its benchmark script.")
    assert "old numbers" in second
    assert '<a id="bench-cli"></a>\n<!-- bench-cli:start -->' in second
    assert second.count('<a id="bench-cli">') == 1
    assert "![Deployment time against number of targets](benchmarks/deploy-fanout.png)" in second


def test_a_benchmark_rewrites_only_its_own_section(tmp_path: Path) -> None:
    document = tmp_path / "benchmarks.md"
    document.write_text(DOCUMENT)
    write_section("bench-api", "## API\nnew", document)
    write_section("bench-cli", "## CLI\nfresh", document)
    text = document.read_text()
    assert "old numbers" not in text
    assert "## CLI\nfresh" in text
    assert text.index("bench-cli:start") < text.index("bench-api:start")


def test_no_reports_yet_says_so(tmp_path: Path) -> None:
    document = tmp_path / "benchmarks.md"
    text = regenerate(document, tmp_path / "none")
    assert "run `make bench`" in text
    assert text.startswith("# Benchmarks")


def test_text_rows_become_comparisons_by_their_first_figure() -> None:
    rows = [
        ("register 1000 polling agents", "81.7 s"),
        ("  per run, dispatch to step.finished", "p50 15.21 s, p95 28.13 s, max 29.27 s"),
        ("  CPU used meanwhile: agent-gateway / swarm", "25.9 s / 11.5 s"),
        ("dashboard", "1,234 ms median, 1500 ms p95"),
        ("note", "not measured"),
    ]
    found = from_table(rows, target="< 300 ms", limit=300)
    assert [(c.measure, c.value, c.unit, c.met) for c in found] == [
        ("register 1000 polling agents", 81.7, "s", True),
        ("per run, dispatch to step.finished (p50)", 15.21, "s", True),
        ("dashboard", 1234.0, "ms", False),
    ]
