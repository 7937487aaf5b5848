"""Offline drops: the bundle of a package step, copied to another directory and run with
its `deploy.sh` (real sh, real python3, the real runner zipapp), installs the package with
the same result as the runner does for an agent or SSH target fetching it from the feed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest

from cephalo_agent_gateway.domain.offline_drop import IncompleteDrop, build_offline_drop
from cephalo_agent_gateway.domain.step_actions import action_spec
from cephalo_agent_gateway.testing.harness import RunningGateway, Space, unique
from cephalo_common.contracts import PackageAcquisitionV1, StepDispatchV1

SECRET = "drop-Pa55-word"


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appsettings.json", json.dumps({"Db": {"Password": "old"}, "Port": 80}))
        archive.writestr(
            "PreDeploy.sh", 'echo "predeploy of $CEPHALO_VAR_OCTOPUS_ENVIRONMENT_NAME"\n'
        )
        archive.writestr(
            "Deploy.sh",
            'echo "deploying $(basename "$PWD") with $(get_cephalovariable Db:Password)"\n'
            "echo built > built.txt\nset_cephalovariable Deployed yes\n",
        )
        archive.writestr("PostDeploy.sh", 'echo "postdeploy done"\n')
    return buffer.getvalue()


def dispatch_for(data: bytes, url: str) -> StepDispatchV1:
    return StepDispatchV1(
        ticket="drop-1",
        task_id="task-1",
        step_run_id="run-1",
        machine_id="machine-1",
        script_body="",
        action_type="cephalo.deploy-package",
        action_properties={"Octopus.Action.Package.JsonConfigurationVariablesTargets": "*.json"},
        packages=[
            PackageAcquisitionV1(
                package_id="Shop",
                version="1.2.3",
                url=url,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
        ],
        variables={"Octopus.Environment.Name": "Staging", "Db:Password": SECRET, "Port": "8080"},
        sensitive_variables=["Db:Password"],
    )


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def test_a_drop_copied_elsewhere_installs_like_the_runner_does(
    tmp_path: Path, package_server: tuple[str, Path]
) -> None:
    data = package()
    base_url, served = package_server
    (served / "shop.zip").write_bytes(data)
    dispatch = dispatch_for(data, f"{base_url}/shop.zip")
    bundle = build_offline_drop(dispatch, {hashlib.sha256(data).hexdigest(): data})

    with tarfile.open(fileobj=io.BytesIO(bundle)) as archive:
        modes = {member.name: member.mode for member in archive.getmembers()}
        action_json = archive.extractfile("action.json").read()  # type: ignore[union-attr]
    assert modes["sensitive/variables.json"] == 0o600 and modes["deploy.sh"] == 0o755
    assert SECRET.encode() not in action_json
    assert b"shop.zip" not in action_json, "the drop never downloads"
    copied = tmp_path / "elsewhere"
    with tarfile.open(fileobj=io.BytesIO(bundle)) as archive:
        archive.extractall(copied, filter="data")
    assert (copied / "sensitive" / "variables.json").stat().st_mode & 0o077 == 0

    drop_home = tmp_path / "drop-home"
    env = {**os.environ, "CEPHALO_HOME": str(drop_home)}
    dropped = subprocess.run(
        ["sh", str(copied / "deploy.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert dropped.returncode == 0, (dropped.stdout, dropped.stderr)
    assert "predeploy of Staging" in dropped.stdout
    assert "deploying 1.2.3 with ********" in dropped.stdout
    assert "postdeploy done" in dropped.stdout
    assert SECRET not in dropped.stdout + dropped.stderr

    runner_home = tmp_path / "runner-home"
    action_file = tmp_path / "action.json"
    action_file.write_text(
        json.dumps(
            {**action_spec(dispatch), "variables": dispatch.variables, "home": str(runner_home)}
        )
    )
    direct = subprocess.run(
        [sys.executable, "-m", "cephalo_agent.steprunner", "--action", str(action_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert direct.returncode == 0, (direct.stdout, direct.stderr)

    [installed] = (drop_home / "apps").glob("*/Shop/1.2.3")
    [reference] = (runner_home / "apps").glob("*/Shop/1.2.3")
    assert tree(installed) == tree(reference)
    settings = json.loads((installed / "appsettings.json").read_text())
    assert settings == {"Db": {"Password": SECRET}, "Port": 8080}
    assert (installed / "built.txt").read_text() == "built\n"


def test_a_drop_needs_every_package_with_its_bytes() -> None:
    data = package()
    dispatch = dispatch_for(data, "http://127.0.0.1:9/never")
    with pytest.raises(IncompleteDrop, match=r"Shop 1\.2\.3"):
        build_offline_drop(dispatch, {})
    with pytest.raises(IncompleteDrop):
        build_offline_drop(dispatch, {hashlib.sha256(data).hexdigest(): b"other bytes"})


def test_a_failing_deploy_script_fails_the_drop(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Deploy.sh", "echo broken; exit 5\n")
        archive.writestr("DeployFailed.sh", 'echo "deployfailed cleanup"\n')
    data = buffer.getvalue()
    bundle = build_offline_drop(
        dispatch_for(data, "http://127.0.0.1:9/never"), {hashlib.sha256(data).hexdigest(): data}
    )
    copied = tmp_path / "drop"
    with tarfile.open(fileobj=io.BytesIO(bundle)) as archive:
        archive.extractall(copied, filter="data")
    env = {**os.environ, "CEPHALO_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        ["sh", str(copied / "deploy.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "deployfailed cleanup" in result.stdout


async def test_offline_drop_targets_are_registered_checked_and_refused_clearly(
    gateway: RunningGateway, space: Space
) -> None:
    url = f"/api/v1/spaces/{space.id}/machines/offline-drop"
    body = {"name": unique("drop"), "environments": ["Production"], "roles": ["web"]}
    created = await gateway.client.post(url, json=body)
    assert created.status_code == 201, created.text
    machine = created.json()
    assert (machine["mode"], machine["roles"]) == ("offline-drop", ["web"])
    duplicate = await gateway.client.post(url, json={**body, "name": body["name"].upper()})
    assert duplicate.status_code == 409, duplicate.text
    unknown = await gateway.client.post(url, json={**body, "name": "x", "environments": ["Mars"]})
    assert unknown.status_code == 422 and "Mars" in unknown.text
    empty = await gateway.client.post(url, json={**body, "name": "y", "environments": []})
    assert empty.status_code == 422
    elsewhere = await gateway.client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/machines/offline-drop", json={**body, "name": "z"}
    )
    assert elsewhere.status_code == 404, elsewhere.text
    health = await gateway.client.post(
        f"/api/v1/spaces/{space.id}/machines/{machine['id']}/health-checks"
    )
    assert health.status_code == 200 and health.json()["status"] == "Healthy", health.text
