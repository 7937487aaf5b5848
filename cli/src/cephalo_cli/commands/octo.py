"""`push`, `create-release`, `deploy-release`: the `octo` command lines, unchanged.

Octopus's CLI matches flags case-insensitively (`--deployTo`, `--deployto`) and takes
`--flag=value` or `--flag value`; `translate` rewrites those flags to this module's
options before click parses them. Flags that change nothing here (logging, TLS, proxies)
are accepted and ignored; flags asking for something Cephalo cannot do are refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from cephalo_cli.commands.packages import OverwriteMode, push_files
from cephalo_cli.context import current as ctx
from cephalo_cli.deploying import (
    DeployRequest,
    ReleaseRequest,
    create_release,
    deploy,
    echo_release,
)
from cephalo_cli.errors import UsageError

ALIASES = ("push", "create-release", "deploy-release")

RENAMES = {
    "--apikey": "--api-key",
    "--releasenumber": "--version",
    "--deployto": "--deploy-to",
    "--waitfordeployment": "--wait-for-deployment",
    "--deploymenttimeout": "--deployment-timeout",
    "--cancelontimeout": "--cancel-on-timeout",
    "--deploymentchecksleepcycle": "--deployment-check-sleep-cycle",
    "--guidedfailure": "--guided-failure",
    "--specificmachines": "--specific-machines",
    "--packageversion": "--package-version",
    "--defaultpackageversion": "--package-version",
    "--releasenotes": "--release-notes",
    "--releasenotesfile": "--release-notes-file",
    "--ignoreexisting": "--ignore-existing",
    "--replace-existing": "--replace-existing",
    "--overwrite-mode": "--overwrite-mode",
}
"""Octo flag (lower case) → this CLI's option; flags already spelled alike map to themselves."""

IGNORED_SWITCHES = {
    "--debug",
    "--ignoresslerrors",
    "--enableservicemessages",
    "--noRawLog".lower(),
    "--ignorechannelrules",
    "--packageprerelease",
    "--force",
    "--use-delta-compression",
}
IGNORED_VALUES = {
    "--loglevel",
    "--timeout",
    "--proxy",
    "--proxyuser",
    "--proxypass",
    "--rawlogfile",
    "--gitref",
    "--gitcommit",
    "--configfile",
}
REFUSED = {
    "--tenant": "tenanted deployments are not supported",
    "--tenanttag": "tenanted deployments are not supported",
    "--packagesfolder": "name package versions with --package or --packageVersion",
    "--deployat": "scheduled deployments are not supported by the CLI yet",
    "--nodeployafter": "scheduled deployments are not supported by the CLI yet",
    "--excludemachines": "excluding machines is not supported by the CLI yet",
    "--whatif": "--whatIf is not supported",
    "--user": "use an API key (--apiKey)",
    "--pass": "use an API key (--apiKey)",
}


def translate(argv: list[str]) -> list[str]:
    """Rewrite octo flags in the arguments of an alias command to this CLI's spelling."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if not arg.startswith("--"):
            out.append(arg)
            continue
        flag, eq, value = arg.partition("=")
        key = flag.lower()
        if key in REFUSED:
            raise UsageError(f"{flag}: {REFUSED[key]}")
        if key in IGNORED_SWITCHES:
            continue
        if key in IGNORED_VALUES:
            if not eq:
                next(args, None)
            continue
        canonical = RENAMES.get(key, key)
        out.append(f"{canonical}={value}" if eq else canonical)
    return out


def timespan(text: str) -> float:
    """Seconds from `600`, `00:10:00` or `1.02:00:00` (.NET TimeSpan, as octo takes it)."""
    match = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+)(?::(\d+(?:\.\d+)?))?", text.strip())
    if match:
        days, hours, minutes, seconds = match.groups()
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds or 0)
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a duration (seconds or hh:mm:ss)") from None


def boolean(text: str | None) -> bool | None:
    if text is None or text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise UsageError(f"{text!r} is not True or False")


def split_names(values: list[str]) -> list[str]:
    """octo takes `--specificMachines a,b` as well as repeated flags."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _apply_octopus_env() -> None:
    ctx.server = ctx.server or os.environ.get("OCTOPUS_CLI_SERVER")
    ctx.api_key = ctx.api_key or os.environ.get("OCTOPUS_CLI_API_KEY")
    if ctx.space and ctx.space.lower() == "spaces-1":
        ctx.space = "default"


Strings = list[str]
Project = Annotated[str, typer.Option("--project", help="Project name.")]
DeployTo = Annotated[Strings, typer.Option("--deploy-to", help="Environment; repeatable.")]
Progress = Annotated[bool, typer.Option("--progress", help="Wait, streaming the log.")]
WaitFor = Annotated[bool, typer.Option("--wait-for-deployment", help="Wait for the deployment.")]
DeploymentTimeout = Annotated[
    str, typer.Option("--deployment-timeout", help="hh:mm:ss or seconds (default 00:10:00).")
]
CancelOnTimeout = Annotated[bool, typer.Option("--cancel-on-timeout")]
SleepCycle = Annotated[str, typer.Option("--deployment-check-sleep-cycle", hidden=True)]
GuidedFailure = Annotated[str | None, typer.Option("--guided-failure", help="True or False.")]
Skip = Annotated[Strings, typer.Option("--skip", help="Step to skip; repeatable.")]
Machines = Annotated[Strings, typer.Option("--specific-machines", help="Targets, comma-separated.")]
Variable = Annotated[Strings, typer.Option("--variable", help="Label:Value; repeatable.")]


def _deploy_request(
    project: str,
    version: str,
    deploy_to: list[str],
    wait: bool,
    timeout: str,
    cancel_on_timeout: bool,
    guided_failure: str | None,
    skip: list[str],
    machines: list[str],
    variables: list[str],
) -> DeployRequest:
    return DeployRequest(
        project,
        version,
        list(deploy_to),
        wait,
        timespan(timeout),
        cancel_on_timeout,
        boolean(guided_failure),
        list(skip),
        split_names(machines),
        list(variables),
    )


def register(app: typer.Typer) -> None:
    """Add the three aliases to the top-level app."""
    app.command(
        "push",
        epilog="Example:\n\nocto-style: cephalo push --package Acme.Web.1.0.0.zip "
        "--server http://cephalo:8080 --apiKey API-XXXX --overwrite-mode OverwriteExisting",
    )(push)
    app.command(
        "create-release",
        epilog="Example:\n\nocto-style: cephalo create-release --project HelloWorld --version 1.0.3 "
        "--server http://cephalo:8080 --apiKey API-XXXX",
    )(create_release_alias)
    app.command(
        "deploy-release",
        epilog="Example:\n\nocto-style: cephalo deploy-release --project HelloWorld "
        "--releaseNumber 1.0.3 --deployTo Production --progress --server http://cephalo:8080 "
        "--apiKey API-XXXX",
    )(deploy_release)


def push(
    package: Annotated[Strings, typer.Option("--package", help="Package file; repeatable.")],
    overwrite_mode: Annotated[
        OverwriteMode, typer.Option("--overwrite-mode")
    ] = OverwriteMode.FAIL_IF_EXISTS,
    replace_existing: Annotated[bool, typer.Option("--replace-existing", help="Legacy.")] = False,
) -> None:
    """octo push: upload package files to the built-in feed."""
    _apply_octopus_env()
    mode = OverwriteMode.OVERWRITE_EXISTING if replace_existing else overwrite_mode
    results = push_files([Path(p) for p in package], mode, None)
    ctx.emit(
        {"packages": results},
        "\n".join(f"Pushed {r['package_id']} {r['version']}" for r in results),
    )


def create_release_alias(
    project: Project,
    version: Annotated[str | None, typer.Option("--version")] = None,
    channel: Annotated[str | None, typer.Option("--channel")] = None,
    package: Annotated[Strings, typer.Option("--package")] = [],  # noqa: B006
    package_version: Annotated[str | None, typer.Option("--package-version")] = None,
    release_notes: Annotated[str, typer.Option("--release-notes")] = "",
    release_notes_file: Annotated[Path | None, typer.Option("--release-notes-file")] = None,
    ignore_existing: Annotated[bool, typer.Option("--ignore-existing")] = False,
    deploy_to: DeployTo = [],  # noqa: B006
    progress: Progress = False,
    wait_for_deployment: WaitFor = False,
    deployment_timeout: DeploymentTimeout = "00:10:00",
    cancel_on_timeout: CancelOnTimeout = False,
    deployment_check_sleep_cycle: SleepCycle = "00:00:10",
    guided_failure: GuidedFailure = None,
    skip: Skip = [],  # noqa: B006
    specific_machines: Machines = [],  # noqa: B006
    variable: Variable = [],  # noqa: B006
) -> None:
    """octo create-release: create a release, and deploy it with --deployTo."""
    _apply_octopus_env()
    request = ReleaseRequest(
        project,
        version,
        channel,
        list(package),
        package_version,
        release_notes,
        release_notes_file,
        ignore_existing,
    )
    release, created = create_release(ctx, request)
    if not deploy_to:
        echo_release(ctx, release, created)
        return
    ctx.say(f"{'Created' if created else 'Kept existing'} release {release['version']}")
    deploy(
        ctx,
        _deploy_request(
            project,
            release["version"],
            deploy_to,
            progress or wait_for_deployment,
            deployment_timeout,
            cancel_on_timeout,
            guided_failure,
            skip,
            specific_machines,
            variable,
        ),
        release,
    )


def deploy_release(
    project: Project,
    deploy_to: DeployTo,
    version: Annotated[str, typer.Option("--version", help="Release number or 'latest'.")],
    channel: Annotated[str | None, typer.Option("--channel", hidden=True)] = None,
    progress: Progress = False,
    wait_for_deployment: WaitFor = False,
    deployment_timeout: DeploymentTimeout = "00:10:00",
    cancel_on_timeout: CancelOnTimeout = False,
    deployment_check_sleep_cycle: SleepCycle = "00:00:10",
    guided_failure: GuidedFailure = None,
    skip: Skip = [],  # noqa: B006
    specific_machines: Machines = [],  # noqa: B006
    variable: Variable = [],  # noqa: B006
) -> None:
    """octo deploy-release: deploy an existing release (--releaseNumber or --version)."""
    _apply_octopus_env()
    deploy(
        ctx,
        _deploy_request(
            project,
            version,
            deploy_to,
            progress or wait_for_deployment,
            deployment_timeout,
            cancel_on_timeout,
            guided_failure,
            skip,
            specific_machines,
            variable,
        ),
    )
