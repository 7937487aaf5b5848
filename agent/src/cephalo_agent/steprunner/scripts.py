"""Run one script with the step's variables and helpers, streaming its output.

Non-sensitive variables are environment values (`CEPHALO_VAR_<NAME>`, as on the agent);
all variables, sensitive included, are in a 0600 JSON file the helpers read. Nothing
sensitive is ever an argument.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cephalo_agent.steprunner.helpers import PYTHON_BOOTSTRAP, SHELL_BOOTSTRAP, SHELL_HELPERS
from cephalo_agent.steprunner.output import StepOutput

VARIABLE_ENV_PREFIX = "CEPHALO_VAR_"
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")
_SHELLS = {"bash": "/bin/bash", "sh": "/bin/sh"}
EXTENSIONS = {"bash": ".sh", "sh": ".sh", "python": ".py"}


def environment_name(variable: str) -> str:
    """`Octopus.Action.Name` → `CEPHALO_VAR_OCTOPUS_ACTION_NAME` (the agent's spelling)."""
    return VARIABLE_ENV_PREFIX + _NON_ALNUM.sub("_", variable).upper()


def write_private(path: Path, text: str) -> None:
    """Create or replace `path` with mode 0600 from the first byte on."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


@dataclass
class ScriptContext:
    """Where scripts of one step run and what they see."""

    work_dir: Path
    variables: dict[str, str]
    sensitive: frozenset[str]
    output: StepOutput

    def __post_init__(self) -> None:
        self.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.variables_file = self.work_dir / "step-variables.json"
        self.helpers_file = self.work_dir / "cephalo-helpers.sh"
        self.shell_bootstrap = self.work_dir / "cephalo-bootstrap.sh"
        self.python_bootstrap = self.work_dir / "cephalo_bootstrap.py"
        self.helpers_file.write_text(SHELL_HELPERS, "utf-8")
        self.shell_bootstrap.write_text(SHELL_BOOTSTRAP, "utf-8")
        self.python_bootstrap.write_text(PYTHON_BOOTSTRAP, "utf-8")

    def update(self, variables: dict[str, str]) -> None:
        self.variables.update(variables)

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(VARIABLE_ENV_PREFIX)}
        for name in sorted(self.variables):
            if name not in self.sensitive:
                env[environment_name(name)] = self.variables[name]
        env["CEPHALO_VARIABLES_FILE"] = str(self.variables_file)
        env["CEPHALO_HELPERS"] = str(self.helpers_file)
        env["CEPHALO_PYTHON"] = sys.executable
        return env

    def cleanup(self) -> None:
        self.variables_file.unlink(missing_ok=True)

    def run(self, body: str, syntax: str, *, cwd: Path, name: str) -> int:
        """The script's exit code; its output goes through the step's output as it arrives."""
        script = self.work_dir / f"{name}{EXTENSIONS[syntax]}"
        script.write_text(body, "utf-8")
        return self.run_file(script, syntax, cwd=cwd)

    def run_file(self, script: Path, syntax: str, *, cwd: Path) -> int:
        write_private(self.variables_file, json.dumps(self.variables))
        if syntax == "python":
            argv = [sys.executable, "-u", str(self.python_bootstrap), str(script)]
        else:
            argv = [_SHELLS[syntax], str(self.shell_bootstrap), str(script)]
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        stream = self.output.script_stream(cwd)
        errors = threading.Thread(target=self._pump_errors, args=(process.stderr,), daemon=True)
        errors.start()
        for chunk in iter(process.stdout.readline, b""):
            stream.feed(chunk.decode("utf-8", "replace"))
        stream.close()
        errors.join()
        return process.wait()

    def _pump_errors(self, pipe: IO[bytes]) -> None:
        for chunk in iter(pipe.readline, b""):
            self.output.error(chunk.decode("utf-8", "replace").rstrip("\r\n"))
