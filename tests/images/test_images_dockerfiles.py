"""The Dockerfiles, checked statically (Docker does not run here): multi-stage, a pinned slim
base, a non-root user, the role entrypoint, no HEALTHCHECK (Kubernetes probes instead), and
each package a Dockerfile builds exists in the workspace."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {
    "services/api-gateway": ("cephalo_gateway", "api", {"8080"}),
    "services/release-service": ("cephalo_release", "api", {"8081"}),
    "services/deploy-orchestrator": ("cephalo_orchestrator", "api", {"8082"}),
    "services/package-feed": ("cephalo_feed", "api", {"8083"}),
    "services/agent-gateway": ("cephalo_agent_gateway", "api", {"8084", "10943"}),
    "agent": ("cephalo_agent", "run", set()),
}


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


@pytest.mark.parametrize("folder", sorted(IMAGES))
def test_each_image_is_multi_stage_pinned_and_non_root(folder: str) -> None:
    module, role, ports = IMAGES[folder]
    steps = instructions(ROOT / folder / "Dockerfile")
    bases = [args for op, args in steps if op == "FROM"]
    assert len(bases) >= 2
    for base in bases:
        image = base.split()[0]
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", image), image
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    assert any(op == "USER" for op, _ in steps[last_from:])
    assert ("ENTRYPOINT", f'["python", "-m", "{module}"]') in steps
    assert ("CMD", f'["{role}"]') in steps
    assert not any(op == "HEALTHCHECK" for op, _ in steps)
    exposed = {port for op, args in steps if op == "EXPOSE" for port in args.split()}
    assert exposed == ports
    if ports:  # a container's loopback is useless: listen on every interface
        env = " ".join(args for op, args in steps[last_from:] if op == "ENV")
        assert "_HOST=0.0.0.0" in env


@pytest.mark.parametrize("folder", sorted(IMAGES))
def test_each_image_builds_a_package_of_the_locked_workspace(folder: str) -> None:
    name = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]["name"]
    steps = instructions(ROOT / folder / "Dockerfile")
    assert any(op == "RUN" and f"--package {name}" in args for op, args in steps)
    assert any(op == "RUN" and "--frozen" in args for op, args in steps)
    locked = (ROOT / "uv.lock").read_text()
    assert f'name = "{name}"' in locked


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".cephalo"} <= ignored
