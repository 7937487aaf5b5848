"""Why a step failed, as the step's log says it."""

from __future__ import annotations


class StepFailed(Exception):
    """The step cannot go on; `str()` is the message for the log, never a traceback.

    `exit_code` is the runner's exit code: a script step exits with its script's code.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
