"""The `cephalo` command. Exit codes: 0 success, 1 failed deployment, 2 usage, 3 server/auth."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from cephalo_cli.client import ApiError, CephaloClient, Unreachable

app = typer.Typer(
    help="Cephalo: release management and deployment automation.", no_args_is_help=True
)
environment_app = typer.Typer(help="Environments.", no_args_is_help=True)
project_app = typer.Typer(help="Projects.", no_args_is_help=True)
release_app = typer.Typer(help="Releases and deployments.", no_args_is_help=True)
task_app = typer.Typer(help="Server tasks.", no_args_is_help=True)
app.add_typer(environment_app, name="environment")
app.add_typer(project_app, name="project")
app.add_typer(release_app, name="release")
app.add_typer(task_app, name="task")

state: dict[str, Any] = {}


@app.callback()
def options(
    server: Annotated[str, typer.Option(envvar="CEPHALO_SERVER")] = "http://127.0.0.1:8080",
    space: Annotated[str, typer.Option(envvar="CEPHALO_SPACE")] = "default",
    api_key: Annotated[str | None, typer.Option(envvar="CEPHALO_API_KEY")] = None,
    output: Annotated[str, typer.Option(help="text or json")] = "text",
) -> None:
    state.update(server=server, space=space, api_key=api_key, json=output == "json")


@contextmanager
def client() -> Iterator[CephaloClient]:
    api = CephaloClient(state["server"], state["space"], state["api_key"])
    try:
        yield api
    except Unreachable as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(3) from error
    except ApiError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(3 if error.status in (401, 403) else 1) from error
    finally:
        api.close()


def emit(data: Any, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if state["json"] else text)


@environment_app.command("list")
def environment_list() -> None:
    with client() as api:
        items = api.call("GET", "/environments")
        items = items["items"] if isinstance(items, dict) else items
    emit(items, "\n".join(item["name"] for item in items))


@project_app.command("list")
def project_list() -> None:
    with client() as api:
        items = api.call("GET", "/projects")
        items = items["items"] if isinstance(items, dict) else items
    emit(items, "\n".join(item["name"] for item in items))


@release_app.command("create")
def release_create(
    project: Annotated[str, typer.Option()],
    version: Annotated[str, typer.Option()],
    release_notes: Annotated[str, typer.Option()] = "",
) -> None:
    with client() as api:
        release = api.call(
            "POST",
            f"/projects/{project}/releases",
            json={"version": version, "release_notes": release_notes},
        )
    emit(release, f"Created release {release['version']} ({release['id']})")


@release_app.command("deploy")
def release_deploy(
    project: Annotated[str, typer.Option()],
    version: Annotated[str, typer.Option(help="A version, or 'latest'.")],
    to: Annotated[str, typer.Option(help="The environment (name or id).")],
    wait: Annotated[bool, typer.Option(help="Wait and print the task log.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 600,
) -> None:
    with client() as api:
        deployment = api.deploy(project, version, to)
        if not wait:
            emit(deployment, f"Queued deployment {deployment['id']}")
            return
        task = api.wait_for_task(deployment["id"], timeout)
        log = api.task_log(task["id"])
    emit({"deployment": deployment, "task": task, "log": log}, _render(task, log))
    if task["state"] != "Success":
        raise typer.Exit(1)


@task_app.command("log")
def task_log(task_id: str) -> None:
    with client() as api:
        log = api.task_log(task_id)
    emit(log, "\n".join(line["text"] for line in log))


def _render(task: dict[str, Any], log: list[dict[str, Any]]) -> str:
    lines = [f"{(line.get('machine') or 'server'):<16} {line['text']}" for line in log]
    return "\n".join([*lines, f"Task {task['id']}: {task['state']}"])


def main() -> None:
    try:
        app()
    except TimeoutError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
