"""Why a step failed, as the step's log says it."""

from __future__ import annotations


class StepFailed(Exception):
    """The step cannot go on; `str()` is the message for the log, never a traceback."""
