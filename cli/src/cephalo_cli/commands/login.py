"""`cephalo login`: check the server and key, then remember them in the config file."""

from __future__ import annotations

import sys

import typer

from cephalo_cli.config import save_file
from cephalo_cli.context import current as ctx
from cephalo_cli.errors import UsageError


def login() -> None:
    """Store the server, space and API key (0600 config file) after checking they work.

    Examples:

    cephalo --server https://cephalo.example --api-key API-XXXX login

    CEPHALO_API_KEY=API-XXXX cephalo --server https://cephalo.example --space ops login
    """
    config = ctx.config()
    if not config.api_key:
        if not sys.stdin.isatty():
            raise UsageError("pass --api-key or set CEPHALO_API_KEY")
        ctx.api_key = typer.prompt("API key", hide_input=True)
        config = ctx.config()
    with ctx.client() as api:
        space = api.call("GET", "")
    path = save_file(config)
    ctx.emit(
        {
            "server": config.server,
            "space": space["slug"],
            "space_id": space["id"],
            "config_path": str(path),
        },
        f"Logged in to {config.server} (space {space['name']}); saved to {path}",
    )
