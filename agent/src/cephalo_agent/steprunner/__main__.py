"""`python -m cephalo_agent.steprunner` (or `python runner.pyz`): run one action.

    --action FILE [--consume]   the action JSON (SSH path; --consume deletes it once read)
    --from-variables            the action in `Cephalo.Action` of $CEPHALO_VARIABLES_FILE
    --version                   print the runner's version and exit

Exit 0 when the step succeeded, 1 when it failed (the reason is the last stderr line), 2
when the action itself is unusable.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from cephalo_agent.steprunner import EXIT_BAD_ACTION, EXIT_FAILED
from cephalo_agent.steprunner.action import (
    DEPLOY_PACKAGE_ACTION,
    KUBERNETES_YAML_ACTION,
    Action,
    load_action_file,
    load_from_variables_file,
)
from cephalo_agent.steprunner.conventions import substitute_script
from cephalo_agent.steprunner.errors import StepFailed
from cephalo_agent.steprunner.output import StepOutput
from cephalo_agent.steprunner.scripts import ScriptContext
from cephalo_agent.steprunner.version import runner_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cephalo-step-runner")
    parser.add_argument("--action", type=Path)
    parser.add_argument("--consume", action="store_true")
    parser.add_argument("--from-variables", action="store_true")
    parser.add_argument("--version", action="store_true")
    args = parser.parse_args(argv)
    if args.version:
        print(runner_version())
        return 0
    output = StepOutput(sys.stdout, sys.stderr)
    try:
        action = _load(args)
    except StepFailed as failure:
        output.error(str(failure))
        return EXIT_BAD_ACTION
    return run_action(action, output)


def _load(args: argparse.Namespace) -> Action:
    if args.action is not None:
        return load_action_file(args.action, consume=args.consume)
    variables_file = os.environ.get("CEPHALO_VARIABLES_FILE")
    if args.from_variables and variables_file:
        return load_from_variables_file(Path(variables_file))
    raise StepFailed("give --action FILE, or --from-variables with CEPHALO_VARIABLES_FILE set")


def run_action(action: Action, output: StepOutput) -> int:
    """Run the action to its end; failures are log lines and an exit code, never tracebacks.

    The package and Kubernetes steps are imported only when run: the runner starts once per
    SSH step, and a script step should not pay for their imports."""
    output.add_secrets(action.sensitive_values)
    own_work = action.work_dir is None
    work = action.work_dir or Path(tempfile.mkdtemp(prefix="cephalo-step-"))
    output.work_dir = action.work_dir
    context = ScriptContext(
        work / "step", dict(action.variables), action.sensitive_variables, output
    )
    exit_code = 0
    try:
        if action.action_type == DEPLOY_PACKAGE_ACTION:
            from cephalo_agent.steprunner.deploy import deploy_package

            deploy_package(action, context, output)
        elif action.action_type == KUBERNETES_YAML_ACTION:
            from cephalo_agent.steprunner.kubernetes_step import deploy_raw_yaml

            deploy_raw_yaml(action, output)
        else:
            _run_script(action, context, output)
    except StepFailed as failure:
        if str(failure):
            output.error(str(failure))
        exit_code = failure.exit_code or EXIT_FAILED
    finally:
        context.cleanup()
        output.summary(exit_code)
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    return exit_code


def _run_script(action: Action, context: ScriptContext, output: StepOutput) -> None:
    body = action.script_body or action.setting("Action.Script.ScriptBody") or ""
    if not body.strip():
        raise StepFailed("The script step has no script body.")
    body = substitute_script(body, context.variables, output)
    exit_code = context.run(body, action.syntax, cwd=context.work_dir, name="script")
    if exit_code != 0:
        raise StepFailed(output.failure_message or "", exit_code)


if __name__ == "__main__":
    sys.exit(main())
