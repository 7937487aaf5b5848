"""What every command shares: the resolved connection and how to print.

Text goes to stdout for people; `--output json` prints exactly one JSON document on stdout
(the shapes in `schemas.py`) and moves progress, log lines and errors to stderr.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console

from cephalo_cli.client import CephaloClient
from cephalo_cli.config import Config, resolve


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@dataclass
class Context:
    server: str | None = None
    space: str | None = None
    api_key: str | None = None
    output: OutputFormat = OutputFormat.TEXT
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.JSON

    def config(self) -> Config:
        return resolve(self.server, self.space, self.api_key)

    def client(self) -> CephaloClient:
        return CephaloClient(self.config())

    def emit(self, data: Any, text: str) -> None:
        """The command's result: JSON for machines, else the text."""
        if self.json:
            typer.echo(json.dumps(data, indent=2, default=str))
        elif text:
            typer.echo(text)

    def say(self, text: str) -> None:
        """A progress note or log line for people: stdout, or stderr in JSON mode (so a CI
        job log still shows the deployment while stdout stays one JSON document)."""
        typer.echo(text, err=self.json)

    def warn(self, text: str) -> None:
        typer.echo(text, err=True)


current = Context()
"""The one context of this process (a CLI run is one command)."""
