"""CLI benchmark: the `cephalo` executable's peak memory while pushing a 1 GiB package.

Starts its own PostgreSQL and NATS (the embedded wheels) and every service as a real process
(`cephalo_dev.stack.Stack`), writes a 1 GiB zip package, and pushes it with the installed
`.venv/bin/cephalo package push` through the api-gateway, with and without the progress bar.
The CLI's peak resident set is the kernel's high-water mark for its address space
(`VmHWM` in /proc, read every 10 ms until it exits; `wait4`'s ru_maxrss would also count the
forking benchmark process's pages). Writes the `bench-cli` section of docs/benchmarks.md.

Run: `.venv/bin/python cli/bench/bench_cli.py [--size-mib 1024]` (`make bench-cli`).
Everything it starts is stopped and its temp dir deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cephalo_dev.benchreport import Comparison, write_report
from cephalo_dev.benchstack import bench_stack
from cephalo_dev.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
EXECUTABLE = Path(sys.executable).with_name("cephalo")
MIB = 1024 * 1024
LIMIT_MIB = 100
SECTION_START = "<!-- bench-cli:start -->"
SECTION_END = "<!-- bench-cli:end -->"


@dataclass
class Push:
    label: str
    seconds: float
    peak_rss: int
    exit_code: int


def write_package(path: Path, size: int) -> None:
    """A stored (uncompressed) zip of `size` bytes of random-looking data, written in blocks."""
    block = os.urandom(MIB)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive,
        archive.open("payload.bin", "w", force_zip64=True) as entry,
    ):
        for index in range(size // MIB):
            entry.write(index.to_bytes(8, "big") + block[8:])


def push(stack: Stack, path: Path, label: str, *flags: str) -> Push:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CEPHALO_")},
        "CEPHALO_SERVER": stack.gateway_url,
        "CEPHALO_API_KEY": stack.api_key,
    }
    argv = [str(EXECUTABLE), "package", "push", str(path), "--overwrite-mode"]
    argv += ["OverwriteExisting", *flags]
    log = path.with_suffix(".stderr")
    with log.open("wb") as stderr:
        started = time.monotonic()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        peak = 0
        while process.poll() is None:
            peak = max(peak, high_water_mark(process.pid))
            time.sleep(0.01)
        seconds = time.monotonic() - started
    if process.returncode != 0:
        print(f"{label}: exit {process.returncode}: {log.read_text()[-500:]}", file=sys.stderr)
    return Push(label, seconds, peak, process.returncode)


def high_water_mark(pid: int) -> int:
    """VmHWM: the peak resident set of the process's own (post-exec) memory, in bytes."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPU ({model}), {memory:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; load average when the "
        f"run ended: {load} (the machine is shared)"
    )


METHOD = """\
`cli/bench/bench_cli.py` (`make bench-cli`) starts its own PostgreSQL and NATS and every
service as a real process, then runs the installed `.venv/bin/cephalo package push` on a
zip package through the api-gateway (`--overwrite-mode OverwriteExisting`, so every run
stores the whole file). The CLI streams the file as the request body in 1 MiB chunks with a
`Content-Length`; it never holds the package in memory. Peak memory is the CLI process's
resident-set high-water mark as the kernel keeps it (`VmHWM`, read every 10 ms until the
process exits), interpreter and imports included. Throughput includes the gateway, the
feed's hashing and archive inspection and its disk, all on the same shared cores."""


def write_section(output: Path, size: int, results: list[Push]) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(
        f"| {r.label} | {r.peak_rss / MIB:.1f} MiB | {r.seconds:.1f} s | "
        f"{size / MIB / r.seconds:.0f} MiB/s | {'ok' if r.exit_code == 0 else f'exit {r.exit_code}'} |"
        for r in results
    )
    worst = max(r.peak_rss for r in results) / MIB
    verdict = "under" if worst < LIMIT_MIB else "OVER"
    section = (
        f"{SECTION_START}\n## CLI: pushing a {size / MIB / 1024:g} GiB package\n\n"
        f"Run {stamp}. Machine: {machine()}.\n\n{METHOD}\n\n"
        "| run | CLI peak RSS | time | throughput | result |\n|---|---|---|---|---|\n"
        f"{rows}\n\nPeak {worst:.1f} MiB: {verdict} the {LIMIT_MIB} MB budget (issue 10).\n"
        f"{SECTION_END}\n"
    )
    text = output.read_text() if output.exists() else "# Benchmarks\n"
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        tail = rest.split(SECTION_END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    output.write_text(text)
    print(f"wrote {output}")
    write_report(
        "cli",
        f"CLI: pushing a {size / MIB / 1024:g} GiB package",
        comparisons(size, results),
        output.parent / "benchmarks",
    )


def comparisons(size: int, results: list[Push]) -> list[Comparison]:
    """Peak memory against the budget, and the time and throughput of each push."""
    rows = [
        Comparison(
            "CLI peak RSS (any run)",
            round(max(r.peak_rss for r in results) / MIB, 1),
            "MiB",
            target=f"< {LIMIT_MIB} MiB",
            met=max(r.peak_rss for r in results) / MIB < LIMIT_MIB,
        )
    ]
    for r in results:
        rows.append(Comparison(f"{r.label}: time", round(r.seconds, 1), "s"))
        rows.append(Comparison(f"{r.label}: throughput", round(size / MIB / r.seconds), "MiB/s"))
    return rows


def bench(workdir: Path, size: int) -> list[Push]:
    with bench_stack("bench-cli-") as stack:
        package = workdir / "Bench.Big.1.0.0.zip"
        write_package(package, size)
        print(f"package: {package.stat().st_size / MIB:.0f} MiB", file=sys.stderr)
        results = [
            push(stack, package, "push, no progress bar", "--no-progress"),
            push(stack, package, "push, progress bar", "--progress"),
        ]
        for result in results:
            print(f"{result.label}: {result.peak_rss / MIB:.1f} MiB, {result.seconds:.1f} s")
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cephalo-bench-cli-"))
    workdir.chmod(0o755)
    try:
        results = bench(workdir, args.size_mib * MIB)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_section(args.output, args.size_mib * MIB, results)
    if any(r.exit_code != 0 for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
