"""`cephalo package push|list|versions`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cephalo_cli.client import CephaloClient
from cephalo_cli.context import current as ctx
from cephalo_cli.errors import UsageError

app = typer.Typer(help="Packages in the built-in feed.", no_args_is_help=True)


class OverwriteMode(StrEnum):
    FAIL_IF_EXISTS = "FailIfExists"
    OVERWRITE_EXISTING = "OverwriteExisting"
    IGNORE_IF_EXISTS = "IgnoreIfExists"


Mode = Annotated[
    OverwriteMode,
    typer.Option("--overwrite-mode", help="What to do when the version already exists."),
]
Progressbar = Annotated[
    bool | None,
    typer.Option("--progress/--no-progress", help="Show a progress bar (default: on a terminal)."),
]


def progress_bar(enabled: bool | None) -> Progress:
    """On stderr, so `--output json` keeps stdout clean."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=ctx.err,
        disable=enabled is False or (enabled is None and not ctx.err.is_terminal),
    )


def push_files(
    files: list[Path], mode: OverwriteMode, progress: bool | None
) -> list[dict[str, Any]]:
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    results = []
    with ctx.client() as api, progress_bar(progress) as bar:
        for path in files:
            results.append(_push_one(api, bar, path, mode))
    return results


def _push_one(api: CephaloClient, bar: Progress, path: Path, mode: OverwriteMode) -> dict[str, Any]:
    task: TaskID = bar.add_task(path.name, total=path.stat().st_size)
    package, stored = api.push_package(path, mode.value, lambda n: bar.advance(task, n))
    return {
        "file": str(path),
        "package_id": package["package_id"],
        "version": package["version"],
        "size_bytes": package["size_bytes"],
        "sha256": package["sha256"],
        "stored": stored,
    }


@app.command(
    "push",
    epilog="Examples:\n\n"
    "cephalo package push dist/Acme.Web.1.2.0.zip\n\n"
    "cephalo package push Acme.Web.1.2.0.zip Acme.Db.1.2.0.tar.gz --overwrite-mode IgnoreIfExists",
)
def package_push(
    files: Annotated[list[Path], typer.Argument(help="<PackageId>.<Version>.zip|.tar.gz|… files.")],
    overwrite_mode: Mode = OverwriteMode.FAIL_IF_EXISTS,
    progress: Progressbar = None,
) -> None:
    """Push package files, streamed from disk (a 1 GiB file needs no 1 GiB of memory)."""
    results = push_files(list(files), overwrite_mode, progress)
    ctx.emit(
        {"packages": results},
        "\n".join(
            f"{'Pushed' if r['stored'] else 'Kept existing'} {r['package_id']} {r['version']} "
            f"({r['size_bytes']} bytes, sha256 {r['sha256'][:12]})"
            for r in results
        ),
    )


@app.command("list", epilog="Examples:\n\ncephalo package list --filter Acme")
def package_list(
    filter: Annotated[str | None, typer.Option("--filter", help="Part of the package id.")] = None,
) -> None:
    """Package ids in the feed with their newest version."""
    with ctx.client() as api:
        packages = api.packages(filter)
    ctx.emit(
        {"packages": packages},
        "\n".join(f"{p['package_id']:<40} {p['latest_version']}" for p in packages),
    )


@app.command("versions", epilog="Examples:\n\ncephalo package versions Acme.Web --take 5")
def package_versions(
    package_id: Annotated[str, typer.Argument(help="The package id.")],
    take: Annotated[int, typer.Option("--take", min=1, max=500, help="How many.")] = 30,
) -> None:
    """Versions of one package, newest first."""
    with ctx.client() as api:
        versions = api.package_versions(package_id, take)
    ctx.emit(
        {"package_id": package_id, "versions": versions},
        "\n".join(
            f"{v['version']:<24} {v['size_bytes']:>12}  {v['published_at']}" for v in versions
        ),
    )
