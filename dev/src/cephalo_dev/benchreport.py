"""Benchmark results as data, and the summary at the top of docs/benchmarks.md built from them.

Every benchmark writes its own marked section of docs/benchmarks.md (prose and tables for
people) and `docs/benchmarks/<name>.json` (its comparisons as data). `make bench` ends with
`python -m cephalo_dev.benchreport`, which reads every JSON file and rewrites only the
summary block between `<!-- bench-summary:start -->` and `<!-- bench-summary:end -->`, so a
benchmark run alone and the summary never overwrite each other.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DOCUMENT = ROOT / "docs" / "benchmarks.md"
REPORTS = ROOT / "docs" / "benchmarks"
PLOT = "deploy-fanout.png"
UNDER_LOAD = 3.0
SUMMARY = "bench-summary"
PREAMBLE = (
    "# Benchmarks\n\nEach section is written by its benchmark script; run it again to refresh "
    "the numbers. Benchmarks are not tests: nothing asserts a timing.\n"
)


@dataclass(frozen=True)
class Comparison:
    """One measured figure, beside what it is compared with and the target it must meet."""

    measure: str
    value: float
    unit: str
    reference: str | None = None
    reference_value: float | None = None
    target: str | None = None
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.reference_value in (None, 0):
            return None
        assert self.reference_value is not None
        return round(self.value / self.reference_value, 3)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


FIGURE = re.compile(r"^(?:(p\d+|median|max)\s+)?(-?[\d,]*\.?\d+)\s*([A-Za-z%/]+(?:/[a-z]+)?)")


def from_table(
    rows: Iterable[tuple[str, str]], target: str | None = None, limit: float | None = None
) -> list[Comparison]:
    """Comparisons from a section's `(measure, "12.3 s ...")` rows, for benchmarks that
    keep their results as text: each row's first figure, named by its percentile when it
    has one; rows whose result holds no leading figure, or several measures ("a / b"), are
    left to the section. With `limit`, a row meets `target` when its figure is under it."""
    comparisons = []
    for measure, result in rows:
        found = FIGURE.match(result.strip())
        if found is None or " / " in result:
            continue
        label, number, unit = found.groups()
        value = float(number.replace(",", ""))
        comparisons.append(
            Comparison(
                f"{measure.strip()} ({label})" if label else measure.strip(),
                value,
                unit,
                target=target,
                met=None if limit is None else value < limit,
            )
        )
    return comparisons


def machine() -> dict[str, Any]:
    """What ran the benchmark: the figures mean little without it."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def describe_machine(info: dict[str, Any], load: Sequence[float]) -> str:
    """One line for a section's "Run ..." paragraph, saying when the numbers were under load."""
    shared = " (under load: the machine is shared)" if load and load[0] > UNDER_LOAD else ""
    return (
        f"{info.get('cpus')} CPU ({info.get('cpu_model')}), {info.get('memory_gib')} GiB RAM, "
        f"{info.get('os')}; Python {info.get('python')}; load average "
        + ", ".join(f"{value:.1f}" for value in load)
        + shared
    )


def write_report(
    name: str,
    title: str,
    comparisons: Iterable[Comparison],
    directory: Path = REPORTS,
    extra: dict[str, Any] | None = None,
) -> Path:
    """`docs/benchmarks/<name>.json`, in the format `make bench` summarises."""
    report = {
        "name": name,
        "title": title,
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": load_average(),
        "comparisons": [comparison.as_json() for comparison in comparisons],
        **(extra or {}),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, body: str, *, first: bool = False) -> str:
    """`text` with the block marked `name` replaced by `body` (added when missing: at the
    end, or right after the title when `first`)."""
    start, end = markers(name)
    section = f"{start}\n{body.strip()}\n{end}\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        return head + section + ("\n" + tail if tail else "")
    if first:
        title, _, rest = text.partition("\n\n")
        paragraph, _, rest = rest.partition("\n\n")
        return f"{title}\n\n{paragraph}\n\n{section}\n{rest}".rstrip("\n") + "\n"
    return text.rstrip("\n") + "\n\n" + section


def write_section(name: str, body: str, output: Path = DOCUMENT) -> None:
    """A benchmark's own section of docs/benchmarks.md; the rest of the file is kept."""
    text = output.read_text() if output.exists() else PREAMBLE
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(replace_section(text, name, body))
    print(f"wrote {output}")


def read_reports(directory: Path) -> list[dict[str, Any]]:
    """Every report, skipping files that are not one (a half-written run must not stop the
    summary of the others)."""
    reports = []
    for path in sorted(directory.glob("*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(report, dict) and isinstance(report.get("comparisons"), list):
            reports.append(report)
    return reports


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _met(met: Any) -> str:
    return {True: "met", False: "**not met**"}.get(met, "-")


def _row(report: dict[str, Any], row: dict[str, Any]) -> str:
    name = report.get("name", "?")
    ratio = row.get("ratio")
    reference = row.get("reference")
    compared = (
        f"{reference} ({_number(row.get('reference_value'))} {row.get('unit', '')})".strip()
        if reference
        else "-"
    )
    return (
        f"| [{report.get('title', name)}](#{_anchor(report)}) | {row.get('measure', '')} "
        f"| {_number(row.get('value'))} {row.get('unit', '')} | {compared} "
        f"| {_number(ratio) if ratio is not None else '-'} | {row.get('target') or '-'} "
        f"| {_met(row.get('met'))} |"
    )


def _anchor(report: dict[str, Any]) -> str:
    return f"bench-{report.get('name', '')}"


def _run_line(report: dict[str, Any]) -> str:
    load = [float(value) for value in report.get("load_average") or []]
    return (
        f"- [{report.get('title', report.get('name'))}](#{_anchor(report)}): run "
        f"{report.get('run_at', '?')} on {describe_machine(report.get('machine') or {}, load)}"
    )


def render_summary(reports: Sequence[dict[str, Any]], plot: Path | None = None) -> str:
    """The table of every comparison with its ratio and target, one line per run, the plot."""
    lines = [
        "## Summary",
        "",
        "Generated by `make bench` (`python -m cephalo_dev.benchreport`) from "
        "`docs/benchmarks/*.json`; the sections below hold the method and every figure. "
        f"Runs at a load average above {UNDER_LOAD:g} were taken under load.",
        "",
    ]
    if not reports:
        lines.append("No benchmark has written its results yet: run `make bench`.")
    else:
        lines += [
            "| benchmark | measure | value | compared with | ratio | target | |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [_row(report, row) for report in reports for row in report["comparisons"]]
        lines += ["", "Runs:", ""] + [_run_line(report) for report in reports]
    if plot is not None:
        lines += ["", f"![Deployment time against number of targets](benchmarks/{plot.name})"]
    return "\n".join(lines)


def anchors(text: str, reports: Sequence[dict[str, Any]]) -> str:
    """An HTML anchor before each report's section, so the summary links land on it."""
    for report in reports:
        start, _ = markers(_anchor(report))
        tag = f'<a id="{_anchor(report)}"></a>'
        if start in text and f"{tag}\n{start}" not in text:
            text = text.replace(start, f"{tag}\n{start}", 1)
    return text


def regenerate(document: Path = DOCUMENT, directory: Path = REPORTS) -> str:
    reports = read_reports(directory)
    plot = directory / PLOT
    text = document.read_text() if document.exists() else PREAMBLE
    body = render_summary(reports, plot if plot.exists() else None)
    text = anchors(replace_section(text, SUMMARY, body, first=True), reports)
    document.parent.mkdir(parents=True, exist_ok=True)
    document.write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the summary of docs/benchmarks.md.")
    parser.add_argument("--document", type=Path, default=DOCUMENT)
    parser.add_argument("--reports", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    regenerate(args.document, args.reports)
    print(f"wrote {args.document}")


if __name__ == "__main__":
    main()
