"""Local Tentacle-like agents for the dev stack and the end-to-end tests (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cephalo_dev.processes import spawn


@dataclass
class LocalAgent:
    name: str
    home: Path
    server_url: str
    space: str = "default"
    api_key: str | None = None

    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CEPHALO_")}
        env["CEPHALO_AGENT_HOME"] = str(self.home)
        if self.api_key:
            env["CEPHALO_API_KEY"] = self.api_key
        return env

    def _cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "cephalo_agent", *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"cephalo-agent {args[0]} failed: {result.stderr or result.stdout}")
        return result.stdout

    @property
    def registered(self) -> bool:
        return (self.home / "config.json").exists() and '"machine_id"' in (
            self.home / "config.json"
        ).read_text()

    def register(self, environments: list[str], roles: list[str]) -> None:
        """Create the certificate and register with the server, unless already done."""
        if self.registered:
            return
        self._cli("new-certificate")
        args = ["register", "--server", self.server_url, "--space", self.space, "--name", self.name]
        args += ["--mode", "polling"]
        for environment in environments:
            args += ["--environment", environment]
        for role in roles:
            args += ["--tag", role]
        self._cli(*args)

    def start(self, log_path: Path) -> subprocess.Popen[bytes]:
        return spawn(
            [sys.executable, "-m", "cephalo_agent", "run"], env=self._env(), log_path=log_path
        )
