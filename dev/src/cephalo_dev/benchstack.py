"""A whole stack of its own for a benchmark: embedded PostgreSQL and NATS on free loopback
ports, every service as a real process, the gateway's rate limits lifted.

A benchmark's client sends everything from one address, as fast as the machine allows; the
gateway's per-address limits would answer 429 (and did, on a quiet machine), so they go.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cephalo_dev.stack import Ports, ServiceSpec, Stack

UNLIMITED_RATES = {
    f"CEPHALO_GATEWAY_RATE_LIMITS__{key}": "1000000000"
    for key in ("PER_IP_PER_MINUTE", "PER_IP_BURST", "PER_USER_PER_MINUTE", "PER_USER_BURST")
}
READY_SECONDS = 600.0  # a shared machine under load starts five services slowly


class UnthrottledStack(Stack):
    """The stack with the gateway's rate limits lifted."""

    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        env = super().service_env(spec)
        if spec.name == "api-gateway":
            env.update(UNLIMITED_RATES)
        return env


def free_ports() -> Ports:
    return Ports(*(free_port() for _ in range(6)))


@contextlib.contextmanager
def embedded_servers(work: Path) -> Iterator[tuple[str, str]]:
    """A throw-away PostgreSQL and NATS under `work`: yields (database URL, NATS URL)."""
    postgres = EmbeddedPostgres(work / "postgres", free_port(), durable=False)
    nats_server = EmbeddedNats(work / "nats", free_port())
    database_url = postgres.start()
    try:
        nats_server.start()
        try:
            yield database_url, nats_server.url
        finally:
            nats_server.stop()
    finally:
        postgres.stop()


@contextlib.contextmanager
def bench_stack(prefix: str) -> Iterator[UnthrottledStack]:
    """Migrated, started and ready; everything stopped and removed on the way out."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        work = Path(scratch)
        with embedded_servers(work) as (database_url, nats_url):
            stack = UnthrottledStack(work / "stack", database_url, nats_url, free_ports())
            stack.migrate()
            stack.start_services()
            try:
                asyncio.run(stack.wait_ready(timeout=READY_SECONDS))
                yield stack
            finally:
                stack.stop()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes so far (/proc/<pid>/stat, fields 14-15); a
    process gone meanwhile counts nothing. Far steadier than wall time on a shared machine."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """The process's resident set now, in MiB (NaN once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
