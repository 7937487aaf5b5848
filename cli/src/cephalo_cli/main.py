"""The `cephalo` command: assembles the groups and turns errors into one line and an exit code.

Exit codes: 0 success, 1 a failed or cancelled deployment or a refused request, 2 usage,
3 server unreachable or authentication failed (see `errors.py`).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from cephalo_cli import __version__
from cephalo_cli.commands import agent, octo, packages, releases, resources, tasks
from cephalo_cli.commands.login import login
from cephalo_cli.config import ConfigError
from cephalo_cli.context import OutputFormat
from cephalo_cli.context import current as ctx
from cephalo_cli.errors import CliError, ExitCode, UsageError
from cephalo_cli.schemas import SCHEMAS, schema

app = typer.Typer(
    help="Cephalo: release management and deployment automation, for people and build servers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    epilog="Configure once with `cephalo login`, or set CEPHALO_SERVER, CEPHALO_API_KEY and "
    "CEPHALO_SPACE. `--output json` prints one JSON document (see docs/ci.md).",
)
app.add_typer(packages.app, name="package")
app.add_typer(releases.app, name="release")
app.add_typer(tasks.app, name="task")
app.add_typer(resources.project_app, name="project")
app.add_typer(resources.environment_app, name="environment")
app.add_typer(resources.target_app, name="target")
app.add_typer(agent.app, name="agent")
app.command("login")(login)
octo.register(app)


@app.command(
    "schema",
    epilog="Examples:\n\ncephalo schema 'release deploy' > deploy.schema.json\n\ncephalo schema",
)
def schema_command(
    command: Annotated[
        str | None, typer.Argument(help="A command, e.g. 'release deploy'; none lists them.")
    ] = None,
) -> None:
    """Print the JSON Schema of a command's `--output json`."""
    if command is None:
        typer.echo("\n".join(SCHEMAS))
        return
    if command not in SCHEMAS:
        raise UsageError(f"no command {command!r}; one of: {', '.join(SCHEMAS)}")
    typer.echo(json.dumps(schema(command), indent=2))


GLOBAL_FLAGS = ("--server", "--space", "--api-key", "--output", "-o")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cephalo {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    server: Annotated[
        str | None, typer.Option("--server", help="Server URL [env CEPHALO_SERVER].")
    ] = None,
    space: Annotated[
        str | None, typer.Option("--space", help="Space id or slug [env CEPHALO_SPACE].")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="API key [env CEPHALO_API_KEY].")
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="text, or json for machines.")
    ] = OutputFormat.TEXT,
    cli_version: Annotated[
        bool,
        typer.Option(
            "--cli-version", callback=_show_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Global options; they may also be given after the command."""
    ctx.server, ctx.space, ctx.api_key, ctx.output = server, space, api_key, output


def hoist_globals(argv: list[str]) -> list[str]:
    """Move global options given after the command in front of it (`… deploy --output json`)."""
    front: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        flag, eq, _ = arg.partition("=")
        if flag in GLOBAL_FLAGS:
            front.append(arg)
            if not eq:
                value = next(args, None)
                if value is not None:
                    front.append(value)
        else:
            rest.append(arg)
    return front + rest


def normalize(argv: list[str]) -> list[str]:
    """octo flags translated for the alias commands, then global options hoisted."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in octo.ALIASES:
        argv = octo.translate(argv)
    return hoist_globals(argv)


def run(argv: list[str]) -> int:
    """Run one command line; the exit code (errors already printed on stderr)."""
    try:
        result = app(args=normalize(argv), prog_name="cephalo", standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.TyperException as error:
        show = getattr(error, "show", None)
        if show is not None:
            show()
        else:
            typer.echo(f"error: {error.format_message()}", err=True)
        return int(error.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        return ExitCode.FAILED
    except CliError as error:
        typer.echo(f"error: {error}", err=True)
        return error.code
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        return 130
    return result if isinstance(result, int) else ExitCode.SUCCESS


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
