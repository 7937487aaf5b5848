"""The action a runner executes: what the server resolved for one step on one target.

On an agent it arrives as the variable `Cephalo.Action` (JSON) inside the script's 0600
variables file; over SSH as a 0600 JSON file the runner deletes once read. Either way
sensitive values never appear in argv.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cephalo_agent.steprunner import ACTION_VARIABLE
from cephalo_agent.steprunner.errors import StepFailed

SCRIPT_ACTION = "cephalo.script"
DEPLOY_PACKAGE_ACTION = "cephalo.deploy-package"
KUBERNETES_YAML_ACTION = "cephalo.kubernetes-deploy-yaml"
ACTION_ALIASES = {
    "octopus.script": SCRIPT_ACTION,
    "octopus.tentaclepackage": DEPLOY_PACKAGE_ACTION,
    "octopus.kubernetesdeployrawyaml": KUBERNETES_YAML_ACTION,
    "cephalo.package": DEPLOY_PACKAGE_ACTION,
}
# release-service's names for the package step's settings (its deployment process schema).
PROPERTY_ALIASES = {
    "Action.Package.SkipIfAlreadyInstalled": "skip_if_already_installed",
    "Action.Package.CustomInstallationDirectory": "custom_installation_directory",
    "Action.Package.JsonConfigurationVariablesTargets": "structured_variables_targets",
    "Action.SubstituteInFiles.TargetFiles": "substitute_in_files_targets",
    "Action.Package.RetentionKeep": "retention_keep",
}
SYNTAXES = ("bash", "sh", "python")


@dataclass(frozen=True)
class PackageRef:
    package_id: str
    version: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    reference_name: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PackageRef:
        try:
            return cls(
                package_id=str(data["package_id"]),
                version=str(data["version"]),
                url=data.get("url"),
                sha256=(data.get("sha256") or None) and str(data["sha256"]).lower(),
                size=data.get("size"),
                reference_name=str(data.get("reference_name") or ""),
            )
        except KeyError as missing:
            raise StepFailed(f"a package of the action has no {missing}") from None


@dataclass(frozen=True)
class Action:
    action_type: str
    variables: dict[str, str]
    sensitive_variables: frozenset[str] = frozenset()
    properties: dict[str, str] = field(default_factory=dict)
    packages: tuple[PackageRef, ...] = ()
    script_body: str = ""
    syntax: str = "bash"
    home: Path = field(default_factory=lambda: Path.home() / ".cephalo")
    work_dir: Path | None = None

    def setting(self, name: str) -> str | None:
        """`name` without its prefix: `Cephalo.<name>` wins over Octopus's `Octopus.<name>`,
        which wins over release-service's snake_case name."""
        for key in ("Cephalo." + name, "Octopus." + name, PROPERTY_ALIASES.get(name)):
            value = self.properties.get(key) if key else None
            if value is not None:
                return value
        return None

    def flag(self, name: str) -> bool:
        return (self.setting(name) or "").strip().lower() in ("true", "1", "yes")

    @property
    def sensitive_values(self) -> list[str]:
        return [self.variables[n] for n in self.sensitive_variables if n in self.variables]

    def variable(self, *names: str) -> str | None:
        folded = {key.lower(): value for key, value in self.variables.items()}
        for name in names:
            if name.lower() in folded:
                return folded[name.lower()]
        return None


def action_from_json(data: Mapping[str, Any]) -> Action:
    """Validate the JSON the server sent; anything wrong is a `StepFailed` with the reason."""
    if not isinstance(data, Mapping):
        raise StepFailed("the action is not a JSON object")
    action_type = str(data.get("action_type") or SCRIPT_ACTION)
    action_type = ACTION_ALIASES.get(action_type.lower(), action_type)
    if action_type not in (SCRIPT_ACTION, DEPLOY_PACKAGE_ACTION, KUBERNETES_YAML_ACTION):
        raise StepFailed(f"this runner cannot run actions of type {action_type!r}")
    syntax = str(data.get("syntax") or "bash").lower()
    if syntax not in SYNTAXES:
        raise StepFailed(f"scripts in {syntax!r} are not supported (use bash, sh or python)")
    variables = {str(k): str(v) for k, v in dict(data.get("variables") or {}).items()}
    variables.pop(ACTION_VARIABLE, None)
    home = data.get("home") or os.environ.get("CEPHALO_HOME")
    work = data.get("work_dir") or os.environ.get("CEPHALO_WORK_DIR")
    return Action(
        action_type=action_type,
        variables=variables,
        sensitive_variables=frozenset(map(str, data.get("sensitive_variables") or ())),
        properties={
            str(k): _text(v) for k, v in dict(data.get("properties") or {}).items() if v is not None
        },
        packages=tuple(PackageRef.from_json(p) for p in data.get("packages") or ()),
        script_body=str(data.get("script_body") or ""),
        syntax=syntax,
        home=Path(home).expanduser() if home else Path.home() / ".cephalo",
        work_dir=Path(work) if work else None,
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(map(str, value))
    return json.dumps(value)


def load_action_file(path: Path, *, consume: bool) -> Action:
    """The action in `path`; with `consume` the file (holding sensitive values) is deleted."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise StepFailed(f"cannot read the action file {path}: {error}") from None
    finally:
        if consume:
            path.unlink(missing_ok=True)
    return action_from_json(data)


def load_from_variables_file(path: Path) -> Action:
    """The agent path: every variable in the 0600 file, the action in `Cephalo.Action`."""
    try:
        variables = json.loads(path.read_text("utf-8"))
        spec = json.loads(variables.pop(ACTION_VARIABLE))
    except KeyError:
        raise StepFailed(f"the variables file has no {ACTION_VARIABLE} variable") from None
    except (OSError, ValueError, TypeError) as error:
        raise StepFailed(f"cannot read the action from {path}: {error}") from None
    if not isinstance(spec, dict):
        raise StepFailed(f"{ACTION_VARIABLE} is not a JSON object")
    return action_from_json({**spec, "variables": variables})
