"""bench_feed.py's results as the package-feed section of docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cephalo_dev.benchreport import Comparison, write_report


def markers(backend: str) -> tuple[str, str]:
    """One section per storage back end, so an S3 run keeps the filesystem numbers."""
    name = "bench-feed" if backend == "filesystem" else f"bench-feed-{backend}"
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


REFERENCES = {
    "upload": "bare FastAPI (stream to disk)",
    "download": "nginx (sendfile)",
}
TARGETS = "download ≥ 50 % of nginx, upload ≥ 50 % of the bare endpoint, peak RSS < 150 MB"

METHOD = """\
`services/package-feed/bench/bench_feed.py` (`make bench-feed`) starts its own PostgreSQL
and NATS (the embedded wheels) and, as separate processes on free loopback ports,
package-feed and api-gateway with their production defaults (one uvicorn worker each,
uvloop and httptools, storage on the local disk unless `--backend s3`), the bare FastAPI
app `bench/bare_app.py` under the same uvicorn defaults (a body streamed to a file with
no hashing, checks or database; `FileResponse` for downloads: the practical Python
limit), and nginx 1 worker with `sendfile` on a generated config. The package is a
stored zip of random bytes; each push rewrites its zip comment, so every push stores a
new blob (package-feed stores identical content once). The client is `curl` (upload `-T file`, download to
/dev/null); each row is the median of {repetitions} transfers (min-max beside it), taken
round-robin over the routes so a change in the machine's load hits them alike. Server CPU
is the user + system time the serving processes used per GiB moved (from /proc; it
depends far less on a shared machine's load than MiB/s do). Pushes through
the gateway carry an API key (bootstrap administrator: authentication, authorization and
an audit row); the signed-link row is the keyless path agents use. Peak RSS is the
highest resident set of each server process sampled every 10 ms during the row's
transfers (so it includes the process's baseline of imported code). Client, servers,
PostgreSQL and the page cache all share the same cores and memory, so every figure is a
"whole system on this machine" figure."""


def _range(row: dict[str, Any]) -> str:
    return f"{row['mib_per_s_median']:.0f} ({row['mib_per_s_min']:.0f}-{row['mib_per_s_max']:.0f})"


def _per_server(values: dict[str, float], digits: int) -> str:
    return ", ".join(f"{name} {value:.{digits}f}" for name, value in values.items())


def transfer_table(rows: list[dict[str, Any]]) -> str:
    reference = {
        (row["size_mib"], row["operation"]): row["mib_per_s_median"]
        for row in rows
        if row["route"] == REFERENCES[row["operation"]]
    }
    lines = [
        "| size | operation | route | MiB/s median (min-max) | of reference "
        "| server CPU s per GiB | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = reference.get((row["size_mib"], row["operation"]))
        share = f"{100 * row['mib_per_s_median'] / base:.0f} %" if base else "-"
        mib = row["size_mib"]
        size = f"{mib} MiB" if mib < 1024 else f"{mib / 1024:g} GiB"
        lines.append(
            f"| {size} | {row['operation']} | {row['route']} | {_range(row)} | {share} "
            f"| {_per_server(row['cpu_seconds_per_gib'], 2)} "
            f"| {_per_server(row['peak_rss_mib'], 0)} |"
        )
    return "\n".join(lines)


def api_table(results: dict[str, Any]) -> str:
    if "small_pushes" not in results:
        return ""
    small, ranges, latest = (
        results["small_pushes"],
        results["ranged_downloads"],
        results["latest_in_range"],
    )
    rows = [
        (
            f"{small['pushes']} pushes of {small['package_kib']} KiB, {small['concurrency']} at a time",
            f"{small['pushes_per_s']} pushes/s; p50 {small['p50_ms']} ms, p95 {small['p95_ms']} ms, p99 {small['p99_ms']} ms",
        ),
        (
            f"{ranges['requests']} ranged GETs of 64 KiB, one at a time",
            f"{ranges['requests_per_s']} requests/s; p50 {ranges['p50_ms']} ms, p99 {ranges['p99_ms']} ms",
        ),
        (
            f"`/latest` with a NuGet range over {latest['versions']} versions, {latest['queries']} queries",
            f"p50 {latest['p50_ms']} ms, p95 {latest['p95_ms']} ms, p99 {latest['p99_ms']} ms",
        ),
    ]
    body = "\n".join(f"| {what} | {value} |" for what, value in rows)
    return (
        "\n\nDirect to package-feed (small packages, ranges, version resolution):\n\n"
        f"| measure | result |\n|---|---|\n{body}"
    )


def section(results: dict[str, Any]) -> str:
    m = results["machine"]
    start, end = markers(results["backend"])
    stamp = results.get("run_at") or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{start}\n## package-feed: large transfers ({results['backend']} storage)\n\n"
        f"Run {stamp}. Machine: {m['cpus']} CPU ({m['cpu']}, `nproc` {m['cpus']}), "
        f"{m['memory']} RAM, {m['os']}; Python {m['python']}, nginx {m['nginx']}; "
        f"load average when the run ended: {m['load']} (the machine was shared with other "
        f"work, so these are numbers under load: rerun `make bench-feed` on a quiet machine).\n\n"
        f"{METHOD.format(repetitions=results.get('repetitions', 3))}\n\nTargets (issue 5): {TARGETS}.\n\n"
        f"{transfer_table(results['transfers'])}{api_table(results)}\n{end}\n"
    )


def write_section(output: Path, results: dict[str, Any]) -> None:
    """Replace the package-feed section (or append it); other sections are kept."""
    text = output.read_text() if output.exists() else "# Benchmarks\n"
    new = section(results)
    start, end = markers(results["backend"])
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + new + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + new
    output.write_text(text)
    print(f"wrote {output}")
    name = markers(results["backend"])[0].removeprefix("<!-- bench-").removesuffix(":start -->")
    title = f"package-feed: large transfers ({results['backend']} storage)"
    write_report(name, title, comparisons(results), output.parent / "benchmarks")


FEED_ROUTES = ("package-feed", "api-gateway")
SHARE = 0.5
PEAK_MB = 150


def comparisons(results: dict[str, Any]) -> list[Comparison]:
    """Each feed route's median throughput against its reference (the issue 5 targets for
    the feed's own routes), and the feed's and gateway's peak memory against its budget."""
    reference = {
        (row["size_mib"], row["operation"]): row["mib_per_s_median"]
        for row in results["transfers"]
        if row["route"] == REFERENCES[row["operation"]]
    }
    rows = []
    for row in results["transfers"]:
        base = reference.get((row["size_mib"], row["operation"]))
        if row["route"] == REFERENCES[row["operation"]] or base is None:
            continue
        ratio = row["mib_per_s_median"] / base if base else 0.0
        ours = row["route"].startswith(FEED_ROUTES)
        rows.append(
            Comparison(
                f"{row['size_mib']} MiB {row['operation']}, {row['route']}",
                row["mib_per_s_median"],
                "MiB/s",
                REFERENCES[row["operation"]],
                base,
                f">= {SHARE} of reference" if ours else None,
                ratio >= SHARE if ours else None,
            )
        )
    peak = max(
        (
            mib
            for row in results["transfers"]
            for name, mib in row["peak_rss_mib"].items()
            if name in ("feed", "gateway")
        ),
        default=0.0,
    )
    mb = peak * 1024**2 / 1000**2
    rows.append(
        Comparison(
            "peak RSS, package-feed or api-gateway",
            round(mb, 1),
            "MB",
            target=f"< {PEAK_MB} MB",
            met=mb < PEAK_MB,
        )
    )
    return rows
