"""`cephalo project|environment|target list|show`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from cephalo_cli.client import CephaloClient
from cephalo_cli.context import current as ctx

Ref = Annotated[str, typer.Argument(help="Id, slug or name.")]
Lister = Callable[[CephaloClient], list[dict[str, Any]]]
Getter = Callable[[CephaloClient, str], dict[str, Any]]


def resource_app(noun: str, plural: str, lister: Lister, getter: Getter) -> typer.Typer:
    """A `list` + `show` pair over one resource collection."""
    app = typer.Typer(help=f"{plural.capitalize()}.", no_args_is_help=True)

    @app.command(
        "list",
        help=f"Every {noun} in the space.",
        epilog=f"Examples:\n\ncephalo {noun} list --output json",
    )
    def list_() -> None:
        with ctx.client() as api:
            items = lister(api)
        ctx.emit({"items": items}, "\n".join(f"{item['name']:<40} {item['id']}" for item in items))

    @app.command(
        "show", help=f"One {noun}.", epilog=f'Examples:\n\ncephalo {noun} show "My {noun}"'
    )
    def show(ref: Ref) -> None:
        with ctx.client() as api:
            item = getter(api, ref)
        ctx.emit(item, "\n".join(f"{key}: {value}" for key, value in item.items()))

    return app


project_app = resource_app("project", "projects", CephaloClient.projects, CephaloClient.project)
environment_app = resource_app(
    "environment", "environments", CephaloClient.environments, CephaloClient.environment
)
target_app = resource_app(
    "target", "deployment targets", CephaloClient.machines, CephaloClient.machine
)
