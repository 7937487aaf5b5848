"""How a step becomes an agent script, and how its results come back.

A dispatch goes to an agent that lists `STEP_RUNNER_FEATURE` as a Python script that runs
`cephalo_agent.steprunner --from-variables`, with the typed action (type, properties,
packages with their signed URLs, the script) in the sensitive variable `Cephalo.Action`: it
reaches the runner only through the agent's 0600 variables file, never argv, env or the
agent's journal. No protocol field is added, so the agent RPC contract is unchanged. An
agent without the feature still runs plain `cephalo.script` steps directly; any other
action type is refused with a clear message.

A plain shell script step that uses nothing of the runner's (no `#{…}`, no helper function,
no service message, no package) runs directly on agents with the runner too: the runner's Python
interpreter would cost more CPU than the script itself (an `echo ok` on a thousand agents).
It sees what the runner would show it: the non-sensitive variables in its environment. Its
sensitive values are not sent at all, as nothing in the script could reach them.

Results travel in the script's own log as service messages: `setVariable`/`createArtifact`
as they happen and one `stepResults` summary at the end. Those lines are replaced in the
published task log by a plain description (their values are base64, sensitive ones too), so
the log's sequence numbers stay contiguous.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from cephalo_common.agent_protocol import (
    STEP_RUNNER_FEATURE,
    Capabilities,
    LogSource,
    ProcessOutput,
    ScriptSyntax,
)
from cephalo_common.contracts import ArtifactV1, StepDispatchV1
from cephalo_common.variables.service_messages import (
    CreateArtifact,
    ServiceMessage,
    SetVariable,
    parse_service_message,
)

SCRIPT_ACTION = "cephalo.script"
SCRIPT_ACTIONS = frozenset({SCRIPT_ACTION, "octopus.script"})
# What only the runner provides: substitution, helper functions, service messages.
_RUNNER_FEATURES = re.compile(r"#\{|##|(?:cephalo|octopus)(?:variable|artifact)|fail_step", re.I)
_SHELLS = frozenset({ScriptSyntax.BASH, ScriptSyntax.SH})
ACTION_VARIABLE = "Cephalo.Action"
RESULTS_MESSAGE = "stepResults"
RUNNER_BOOTSTRAP = (
    "import sys\n"
    "from cephalo_agent.steprunner.__main__ import main\n"
    'sys.exit(main(["--from-variables"]))\n'
)


class ActionNotSupported(Exception):
    """The machine cannot run this kind of step."""


@dataclass(frozen=True)
class ScriptPlan:
    """What the agent is asked to run for a dispatch."""

    script_body: str
    syntax: ScriptSyntax
    variables: dict[str, str]
    sensitive_variables: list[str]
    via_runner: bool


def plan_script(dispatch: StepDispatchV1, capabilities: Capabilities, machine: str) -> ScriptPlan:
    """The runner when the agent has it and the step needs it; a plain script on older agents
    and for plain shell scripts; else refused."""
    if STEP_RUNNER_FEATURE not in capabilities.contract_versions:
        if dispatch.action_type != SCRIPT_ACTION or dispatch.packages:
            raise ActionNotSupported(
                f"Machine {machine} cannot run {dispatch.action_type} steps: its agent has "
                f"no step runner ({STEP_RUNNER_FEATURE}); upgrade the agent"
            )
        return ScriptPlan(
            dispatch.script_body,
            dispatch.syntax,
            dispatch.variables,
            dispatch.sensitive_variables,
            via_runner=False,
        )
    if is_plain_shell_script(dispatch):
        return ScriptPlan(
            dispatch.script_body,
            dispatch.syntax,
            {k: v for k, v in dispatch.variables.items() if k not in dispatch.sensitive_variables},
            [],
            via_runner=False,
        )
    action = action_spec(dispatch)
    return ScriptPlan(
        RUNNER_BOOTSTRAP,
        ScriptSyntax.PYTHON,
        {**dispatch.variables, ACTION_VARIABLE: json.dumps(action, separators=(",", ":"))},
        [*dispatch.sensitive_variables, ACTION_VARIABLE],
        via_runner=True,
    )


def is_plain_shell_script(dispatch: StepDispatchV1) -> bool:
    """A shell script step that uses none of the runner's features."""
    return (
        dispatch.action_type.lower() in SCRIPT_ACTIONS
        and not dispatch.packages
        and dispatch.syntax in _SHELLS
        and bool(dispatch.script_body.strip())
        and not _RUNNER_FEATURES.search(dispatch.script_body)
    )


def action_spec(dispatch: StepDispatchV1) -> dict[str, Any]:
    """The runner's action for a dispatch, without its variables."""
    return {
        "action_type": dispatch.action_type,
        "properties": dispatch.action_properties,
        "packages": [package.model_dump(mode="json") for package in dispatch.packages],
        "script_body": dispatch.script_body,
        "syntax": dispatch.syntax.value,
        "sensitive_variables": dispatch.sensitive_variables,
    }


@dataclass
class StepResults:
    """Output variables and artifacts gathered from a step's log."""

    output_variables: dict[str, str] = field(default_factory=dict)
    sensitive: set[str] = field(default_factory=set)
    artifacts: dict[str, ArtifactV1] = field(default_factory=dict)
    summarised: bool = False
    whole_log: bool = True  # False when a driver resumed mid-log and may have missed lines

    def absorb(self, lines: list[ProcessOutput]) -> list[ProcessOutput]:
        """The lines to publish: service messages taken out and described instead."""
        return [self._absorb(line) for line in lines]

    def _absorb(self, line: ProcessOutput) -> ProcessOutput:
        if line.source is not LogSource.STDOUT or "##" not in line.text:
            return line
        message = parse_service_message(line.text)
        if isinstance(message, SetVariable):
            self._set(message.name, message.value, message.sensitive)
            kind = "sensitive output variable" if message.sensitive else "output variable"
            return _described(line, f"Set {kind} {message.name!r}.")
        if isinstance(message, CreateArtifact):
            name = message.original_filename or message.path.rsplit("/", 1)[-1]
            self._collect(message.path, ArtifactV1(name=name, size=message.length or 0))
            return _described(line, f"Collected artifact {name!r}.")
        if isinstance(message, ServiceMessage) and message.name == RESULTS_MESSAGE:
            self._summary(message.attributes.get("data", ""))
            return _described(
                line,
                f"Step results: {len(self.output_variables)} output variable(s), "
                f"{len(self.artifacts)} artifact(s).",
            )
        return line

    def _set(self, name: str, value: str, sensitive: bool) -> None:
        self.output_variables[name] = value
        if sensitive:
            self.sensitive.add(name)

    def _summary(self, data: str) -> None:
        try:
            results: dict[str, Any] = json.loads(data)
        except ValueError:
            try:
                results = json.loads(base64.b64decode(data, validate=True))
            except (ValueError, binascii.Error):
                return
        for name, value in dict(results.get("output_variables") or {}).items():
            self._set(
                str(name), str(value), name in (results.get("sensitive_output_variables") or ())
            )
        for artifact in results.get("artifacts") or ():
            self._collect(
                str(artifact["path"]),
                ArtifactV1(name=str(artifact["name"]), size=int(artifact["size"])),
            )
        self.summarised = True

    def _collect(self, path: str, artifact: ArtifactV1) -> None:
        """Record an announced artifact; one already kept in the store stays as it is (its
        lines may be read again when the run finishes)."""
        kept = self.artifacts.get(path)
        if kept is None or kept.object_name is None:
            self.artifacts[path] = artifact

    @property
    def sensitive_output_variables(self) -> list[str]:
        return sorted(self.sensitive & set(self.output_variables))

    @property
    def artifact_list(self) -> list[ArtifactV1]:
        return list(self.artifacts.values())


def _described(line: ProcessOutput, text: str) -> ProcessOutput:
    return line.model_copy(update={"text": text})
