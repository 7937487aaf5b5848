"""`cephalo agent install-command`: the shell lines that install and register an agent.

The server's certificate thumbprint is fetched here and pinned with `configure --trust`, so
the agent never trusts whatever answers first. The API key is referenced as a variable,
never printed: the output is meant for tickets and chat.
"""

from __future__ import annotations

import shlex
from enum import StrEnum
from typing import Annotated

import typer

from cephalo_cli.context import current as ctx
from cephalo_cli.errors import UsageError

app = typer.Typer(help="Agents (Tentacle-like): how to install one.", no_args_is_help=True)


class Mode(StrEnum):
    POLLING = "polling"
    LISTENING = "listening"


def install_commands(
    server: str,
    space: str,
    thumbprint: str,
    environments: list[str],
    tags: list[str],
    worker_pools: list[str],
    mode: Mode,
    name: str | None,
) -> list[str]:
    register = ["python3", "-m", "cephalo_agent", "register", "--server", server, "--space", space]
    register += ["--mode", mode.value]
    for flag, values in (
        ("--environment", environments),
        ("--tag", tags),
        ("--worker-pool", worker_pools),
    ):
        for value in values:
            register += [flag, value]
    if name:
        register += ["--name", name]
    return [
        "python3 -m pip install cephalo-agent",
        "export CEPHALO_AGENT_HOME=/var/lib/cephalo-agent",
        'export CEPHALO_API_KEY="<an API key allowed to register machines>"',
        "python3 -m cephalo_agent new-certificate",
        f"python3 -m cephalo_agent configure --trust {shlex.quote(thumbprint)}",
        shlex.join(register),
        "python3 -m cephalo_agent run",
    ]


@app.command(
    "install-command",
    epilog="Examples:\n\n"
    "cephalo agent install-command --environment Production --tag web\n\n"
    "cephalo agent install-command --worker-pool Default --mode listening --name build-01",
)
def install_command(
    environment: Annotated[
        list[str], typer.Option("--environment", "-e", help="Environment; repeatable.")
    ] = [],  # noqa: B006
    tag: Annotated[list[str], typer.Option("--tag", help="Target tag (role); repeatable.")] = [],  # noqa: B006
    worker_pool: Annotated[
        list[str], typer.Option("--worker-pool", help="Register a worker in this pool instead.")
    ] = [],  # noqa: B006
    mode: Annotated[Mode, typer.Option("--mode", help="Who connects to whom.")] = Mode.POLLING,
    name: Annotated[
        str | None, typer.Option("--name", help="Machine name (default: hostname).")
    ] = None,
) -> None:
    """Print the commands that install an agent and register it with this server."""
    if not environment and not worker_pool:
        raise UsageError(
            "name an --environment (a deployment target) or a --worker-pool (a worker)"
        )
    config = ctx.config()
    with ctx.client() as api:
        for name in environment:
            api.environment(name)
        thumbprint = api.server_certificate()["thumbprint"]
    commands = install_commands(
        config.server,
        config.space,
        thumbprint,
        list(environment),
        list(tag),
        list(worker_pool),
        mode,
        name,
    )
    ctx.emit(
        {"server": config.server, "thumbprint": thumbprint, "commands": commands},
        "\n".join(commands),
    )
