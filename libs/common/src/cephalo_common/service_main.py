"""The `python -m cephalo_<service> [api|migrate]` entry shared by every service."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from cephalo_common.db.migrations import upgrade
from cephalo_common.settings import ServiceSettings


def service_main(
    package: str,
    create_app: Callable[[ServiceSettings], FastAPI],
    settings_factory: Callable[[], ServiceSettings],
    argv: list[str] | None = None,
) -> None:
    """`api` serves HTTP (default); `migrate` runs this service's migrations to head."""
    parser = argparse.ArgumentParser(prog=f"python -m {package}")
    parser.add_argument("role", nargs="?", default="api", choices=["api", "migrate"])
    args = parser.parse_args(argv)
    settings = settings_factory()
    if args.role == "migrate":
        upgrade(package, settings.database.url)
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
