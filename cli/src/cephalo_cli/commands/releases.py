"""`cephalo release create|deploy|promote|list`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cephalo_cli.context import current as ctx
from cephalo_cli.deploying import (
    DeployRequest,
    ReleaseRequest,
    create_release,
    deploy,
    echo_release,
)
from cephalo_cli.errors import CliError

app = typer.Typer(help="Releases: create, deploy and promote them.", no_args_is_help=True)

Project = Annotated[str, typer.Option("--project", "-p", help="Project id, slug or name.")]
To = Annotated[
    list[str], typer.Option("--to", "-t", help="Environment (id, slug or name); repeatable.")
]
Wait = Annotated[bool, typer.Option("--wait", help="Wait for the deployment, streaming its log.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait (with --wait).")]
CancelOnTimeout = Annotated[
    bool, typer.Option("--cancel-on-timeout", help="Cancel the task when --timeout passes.")
]
GuidedFailure = Annotated[
    bool | None,
    typer.Option("--guided-failure/--no-guided-failure", help="Override guided failure."),
]
Skip = Annotated[list[str], typer.Option("--skip", help="Step to skip (name or id); repeatable.")]
Target = Annotated[
    list[str], typer.Option("--target", help="Deploy only to this target (name or id); repeatable.")
]
Variable = Annotated[
    list[str], typer.Option("--variable", "-v", help="Prompted variable NAME=VALUE; repeatable.")
]


@app.command(
    "create",
    epilog="Examples:\n\n"
    "cephalo release create --project HelloWorld --version 1.0.3\n\n"
    "cephalo release create -p HelloWorld --package Deploy:1.2.0 --package Acme.Web:1.2.1\n\n"
    "cephalo release create -p HelloWorld --channel Hotfix --package-version 1.2.0 --ignore-existing",
)
def release_create(
    project: Project,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Release number; default: the project's template."),
    ] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", help="Channel; default channel if unset.")
    ] = None,
    package: Annotated[
        list[str],
        typer.Option(
            "--package",
            help="STEP:VERSION, PACKAGEID:VERSION or STEP:REFERENCE:VERSION; repeatable.",
        ),
    ] = [],  # noqa: B006
    package_version: Annotated[
        str | None, typer.Option("--package-version", help="Version for every package not named.")
    ] = None,
    release_notes: Annotated[str, typer.Option("--release-notes", help="Markdown.")] = "",
    release_notes_file: Annotated[
        Path | None, typer.Option("--release-notes-file", help="Read the notes from this file.")
    ] = None,
    ignore_existing: Annotated[
        bool, typer.Option("--ignore-existing", help="Succeed if the version already exists.")
    ] = False,
) -> None:
    """Create a release. Packages not named get --package-version, else the newest version
    the channel's rules allow."""
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
    echo_release(ctx, release, created)


@app.command(
    "deploy",
    epilog="Examples:\n\n"
    "cephalo release deploy --project HelloWorld --version 1.0.3 --to Staging --wait\n\n"
    "cephalo release deploy -p HelloWorld --version latest --to Test --to Staging "
    "--wait --timeout 900 --cancel-on-timeout\n\n"
    "cephalo release deploy -p HelloWorld --version 1.0.3 --to Production --skip Smoke --target web-01",
)
def release_deploy(
    project: Project,
    to: To,
    version: Annotated[
        str, typer.Option("--version", help="A release number, or 'latest'.")
    ] = "latest",
    wait: Wait = False,
    timeout: Timeout = 600,
    cancel_on_timeout: CancelOnTimeout = False,
    guided_failure: GuidedFailure = None,
    skip: Skip = [],  # noqa: B006
    target: Target = [],  # noqa: B006
    variable: Variable = [],  # noqa: B006
) -> None:
    """Deploy a release to one or more environments. With --wait the log streams and a
    failed or cancelled deployment exits 1 with the failed step's log on stderr."""
    deploy(
        ctx,
        DeployRequest(
            project,
            version,
            list(to),
            wait,
            timeout,
            cancel_on_timeout,
            guided_failure,
            list(skip),
            list(target),
            list(variable),
        ),
    )


@app.command(
    "promote",
    epilog="Examples:\n\n"
    "cephalo release promote --project HelloWorld --from Staging --to Production --wait",
)
def release_promote(
    project: Project,
    from_: Annotated[str, typer.Option("--from", help="The environment to promote from.")],
    to: To,
    wait: Wait = False,
    timeout: Timeout = 600,
    cancel_on_timeout: CancelOnTimeout = False,
    guided_failure: GuidedFailure = None,
    skip: Skip = [],  # noqa: B006
    target: Target = [],  # noqa: B006
    variable: Variable = [],  # noqa: B006
) -> None:
    """Deploy the release last deployed successfully to --from onwards to --to."""
    with ctx.client() as api:
        found = api.project(project)
        source = api.environment(from_)
        last = api.last_successful_deployment(found["id"], source["id"])
        if last is None:
            raise CliError(f'no release of "{found["name"]}" has succeeded in {source["name"]}')
        release = api.release(str(last["release_id"]))
    deploy(
        ctx,
        DeployRequest(
            project,
            release["version"],
            list(to),
            wait,
            timeout,
            cancel_on_timeout,
            guided_failure,
            list(skip),
            list(target),
            list(variable),
        ),
        release,
    )


@app.command("list", epilog="Examples:\n\ncephalo release list --project HelloWorld --output json")
def release_list(
    project: Project,
    take: Annotated[int, typer.Option("--take", help="How many, newest first.")] = 30,
) -> None:
    """The newest releases of a project."""
    with ctx.client() as api:
        found = api.project(project)
        releases = api.releases(found["id"], take)
    ctx.emit(
        {"items": releases},
        "\n".join(f"{r['version']:<24} {r['created_at']}  {r['id']}" for r in releases),
    )
