"""Exit codes and the one-line errors behind them (Octopus CLI habits, issue 10).

0 success; 1 a failed or cancelled deployment, or a request the server refused (unknown
project, existing release); 2 a usage error; 3 the server is unreachable or the key is bad.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    SUCCESS = 0
    FAILED = 1
    USAGE = 2
    SERVER = 3


class CliError(Exception):
    """An error the user should read as one line; `code` is the process exit code."""

    code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, code: ExitCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(CliError):
    code = ExitCode.USAGE


class Unreachable(CliError):
    code = ExitCode.SERVER


class ApiError(CliError):
    """The server answered with a problem; 401/403 mean the key, so they exit 3."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, ExitCode.SERVER if status in (401, 403) else ExitCode.FAILED)
        self.status = status


class DeploymentFailed(CliError):
    """A deployment ended Failed, Canceled or TimedOut, or did not finish in time."""
