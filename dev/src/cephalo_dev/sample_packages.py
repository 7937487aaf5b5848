"""The sample package the end-to-end suites deploy to every kind of target.

One zip with a JSON config and PreDeploy/Deploy/PostDeploy/DeployFailed scripts, so the agent and
SSH suites prove the same conventions on the same bytes.
"""

from __future__ import annotations

import io
import json
import zipfile

from cephalo_dev import demo


def conventions_package(version: str, *, deploy_exit: int = 0) -> bytes:
    """The zip: Deploy sets the `AppVersion` output variable, publishes `report.txt` as an
    artifact and exits with `deploy_exit`."""
    config = {"Logging": {"LogLevel": {"Default": "Warning"}}, "Port": 80, "Name": "shop"}
    scripts = {
        "PreDeploy.sh": 'echo "predeploy of $CEPHALO_VAR_OCTOPUS_ENVIRONMENT_NAME"\n',
        "Deploy.sh": (
            'echo "deploy running in $(pwd)"\n'
            'set_cephalovariable "AppVersion" "$(cat version.txt)"\n'
            'echo "report of $(cat version.txt)" > report.txt\n'
            "new_cephaloartifact report.txt\n"
            f"exit {deploy_exit}\n"
        ),
        "PostDeploy.sh": 'echo "postdeploy done"\n',
        "DeployFailed.sh": 'echo "deployfailed cleanup"\n',
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appsettings.json", json.dumps(config, indent=2))
        archive.writestr("version.txt", version)
        for name, body in scripts.items():
            archive.writestr(name, body)
    return buffer.getvalue()


async def push(api: demo.Api, package_id: str, version: str, content: bytes) -> None:
    """Push through the Octopus build-server endpoint, as a CI script would."""
    response = await api.client.post(
        f"{api.base}/packages/raw",
        params={"filename": f"{package_id}.{version}.zip"},
        content=content,
    )
    if response.status_code != 201:
        raise AssertionError(f"push of {package_id} {version}: {response.text}")
