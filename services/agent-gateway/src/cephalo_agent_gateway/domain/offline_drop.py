"""Offline drops: one step as a self-contained bundle for a host Cephalo cannot reach.

An offline drop target is a `Machine` of mode `offline-drop` (no agent, no certificate): a
step dispatched to it does not run; its bundle is built, kept in the task artifact store
and announced as the step's artifact, so it is downloaded from the task.

The bundle (a gzipped tar) holds what the SSH path pushes, so `deploy.sh` on the far side
installs the package exactly as an agent or SSH target would:

    deploy.sh                    runs the runner; CEPHALO_HOME picks the home (~/.cephalo)
    runner.pyz                   the step runner zipapp (Python 3.11+, nothing else needed)
    action.json                  the action with its non-sensitive variables only
    sensitive/variables.json     the sensitive values, mode 0600
    packages/<sha256>.pkg        the packages, checked against their hash before use

Packages carry no download URL: `deploy.sh` verifies each file's SHA-256 and places it in
the runner's package cache, which is where the runner looks first. Sensitive values reach
the runner through a 0600 action file it deletes once read, never argv or the environment.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence

from cephalo_agent_gateway.db.models import Machine
from cephalo_agent_gateway.db.repositories import OFFLINE_DROP, TARGET, Repositories
from cephalo_agent_gateway.domain.machines import EnvironmentDirectory, resolve_environments
from cephalo_agent_gateway.domain.ssh_targets import runner_bundle
from cephalo_agent_gateway.domain.step_actions import action_spec
from cephalo_agent_gateway.events import publish
from cephalo_common.contracts import PackageAcquisitionV1, StepDispatchV1
from cephalo_common.errors import Conflict
from cephalo_common.ids import uuid7

FetchPackage = Callable[[PackageAcquisitionV1], Awaitable[bytes]]

DEPLOY_SCRIPT = r"""#!/bin/sh
# Installs this offline drop with the Cephalo step runner (needs python3 3.11+).
# CEPHALO_HOME chooses where applications and the package cache live (default ~/.cephalo).
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
export CEPHALO_HOME="${CEPHALO_HOME:-$HOME/.cephalo}"
action=$(mktemp)
trap 'rm -f "$action"' EXIT
python3 - "$here" "$action" <<'PY'
import hashlib, json, os, pathlib, shutil, sys
here, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
cache = pathlib.Path(os.environ["CEPHALO_HOME"]) / "packages"
cache.mkdir(parents=True, exist_ok=True)
action = json.loads((here / "action.json").read_text())
for package in action.get("packages", []):
    source = here / "packages" / (package["sha256"] + ".pkg")
    if hashlib.sha256(source.read_bytes()).hexdigest() != package["sha256"]:
        sys.exit(f"{source} does not match its SHA-256; the drop is damaged")
    shutil.copyfile(source, cache / source.name)
secrets = here / "sensitive" / "variables.json"
if secrets.exists():
    action["variables"].update(json.loads(secrets.read_text()))
target.write_text(json.dumps(action))
PY
python3 -u "$here/runner.pyz" --action "$action" --consume
"""


class IncompleteDrop(ValueError):
    """A package of the step is missing from what was given to the bundle."""


def build_offline_drop(dispatch: StepDispatchV1, packages: Mapping[str, bytes]) -> bytes:
    """The bundle for `dispatch`; `packages` maps each package's SHA-256 to its bytes."""
    sensitive = set(dispatch.sensitive_variables)
    action = {
        **action_spec(dispatch),
        "variables": {k: v for k, v in dispatch.variables.items() if k not in sensitive},
    }
    for package in action["packages"]:
        sha256 = package.get("sha256")
        data = packages.get(sha256 or "")
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            raise IncompleteDrop(f"package {package['package_id']} {package['version']}")
        package["url"] = None
    secrets = {k: v for k, v in dispatch.variables.items() if k in sensitive}
    _, runner = runner_bundle()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        _add(archive, "deploy.sh", DEPLOY_SCRIPT.encode(), 0o755)
        _add(archive, "runner.pyz", runner, 0o644)
        _add(archive, "action.json", json.dumps(action, indent=1).encode(), 0o644)
        _add(archive, "sensitive/variables.json", json.dumps(secrets).encode(), 0o600)
        for package in action["packages"]:
            sha256 = package["sha256"]
            _add(archive, f"packages/{sha256}.pkg", packages[sha256], 0o644)
    return buffer.getvalue()


def _add(archive: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    archive.addfile(info, io.BytesIO(data))


async def register_offline_drop(
    repos: Repositories,
    directory: EnvironmentDirectory,
    space_id: uuid.UUID,
    name: str,
    environments: Sequence[str],
    roles: Sequence[str],
) -> Machine:
    if await repos.machines.find_by_name(space_id, name) is not None:
        raise Conflict(f"a machine named {name!r} already exists in this space")
    environment_ids = await resolve_environments(directory, space_id, environments)
    machine_id = uuid7()
    machine = await repos.machines.insert(
        Machine(
            id=machine_id,
            space_id=space_id,
            name=name,
            thumbprint=f"DROP-{machine_id.hex.upper()}",
            certificate_pem="",
            mode=OFFLINE_DROP,
            kind=TARGET,
            environment_ids=[str(id) for id in environment_ids],
            roles=list(dict.fromkeys(roles)),
            health_status="Healthy",
            health_message="Offline drop: steps become bundles to download from their task",
        )
    )
    publish.target_registered(repos.session, machine)
    return machine


async def drop_for(dispatch: StepDispatchV1, fetch: FetchPackage) -> bytes:
    """The bundle of `dispatch`, its packages fetched (and checked) through `fetch`."""
    packages: dict[str, bytes] = {}
    for package in dispatch.packages:
        if package.sha256 is None:
            raise IncompleteDrop(f"package {package.package_id} {package.version} has no SHA-256")
        packages[package.sha256] = await fetch(package)
    return build_offline_drop(dispatch, packages)
