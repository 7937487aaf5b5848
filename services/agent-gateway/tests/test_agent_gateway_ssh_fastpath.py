"""The shell fast path for plain script steps on SSH targets, against a real OpenSSH sshd.

The fast path must give what the runner gives: the same script on both paths yields the
same log lines (masked), output variables, failure message and exit code. Beyond that: no
runner is pushed, a ticket never runs twice, and nothing sensitive is left on the host.
"""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from cephalo_agent_gateway.domain.ssh_accounts import SshAccount
from cephalo_agent_gateway.domain.ssh_fastpath import fast_command, fast_path_refusal
from cephalo_agent_gateway.domain.ssh_targets import (
    AlreadyRan,
    SshConnections,
    SshEndpoint,
    SshSettings,
    SshStepRunner,
    capture_host_key,
)
from cephalo_agent_gateway.domain.step_actions import StepResults
from cephalo_agent_gateway.testing.sshd import Sshd
from cephalo_common.agent_protocol import LogSource, ProcessOutput

SECRET = "fast-Pa55-w0rd-77"
SCRIPT = (
    'echo "env: $CEPHALO_VAR_GREETING, cwd: $(basename "$PWD")"\n'
    'touch made-here; echo "mode: $(stat -c %a made-here)"\n'
    'echo "substituted: #{Greeting} #{Missing.Name}"\n'
    'echo "secret: $(get_octopusvariable Password) #{Password}"\n'
    'echo "secret on stderr: $(get_cephalovariable password)" >&2\n'
    "set_octopusvariable Where ssh\n"
    'set_cephalovariable Token "$(get_cephalovariable Password)-2" -sensitive\n'
    'echo "token: $(get_cephalovariable Password)-2"\n'
    "fail_step 'it went wrong on purpose'\n"
)
ACTION: dict[str, Any] = {
    "action_type": "cephalo.script",
    "syntax": "bash",
    "script_body": SCRIPT,
    "packages": [],
    "properties": {},
    "variables": {"Password": SECRET, "Greeting": "hello there"},
    "sensitive_variables": ["Password"],
}


@pytest.fixture
async def endpoint(sshd: Sshd, client_key: asyncssh.SSHKey) -> SshEndpoint:
    private = client_key.export_private_key("openssh").decode()
    account = SshAccount(getpass.getuser(), private_key=private)
    pinned = await capture_host_key("127.0.0.1", sshd.port)
    return SshEndpoint("web-01", "127.0.0.1", sshd.port, account, pinned)


@pytest.fixture
async def runners(tmp_path: Path) -> AsyncIterator[dict[str, SshStepRunner]]:
    """Both paths, each with its own pool and remote base."""
    pools = {
        path: SshConnections(
            SshSettings(
                remote_base=str(tmp_path / path / "remote-home"), shell_fast_path=path == "fast"
            )
        )
        for path in ("fast", "runner")
    }
    yield {path: SshStepRunner(pool) for path, pool in pools.items()}
    for pool in pools.values():
        await pool.aclose()


async def run(
    runner: SshStepRunner, endpoint: SshEndpoint, ticket: str, action: dict[str, Any]
) -> tuple[int, list[tuple[LogSource, str]], StepResults]:
    raw: list[ProcessOutput] = []

    def collect(source: LogSource, text: str) -> None:
        raw.append(ProcessOutput(sequence=len(raw) + 1, source=source, text=text, time=""))

    exit_code = await runner.run_action(endpoint, ticket, action, collect)
    results = StepResults()
    lines = [(line.source, line.text) for line in results.absorb(raw)]
    return exit_code, lines, results


def same(
    fast: tuple[int, list[tuple[LogSource, str]], StepResults],
    slow: tuple[int, list[tuple[LogSource, str]], StepResults],
) -> bool:
    """The same exit code and lines per stream (stdout and stderr interleave as they come)."""

    def streams(lines: list[tuple[LogSource, str]]) -> dict[LogSource, list[str]]:
        return {s: [text for source, text in lines if source is s] for s in LogSource}

    return fast[0] == slow[0] and streams(fast[1]) == streams(slow[1])


@pytest.mark.timeout(120)
async def test_a_script_step_gives_the_same_log_and_results_on_both_paths(
    runners: dict[str, SshStepRunner], endpoint: SshEndpoint
) -> None:
    fast = await run(runners["fast"], endpoint, "same-1", ACTION)
    slow = await run(runners["runner"], endpoint, "same-1", ACTION)
    assert runners["fast"].pool.runner_uploads == 0
    assert runners["runner"].pool.runner_uploads == 1

    exit_code, lines, results = fast
    assert exit_code == 1
    assert same(fast, slow)
    assert results.output_variables == slow[2].output_variables
    assert results.output_variables == {"Where": "ssh", "Token": f"{SECRET}-2"}
    assert results.sensitive_output_variables == ["Token"]
    texts = [text for _, text in lines]
    assert "env: hello there, cwd: step" in texts
    assert any(text.startswith("mode: ") for text in texts), "and the same on both paths"
    assert "substituted: hello there #{Missing.Name}" in texts
    assert "secret: ******** ********" in texts
    assert (LogSource.STDERR, "secret on stderr: ********") in lines
    assert "token: ********" in texts
    assert [text for source, text in lines if source is LogSource.STDERR][-1] == (
        "it went wrong on purpose"
    )
    assert not any(SECRET in text for text in texts)


@pytest.mark.timeout(120)
async def test_exit_codes_failed_substitution_and_sh_match_the_runner(
    runners: dict[str, SshStepRunner], endpoint: SshEndpoint
) -> None:
    cases = {
        "exit-3": {**ACTION, "script_body": "echo before; printf 'no newline'; exit 3"},
        "sh": {**ACTION, "syntax": "sh", "script_body": 'echo "$0" | grep -c bootstrap'},
        "bad-template": {**ACTION, "script_body": "echo #{if Greeting}unclosed"},
    }
    for ticket, action in cases.items():
        fast = await run(runners["fast"], endpoint, ticket, action)
        slow = await run(runners["runner"], endpoint, ticket, action)
        assert same(fast, slow), ticket
    exit_code, lines, _ = await run(runners["fast"], endpoint, "exit-3b", cases["exit-3"])
    assert (exit_code, lines[-1]) == (3, (LogSource.STDOUT, "no newline"))


@pytest.mark.timeout(120)
async def test_a_ticket_runs_once_and_leaves_no_secret_on_the_host(
    runners: dict[str, SshStepRunner], endpoint: SshEndpoint, tmp_path: Path
) -> None:
    runner = runners["fast"]
    action = {**ACTION, "script_body": 'echo "$(get_cephalovariable Password)" > /dev/null; exit 4'}
    assert (await run(runner, endpoint, "once-1", action))[0] == 4
    with pytest.raises(AlreadyRan, match=r"once-1 was started there before \(exit code: 4\)"):
        await run(runner, endpoint, "once-1", action)
    assert await runner.recorded_exit_code(endpoint, "once-1") == 4
    assert await runner.recorded_exit_code(endpoint, "never-ran") is None

    remote = tmp_path / "fast" / "remote-home"
    assert not (remote / "runner").exists(), "no runner is pushed for a plain script"
    work = remote / "work" / "once-1"
    assert (work.stat().st_mode & 0o777, (work / "step").stat().st_mode & 0o777) == (0o700, 0o700)
    leftovers = [p for p in remote.rglob("*") if p.is_file() and SECRET in p.read_text()]
    assert leftovers == []
    assert SECRET not in fast_command(runner.work_dir("once-1"))


def test_which_steps_take_the_fast_path() -> None:
    assert fast_path_refusal(ACTION) is None
    assert fast_path_refusal({**ACTION, "action_type": "Octopus.Script", "syntax": "sh"}) is None
    refused = {
        "python": {**ACTION, "syntax": "python"},
        "package": {**ACTION, "packages": [{"package_id": "app", "version": "1.0.0"}]},
        "deploy": {**ACTION, "action_type": "cephalo.deploy-package"},
        "artifact": {**ACTION, "script_body": "new_octopusartifact out.txt"},
        "no body": {**ACTION, "script_body": "  "},
    }
    for name, action in refused.items():
        assert fast_path_refusal(action) is not None, name
