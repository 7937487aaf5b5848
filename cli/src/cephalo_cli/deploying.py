"""Creating releases and deployments: shared by `release …`, `create-release` and `deploy-release`.

Every name (project, release, environments, targets) is resolved before anything is created,
so a typo never leaves half the environments deployed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cephalo_cli.client import CephaloClient
from cephalo_cli.context import Context
from cephalo_cli.errors import ApiError, CliError, DeploymentFailed, UsageError
from cephalo_cli.selection import PackageSpec, Reference, select
from cephalo_cli.waiting import Followed, failure_report, follow, render_line


@dataclass
class ReleaseRequest:
    project: str
    version: str | None = None
    channel: str | None = None
    packages: list[str] = field(default_factory=list)
    package_version: str | None = None
    release_notes: str = ""
    release_notes_file: Path | None = None
    ignore_existing: bool = False


@dataclass
class DeployRequest:
    project: str
    version: str
    environments: list[str]
    wait: bool = False
    timeout: float = 600
    cancel_on_timeout: bool = False
    guided_failure: bool | None = None
    skip: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)


def _notes(request: ReleaseRequest) -> str:
    if request.release_notes_file is None:
        return request.release_notes
    try:
        return request.release_notes_file.read_text()
    except OSError as error:
        raise UsageError(f"cannot read the release notes file: {error}") from None


def _newest(api: CephaloClient) -> Any:
    def newest(reference: Reference, version_range: str, tag: str) -> str:
        try:
            return str(api.latest_package(reference.package_id, version_range, tag)["version"])
        except ApiError as error:
            if error.status != 404:
                raise
        rule = f" matching {version_range or '*'}" + (f" tag {tag}" if tag else "")
        raise CliError(
            f'no version of package {reference.package_id}{rule} for step "{reference.action}"; '
            "push one or pass --package"
        )

    return newest


def create_release(ctx: Context, request: ReleaseRequest) -> tuple[dict[str, Any], bool]:
    """(release, created); an existing number with --ignore-existing gives the existing one."""
    specs = [PackageSpec.parse(text) for text in request.packages]
    notes = _notes(request)
    with ctx.client() as api:
        project = api.project(request.project)
        if request.ignore_existing and request.version:
            existing = api.find_release(project, request.version)
            if existing is not None:
                return existing, False
        channel = api.channel(project["id"], request.channel)
        steps = api.deployment_process(project["id"]).get("steps") or []
        packages = select(
            steps, specs, request.package_version, _newest(api), channel.get("rules") or []
        )
        body: dict[str, Any] = {"release_notes": notes, "packages": packages}
        if request.version:
            body["version"] = request.version
        if request.channel:
            body["channel"] = channel["id"]
        try:
            return api.create_release(project["id"], body), True
        except ApiError as error:
            if error.status == 409 and request.ignore_existing:
                found = api.find_release(project, request.version or "latest")
                if found is not None:
                    return found, False
            raise


def _variables(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--variable {pair!r}: expected NAME=VALUE")
        values[name.strip()] = value
    return values


def _body(api: CephaloClient, request: DeployRequest, release_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"release_id": release_id}
    if request.skip:
        body["skip_actions"] = request.skip
    if request.targets:
        body["specific_machine_ids"] = [api.machine(name)["id"] for name in request.targets]
    if request.guided_failure is not None:
        body["use_guided_failure"] = request.guided_failure
    variables = _variables(request.variables)
    if variables:
        body["prompted_variables"] = variables
    return body


def deploy(ctx: Context, request: DeployRequest, release: dict[str, Any] | None = None) -> None:
    """Queue one deployment per environment; with `wait`, follow each and fail on failure."""
    if not request.environments:
        raise UsageError("name at least one environment to deploy to (--to)")
    with ctx.client() as api:
        project = api.project(request.project)
        release = release or api.find_release(project, request.version)
        if release is None:
            raise CliError(
                f'release {request.version} of project "{project["name"]}" was not found'
            )
        environments = [api.environment(name) for name in request.environments]
        body = _body(api, request, str(release["id"]))
        deployments = [
            api.create_deployment({**body, "environment_id": environment["id"]})
            for environment in environments
        ]
        for deployment, environment in zip(deployments, environments, strict=True):
            ctx.say(
                f"Queued deployment {deployment['id']} of {release['version']} to {environment['name']}"
            )
        if not request.wait:
            ctx.emit(deployment_result(release, environments, deployments, []), "")
            return
        followed = [
            _follow(ctx, api, request, d, e) for d, e in zip(deployments, environments, strict=True)
        ]
        ctx.emit(deployment_result(release, environments, deployments, followed), "")
        failures = [failure_report(api, f) for f in followed if f.state != "Success"]
        if failures:
            raise DeploymentFailed("\n".join(failures))


def _follow(
    ctx: Context,
    api: CephaloClient,
    request: DeployRequest,
    deployment: dict[str, Any],
    environment: dict[str, Any],
) -> Followed:
    def show(line: dict[str, Any]) -> None:
        ctx.say(render_line(line))

    followed = follow(api, str(deployment["id"]), request.timeout, show)
    if followed.timed_out:
        ctx.warn(
            f"The deployment to {environment['name']} did not finish within {request.timeout:g} s"
        )
        if request.cancel_on_timeout and followed.task is not None:
            api.cancel_task(str(followed.task["id"]))
            ctx.warn(f"Cancelled task {followed.task['id']}")
    else:
        ctx.say(f"Deployment to {environment['name']}: {followed.state}")
    return followed


def deployment_result(
    release: dict[str, Any],
    environments: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
    followed: list[Followed],
) -> dict[str, Any]:
    """The JSON answer of every deploying command (schema `deployments`)."""
    rows = []
    for index, (deployment, environment) in enumerate(zip(deployments, environments, strict=True)):
        row: dict[str, Any] = {
            "deployment_id": str(deployment["id"]),
            "environment": environment["name"],
            "environment_id": str(environment["id"]),
            "task_id": str(deployment["task_id"]) if deployment.get("task_id") else None,
            "state": deployment["state"],
        }
        if followed:
            seen = followed[index]
            row["state"] = seen.state
            row["task_id"] = str(seen.task["id"]) if seen.task else row["task_id"]
            row["log"] = [_log_entry(line) for line in seen.log]
        rows.append(row)
    states = {row["state"] for row in rows}
    return {
        "release": {"id": str(release["id"]), "version": release["version"]},
        "waited": bool(followed),
        "state": "Success"
        if states == {"Success"}
        else ("Queued" if not followed else _worst(states)),
        "deployments": rows,
    }


def _worst(states: set[str]) -> str:
    for state in ("Failed", "TimedOut", "Canceled"):
        if state in states:
            return state
    return sorted(states)[0]


def _log_entry(line: dict[str, Any]) -> dict[str, Any]:
    return {key: line.get(key) for key in ("id", "time", "source", "machine", "step", "text")}


def echo_release(ctx: Context, release: dict[str, Any], created: bool) -> None:
    verb = "Created" if created else "Kept existing"
    ctx.emit(
        {"created": created, "release": release},
        f"{verb} release {release['version']} ({release['id']})"
        + "".join(
            f"\n  {p['action_name']}{':' + p['package_reference'] if p['package_reference'] else ''} {p['version']}"
            for p in release.get("selected_packages") or []
        ),
    )
