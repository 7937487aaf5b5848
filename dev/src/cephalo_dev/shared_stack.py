"""One whole stack (five services as real processes) for every suite that needs one.

Starting the stack costs 35-70 s of CPU on a 2-core machine; the e2e, browser, CLI and
api-gateway suites used to start one each. They now share the session's `whole_stack`, and
the test run puts their tests last and together (see `shared_last`), so the stack never idles
while unrelated suites run. The tests that share it must not assume an empty stack: their
names are unique, or they run first (the browser journey, whose screenshots show the portal
as a new install sees it).

The settings are the union of what the suites asked of their own stacks: a short cancellation
grace period (the SIGTERM test), the SSH runner's remote base in the stack's state directory
(the SSH e2e test), and rate limits out of the way (the route matrix and fuzz send thousands of
requests from one address).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cephalo_common.embedded import free_port
from cephalo_dev.stack import Ports, ServiceSpec, Stack, started

FIXTURE = "whole_stack"
CANCEL_GRACE_SECONDS = 8.0
GENEROUS_LIMITS = {
    "PER_IP_PER_MINUTE": 100_000,
    "PER_IP_BURST": 100_000,
    "PER_USER_PER_MINUTE": 100_000,
    "PER_USER_BURST": 100_000,
}
FIRST_MARKER = "browser"  # a new install's portal: before the other suites fill the stack
LAST_MARKER = "fuzz"  # generated requests may change anything: after every other user


class SharedStack(Stack):
    """The dev stack with every sharing suite's test settings."""

    @property
    def ssh_remote_base(self) -> Path:
        return self.state_dir / "ssh-remote-home"

    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        env = super().service_env(spec)
        if spec.name == "deploy-orchestrator":
            env["CEPHALO_ORCHESTRATOR_CANCEL_GRACE_SECONDS"] = str(CANCEL_GRACE_SECONDS)
        if spec.name == "agent-gateway":
            self.ssh_remote_base.mkdir(parents=True, exist_ok=True)
            env["CEPHALO_AGENT_GATEWAY_SSH_REMOTE_BASE"] = str(self.ssh_remote_base)
        if spec.name == "api-gateway":
            for name, value in GENEROUS_LIMITS.items():
                env[f"CEPHALO_GATEWAY_RATE_LIMITS__{name}"] = str(value)
        return env


@pytest.fixture(scope="session")
def whole_stack(
    tmp_path_factory: pytest.TempPathFactory,
    new_database: Callable[[str], str],
    new_nats: Callable[[str], str],
) -> Iterator[SharedStack]:
    database_url, nats_url = new_database("whole_stack"), new_nats("whole_stack")
    ports = Ports(*(free_port() for _ in range(6)))
    stack = SharedStack(tmp_path_factory.mktemp("whole-stack"), database_url, nats_url, ports)
    with started(stack):
        yield stack


def uses_shared_stack(item: pytest.Item) -> bool:
    return FIXTURE in getattr(item, "fixturenames", ())


def shared_last(items: list[pytest.Item]) -> None:
    """Moves the shared stack's tests to the end, whole files together (module fixtures start
    once), the browser's first and the fuzz last; the rest keep their collected order."""
    sharing_files = {item.path for item in items if uses_shared_stack(item)}
    others = [item for item in items if item.path not in sharing_files]
    sharing = [item for item in items if item.path in sharing_files]

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker(FIRST_MARKER):
            return 0
        return 2 if item.get_closest_marker(LAST_MARKER) else 1

    items[:] = others + sorted(sharing, key=rank)
