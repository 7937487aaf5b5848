"""The shell fast path: a plain script step on an SSH target without the pushed runner.

Why: the runner is a Python process started for every step (about 0.15 CPU s on the host
against 0.035 s for a bare `echo` session); a plain Bash or sh script needs nothing of it
that cannot be done by the shell on the host and by the gateway.

Which steps take it (`fast_path_refusal(action) is None`): a script step (`cephalo.script`,
`octopus.script`) in `bash` or `sh`, with no package and an inline script body that does
not collect artifacts (collecting one copies the file into the step's work directory and
measures it on the host, which only the runner does). Everything else — package and
Kubernetes steps, Python scripts, a body given only in the properties, artifacts — runs
through the runner, as before.

What a fast step keeps, the same way the runner does it:
- `#{…}` substitution in the script: the runner's own `substitute_script`, run here;
- variables: non-sensitive ones as `CEPHALO_VAR_*` environment values, all of them in a 0600
  `step-variables.json` for the same helper functions, deleted when the script ends;
- service messages and masking: the host's raw output is parsed and masked here by the
  runner's own `StepOutput`, so the log lines, output variables, failure message and the
  closing `stepResults` summary are the ones the runner would print;
- no secret on a command line: the step program goes up on stdin and is `eval`ed by the
  session's shell (whose process group is announced first, for cancel and timeouts);
- run once: the same exec creates the step's `started` marker exclusively (`set -C`,
  O_EXCL); a ticket that finds it is refused (`AlreadyRan`) instead of running again, and
  the script's exit code is renamed into `exit-code` when it ends (`recorded_exit_code`).
"""

from __future__ import annotations

import io
import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cephalo_agent.steprunner import EXIT_FAILED
from cephalo_agent.steprunner.action import ACTION_ALIASES, SCRIPT_ACTION
from cephalo_agent.steprunner.conventions import substitute_script
from cephalo_agent.steprunner.errors import StepFailed
from cephalo_agent.steprunner.helpers import SHELL_BOOTSTRAP, SHELL_HELPERS
from cephalo_agent.steprunner.output import StepOutput, b64
from cephalo_agent.steprunner.scripts import environment_name
from cephalo_common.agent_protocol import LogSource

SHELLS = {"bash": "/bin/bash", "sh": "/bin/sh"}
ARTIFACT_WORDS = ("new_cephaloartifact", "new_octopusartifact", "createArtifact")
RAN_BEFORE = "##cephalo-ran-before"
LineSink = Callable[[LogSource, str], None]


def fast_path_refusal(action: Mapping[str, Any]) -> str | None:
    """Why this action needs the runner; None when the shell fast path runs it the same."""
    action_type = str(action.get("action_type") or SCRIPT_ACTION)
    if ACTION_ALIASES.get(action_type.lower(), action_type) != SCRIPT_ACTION:
        return f"{action_type} steps need the runner"
    syntax = str(action.get("syntax") or "bash").lower()
    if syntax not in SHELLS:
        return f"{syntax} scripts need the runner"
    if action.get("packages"):
        return "steps with packages need the runner"
    body = str(action.get("script_body") or "")
    if not body.strip():
        return "a script body from the properties (or none) is read by the runner"
    if any(word in body for word in ARTIFACT_WORDS):
        return "collecting artifacts needs the runner"
    return None


def fast_command(work: str) -> str:
    """The exec's command line: no value of the step in it, only the ticket's directory."""
    return (
        f"m=$(umask); umask 077; w={shlex.quote(work)}; case $w in /*) ;; *) w=$PWD/$w ;; esac; "
        'mkdir -p "$w/step" || exit 2; '
        f"(set -C; : > \"$w/started\") 2>/dev/null || {{ echo '{RAN_BEFORE}'; "
        'cat "$w/exit-code" 2>/dev/null; exit 0; }; '
        "echo '##cephalo-process-group '$$; eval \"$(cat)\""
    )


def fast_program(
    body: str, syntax: str, variables: Mapping[str, str], sensitive: frozenset[str], python: str
) -> str:
    """The step program (stdin, `eval`ed in the ticket's directory `$w`): the files the
    runner's `ScriptContext` writes, the script run as the runner runs it, cleanup, exit code."""
    files = {
        "step-variables.json": json.dumps(dict(variables)),
        "cephalo-helpers.sh": SHELL_HELPERS,
        "cephalo-bootstrap.sh": SHELL_BOOTSTRAP,
        "script.sh": body,
    }
    lines = ['cd "$w/step" || exit 2']
    lines += [f"printf '%s' {shlex.quote(text)} > {name}" for name, text in files.items()]
    lines += [
        f"export {environment_name(name)}={shlex.quote(variables[name])}"
        for name in sorted(variables)
        if name not in sensitive
    ]
    lines += [
        'export CEPHALO_VARIABLES_FILE="$w/step/step-variables.json" '
        f'CEPHALO_HELPERS="$w/step/cephalo-helpers.sh" CEPHALO_PYTHON={shlex.quote(python)}',
        'umask "$m"',  # the script creates files as it would under the runner
        f'{SHELLS[syntax]} "$w/step/cephalo-bootstrap.sh" "$w/step/script.sh" </dev/null',
        "code=$?",
        "rm -f step-variables.json",
        "umask 077",
        'printf \'%s\\n\' "$code" > "$w/exit-code.partial" '
        '&& mv -f "$w/exit-code.partial" "$w/exit-code"',
        'exit "$code"',
    ]
    return "\n".join(lines) + "\n"


def recorded_exit_code_command(work: str) -> str:
    return f"cat {shlex.quote(work + '/exit-code')} 2>/dev/null; true"


class _Lines(io.TextIOBase):
    """A text stream that hands every complete line to the step's log."""

    def __init__(self, source: LogSource, on_line: LineSink) -> None:
        self._source = source
        self._on_line = on_line
        self._partial = ""

    def write(self, text: str) -> int:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self._on_line(self._source, line.rstrip("\r"))
        return len(text)

    def end(self) -> None:
        if self._partial:
            self._on_line(self._source, self._partial.rstrip("\r"))
            self._partial = ""


class _RemoteOutput(StepOutput):
    """The runner's output handling; an artifact (only reached when a sourced file collects
    one) is announced as given: the host's file cannot be checked from here."""

    def artifact(self, path: Path, name: str | None = None) -> None:
        name = name or path.name
        self._write(
            self.stdout,
            f"##cephalo[createArtifact path='{b64(str(path))}' originalFilename='{b64(name)}']\n",
        )


@dataclass
class FastStep:
    """One fast step's output side: raw host output in, the runner's log lines out."""

    action: Mapping[str, Any]
    work: str
    on_line: LineSink

    def __post_init__(self) -> None:
        self._stdout = _Lines(LogSource.STDOUT, self.on_line)
        self._stderr = _Lines(LogSource.STDERR, self.on_line)
        self.output = _RemoteOutput(self._stdout, self._stderr)  # type: ignore[arg-type]
        self.variables = {str(k): str(v) for k, v in dict(self.action["variables"]).items()}
        self.sensitive = frozenset(map(str, self.action.get("sensitive_variables") or ()))
        self.output.add_secrets([self.variables[n] for n in self.sensitive if n in self.variables])
        self.syntax = str(self.action.get("syntax") or "bash").lower()
        self._stream = self.output.script_stream(Path(f"{self.work}/step"))

    def program(self, python: str) -> str:
        """Raises StepFailed when the substitution fails (as the runner would)."""
        body = substitute_script(str(self.action["script_body"]), self.variables, self.output)
        return fast_program(body, self.syntax, self.variables, self.sensitive, python)

    def __call__(self, source: LogSource, text: str) -> None:
        if source is LogSource.STDOUT:
            self._stream.feed(text + "\n")
        else:
            self.output.error(text)

    def finish(self, exit_code: int) -> int:
        """The runner's ending: the failure message on stderr, the summary, its exit code."""
        self._stream.close()
        if exit_code != 0 and self.output.failure_message:
            self.output.error(self.output.failure_message)
        self.output.summary(exit_code)
        self._stdout.end()
        self._stderr.end()
        return exit_code

    def refused(self, failure: StepFailed) -> int:
        if str(failure):
            self.output.error(str(failure))
        return self.finish_without_script(failure.exit_code or EXIT_FAILED)

    def finish_without_script(self, exit_code: int) -> int:
        self.output.summary(exit_code)
        self._stdout.end()
        self._stderr.end()
        return exit_code
