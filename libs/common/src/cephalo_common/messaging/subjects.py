"""Subject builders: the only place subjects are spelled (broad to narrow, `[a-z0-9-]`)."""

from __future__ import annotations

import re

ROOT = "cephalo"
_TOKEN = re.compile(r"^[a-z0-9-]+$")


def token(value: str) -> str:
    """Validate one subject token; ids and slugs are lowercased first."""
    lowered = value.lower()
    if not _TOKEN.match(lowered):
        raise ValueError(f"invalid subject token: {value!r}")
    return lowered


def evt(space: str, context: str, entity: str, action: str) -> str:
    """A domain event: `cephalo.evt.<space>.<context>.<entity>.<action>`."""
    return ".".join((ROOT, "evt", token(space), token(context), token(entity), token(action)))


def evt_filter(context: str, entity: str, action: str) -> str:
    """The same event in every space, for a consumer's filter subject."""
    return ".".join((ROOT, "evt", "*", token(context), token(entity), token(action)))


def evt_stream_subjects(context: str) -> str:
    return ".".join((ROOT, "evt", "*", token(context), ">"))


def cmd(space: str, context: str, verb: str) -> str:
    """A command: `cephalo.cmd.<space>.<context>.<verb>`."""
    return ".".join((ROOT, "cmd", token(space), token(context), token(verb)))


def cmd_filter(context: str, verb: str) -> str:
    return ".".join((ROOT, "cmd", "*", token(context), token(verb)))


def cmd_stream_subjects(context: str) -> str:
    return ".".join((ROOT, "cmd", "*", token(context), ">"))


def rpc(context: str, method: str) -> str:
    return ".".join((ROOT, "rpc", "v1", token(context), token(method)))


def task_log(space: str, task_id: str) -> str:
    return ".".join((ROOT, "log", token(space), "task", token(task_id)))


def agent_request(machine_id: str) -> str:
    return ".".join((ROOT, "agent", "req", token(machine_id)))


def agent_response(request_id: str) -> str:
    return ".".join((ROOT, "agent", "resp", token(request_id)))


def dead_letter(consumer: str) -> str:
    """Where a consumer's exhausted messages go, keeping the original envelope."""
    return ".".join((ROOT, "dlq", token(consumer)))
