"""Every JetStream stream, declared once; each service ensures them all at connect."""

from __future__ import annotations

from dataclasses import dataclass

from cephalo_common.messaging import subjects


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    work_queue: bool = False
    max_age_seconds: float = 7 * 24 * 3600
    duplicate_window_seconds: float = 120


EVT_RELEASE = StreamSpec("CEPHALO_EVT_RELEASE", (subjects.evt_stream_subjects("release"),))
EVT_DEPLOY = StreamSpec("CEPHALO_EVT_DEPLOY", (subjects.evt_stream_subjects("deploy"),))
EVT_AGENT = StreamSpec("CEPHALO_EVT_AGENT", (subjects.evt_stream_subjects("agent"),))
EVT_FEED = StreamSpec("CEPHALO_EVT_FEED", (subjects.evt_stream_subjects("feed"),))
EVT_GATEWAY = StreamSpec("CEPHALO_EVT_GATEWAY", (subjects.evt_stream_subjects("gateway"),))
CMD_AGENT = StreamSpec(
    "CEPHALO_CMD_AGENT", (subjects.cmd_stream_subjects("agent"),), work_queue=True
)
TASK_LOGS = StreamSpec("CEPHALO_TASK_LOGS", ("cephalo.log.>",), max_age_seconds=24 * 3600)
DEAD_LETTERS = StreamSpec(
    "CEPHALO_DEAD_LETTERS", ("cephalo.dlq.>",), max_age_seconds=14 * 24 * 3600
)

ALL_STREAMS: tuple[StreamSpec, ...] = (
    EVT_RELEASE,
    EVT_DEPLOY,
    EVT_AGENT,
    EVT_FEED,
    EVT_GATEWAY,
    CMD_AGENT,
    TASK_LOGS,
    DEAD_LETTERS,
)

STREAM_BY_CONTEXT = {
    "release": EVT_RELEASE,
    "deploy": EVT_DEPLOY,
    "agent": EVT_AGENT,
    "feed": EVT_FEED,
    "gateway": EVT_GATEWAY,
}
