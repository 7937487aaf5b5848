"""Everything the runner prints: masked text, and service messages for the server.

Scripts' service messages are consumed here and re-announced by the runner itself, so the
server reads one well-formed stream: `setVariable` once per captured output variable and
`createArtifact` with an absolute path and the file's length (checked to exist).

With a work directory (agent and SSH steps), an artifact that lies outside it is copied in
(`artifacts/<n>/<name>`) when it is collected, and the copy is announced: the server fetches
artifacts only from inside the step's work directory, and the copy is what the file was when
the script collected it.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from cephalo_common.variables.masking import SensitiveMasker
from cephalo_common.variables.service_messages import (
    CreateArtifact,
    MalformedServiceMessage,
    Message,
    OutputParser,
    ServiceMessage,
    SetVariable,
    encode_set_variable,
)

FAILURE_MESSAGES = ("resultMessage", "stepFailed")


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def secret_pieces(values: list[str]) -> list[str]:
    """A multi-line secret is masked line by line too: log lines are split at newlines."""
    pieces: list[str] = []
    for value in values:
        pieces.append(value)
        pieces.extend(line.strip("\r") for line in value.split("\n") if line.strip("\r"))
    return pieces


@dataclass
class StepOutput:
    """The runner's stdout/stderr with masking, plus what the step produced so far."""

    stdout: TextIO
    stderr: TextIO
    masker: SensitiveMasker = field(default_factory=SensitiveMasker)
    output_variables: dict[str, str] = field(default_factory=dict)
    sensitive_outputs: set[str] = field(default_factory=set)
    artifacts: list[tuple[Path, str]] = field(default_factory=list)
    failure_message: str | None = None
    work_dir: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_secrets(self, values: list[str]) -> None:
        self.masker.add(secret_pieces(values))

    def info(self, text: str) -> None:
        self._write(self.stdout, self.masker.mask_text(text) + "\n")

    def error(self, text: str) -> None:
        self._write(self.stderr, self.masker.mask_text(text) + "\n")

    def set_variable(self, name: str, value: str, *, sensitive: bool = False) -> None:
        """Record an output variable and announce it (the value travels base64, unmasked)."""
        if sensitive:
            self.sensitive_outputs.add(name)
            self.add_secrets([value])
        self.output_variables[name] = value
        self._write(self.stdout, encode_set_variable(name, value, sensitive=sensitive) + "\n")

    def artifact(self, path: Path, name: str | None = None) -> None:
        if not path.is_file():
            self.error(f"The artifact {path} does not exist; it was not collected.")
            return
        name = name or path.name
        try:
            path = self._inside_work(path, name)
        except OSError as error:
            self.error(f"The artifact {path} could not be collected: {error}")
            return
        self.artifacts.append((path, name))
        attributes = (
            f"path='{b64(str(path))}' originalFilename='{b64(name)}' "
            f"length='{b64(str(path.stat().st_size))}'"
        )
        self._write(self.stdout, f"##cephalo[createArtifact {attributes}]\n")

    def _inside_work(self, path: Path, name: str) -> Path:
        if self.work_dir is None:
            return path
        work = self.work_dir.resolve()
        if path.resolve().is_relative_to(work):
            return path
        leaf = Path(name).name
        copy = work / "artifacts" / str(len(self.artifacts)) / (leaf or path.name)
        copy.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        return copy

    def summary(self, exit_code: int) -> None:
        """The step's results in one last message, for a server that resumed mid-log."""
        if not (self.output_variables or self.artifacts or self.failure_message):
            return
        results = {
            "exit_code": exit_code,
            "output_variables": self.output_variables,
            "sensitive_output_variables": sorted(self.sensitive_outputs),
            "artifacts": [
                {"path": str(path), "name": name, "size": path.stat().st_size}
                for path, name in self.artifacts
                if path.is_file()
            ],
            "failure": self.failure_message,
        }
        self._write(self.stdout, f"##cephalo[stepResults data='{b64(json.dumps(results))}']\n")

    def script_stream(self, cwd: Path) -> ScriptStream:
        return ScriptStream(self, cwd)

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            stream.write(text)
            stream.flush()


class ScriptStream:
    """One script's stdout: text is masked and passed on, service messages are absorbed."""

    def __init__(self, output: StepOutput, cwd: Path) -> None:
        self._output = output
        self._cwd = cwd
        self._parser = OutputParser()

    def feed(self, chunk: str) -> None:
        for event in self._parser.feed(chunk):
            self._handle(event)

    def close(self) -> None:
        for event in self._parser.flush():
            self._handle(event)

    def _handle(self, event: str | Message) -> None:
        output = self._output
        if isinstance(event, str):
            output._write(output.stdout, output.masker.mask_text(event))
        elif isinstance(event, SetVariable):
            output.set_variable(event.name, event.value, sensitive=event.sensitive)
        elif isinstance(event, CreateArtifact):
            path = Path(event.path)
            output.artifact(
                path if path.is_absolute() else self._cwd / path, event.original_filename
            )
        elif isinstance(event, ServiceMessage) and event.name in FAILURE_MESSAGES:
            message = event.attributes.get("message", "")
            output.failure_message = output.masker.mask_text(message)
        elif isinstance(event, MalformedServiceMessage):
            output.error(f"Ignored a malformed service message: {event.reason}")
        else:
            attributes = " ".join(f"{k}='{b64(v)}'" for k, v in event.attributes.items())
            output._write(output.stdout, f"##cephalo[{event.name} {attributes}]\n")
