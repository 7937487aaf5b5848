"""Deploy a package: acquire, extract into a fresh folder, then the conventions in order.

PreDeploy → `#{…}` substitution in the listed files → structured variable replacement →
Deploy → PostDeploy; on any failure DeployFailed runs and the step fails. Each
installation gets its own folder (`<apps>/<environment>/<package>/<version>`, `_1`, `_2`…
when that version is already there), extracted beside it first and renamed into place, so
an earlier installation is never touched by a later one, failed or not.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from cephalo_agent.steprunner.acquire import acquire
from cephalo_agent.steprunner.action import Action, PackageRef
from cephalo_agent.steprunner.archives import extract
from cephalo_agent.steprunner.conventions import replace_structured, substitute_in_files
from cephalo_agent.steprunner.errors import StepFailed
from cephalo_agent.steprunner.journal import DeploymentJournal
from cephalo_agent.steprunner.output import StepOutput
from cephalo_agent.steprunner.scripts import EXTENSIONS, ScriptContext

PHASES = ("PreDeploy", "Deploy", "PostDeploy")
FAILED_PHASE = "DeployFailed"
_UNSAFE_SEGMENT = re.compile(r"[^A-Za-z0-9._-]+")
INSTALLATION_DIRECTORY = "Octopus.Action.Package.InstallationDirectoryPath"


def _segment(text: str) -> str:
    cleaned = _UNSAFE_SEGMENT.sub("_", text).strip("._") or "_"
    return cleaned[:100]


def deploy_package(action: Action, context: ScriptContext, output: StepOutput) -> None:
    if not action.packages:
        raise StepFailed("The deploy-a-package step has no package.")
    package = action.packages[0]
    environment = action.variable("Octopus.Environment.Name") or "Default"
    journal = DeploymentJournal(action.home / "deployments.json")
    if action.flag("Action.Package.SkipIfAlreadyInstalled"):
        previous = journal.installed(package.package_id, package.version, environment)
        if previous is not None:
            output.info(
                f"{package.package_id} {package.version} is already installed in "
                f"{previous.directory}; skipping (skip if already installed)."
            )
            output.set_variable("Package.InstallationDirectoryPath", previous.directory)
            output.set_variable("Package.Skipped", "True")
            return
    archive = acquire(package, action.home / "packages", output)
    directory = _install(action, package, environment, archive, output)
    context.update({INSTALLATION_DIRECTORY: str(directory)})
    try:
        _conventions(action, directory, context, output)
    except StepFailed as failure:
        output.error(str(failure))
        _run_phase(FAILED_PHASE, action, directory, context, output, must_succeed=False)
        journal.record(package.package_id, package.version, environment, directory, False)
        raise StepFailed(
            f"The deployment of {package.package_id} {package.version} failed."
        ) from None
    journal.record(package.package_id, package.version, environment, directory, True)
    output.set_variable("Package.InstallationDirectoryPath", str(directory))
    keep = (action.setting("Action.Package.RetentionKeep") or "").strip()
    if keep.isdigit() and int(keep) > 0:
        for removed in journal.retain(package.package_id, environment, int(keep)):
            output.info(f"Retention: removed {removed}.")


def _install(
    action: Action, package: PackageRef, environment: str, archive: Path, output: StepOutput
) -> Path:
    custom = (action.setting("Action.Package.CustomInstallationDirectory") or "").strip()
    if custom:
        directory = Path(custom).expanduser()
        if directory.exists() and action.flag(
            "Action.Package.CustomInstallationDirectoryShouldBePurgedBeforeDeployment"
        ):
            output.info(f"Purging {directory} before the deployment.")
            shutil.rmtree(directory)
        count = extract(archive, directory)
        output.info(f"Extracted {count} file(s) into {directory}.")
        return directory
    base = action.home / "apps" / _segment(environment) / _segment(package.package_id)
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=base))
    try:
        count = extract(archive, staging)
        directory = _claim(base, _segment(package.version), staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    output.info(f"Extracted {count} file(s) into {directory}.")
    return directory


def _claim(base: Path, version: str, staging: Path) -> Path:
    """Rename `staging` to the first free `<version>`, `<version>_1`…; rename never overwrites
    a non-empty folder, so two concurrent deployments cannot share one."""
    for attempt in range(1000):
        directory = base / (version if attempt == 0 else f"{version}_{attempt}")
        if directory.exists():
            continue
        try:
            os.rename(staging, directory)
        except OSError:
            continue
        return directory
    raise StepFailed(f"There are too many installations of {version} in {base}.")


def _conventions(
    action: Action, directory: Path, context: ScriptContext, output: StepOutput
) -> None:
    _run_phase("PreDeploy", action, directory, context, output)
    targets = action.setting("Action.SubstituteInFiles.TargetFiles")
    if targets and (action.setting("Action.SubstituteInFiles.Enabled") or "True") != "False":
        substitute_in_files(directory, targets, context.variables, output)
    structured = action.setting("Action.Package.JsonConfigurationVariablesTargets") or (
        action.setting("Action.StructuredConfigurationVariables.Targets")
    )
    if structured:
        replace_structured(directory, structured, context.variables, output)
    for phase in PHASES[1:]:
        _run_phase(phase, action, directory, context, output)


def _run_phase(
    phase: str,
    action: Action,
    directory: Path,
    context: ScriptContext,
    output: StepOutput,
    *,
    must_succeed: bool = True,
) -> None:
    """The package's own `<phase>.sh|.py`, then a script given in the step's properties."""
    scripts: list[tuple[str, Path]] = []
    for syntax, extension in (("bash", ".sh"), ("python", ".py")):
        candidate = directory / f"{phase}{extension}"
        if candidate.is_file():
            scripts.append((syntax, candidate))
    for syntax in ("bash", "python"):
        body = action.setting(f"Action.CustomScripts.{phase}{EXTENSIONS[syntax]}")
        if body and body.strip():
            path = context.work_dir / f"custom-{phase}{EXTENSIONS[syntax]}"
            path.write_text(body, "utf-8")
            scripts.append((syntax, path))
    for syntax, script in scripts:
        output.info(f"Running {phase} script {script.name}.")
        exit_code = context.run_file(script, syntax, cwd=directory)
        if exit_code != 0:
            message = output.failure_message or f"{phase} script exited with code {exit_code}"
            if must_succeed:
                raise StepFailed(message)
            output.error(f"{phase} script {script.name} also failed: {message}")
