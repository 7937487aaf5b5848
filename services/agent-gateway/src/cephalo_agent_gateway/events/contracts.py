"""Events and commands of agent-gateway not (yet) in `cephalo_common.contracts`.

`target.*` events announce changes to deployment targets and workers; other replicas of
agent-gateway listen to `target.registered`/`target.deleted` on core NATS to reload their
trust store and drop connections at once. `step.cancel` asks for a running step to be
cancelled. These belong in the shared contracts once another service consumes them.
"""

from __future__ import annotations

from cephalo_common.contracts import Contract, EventKind

TARGET_REGISTERED = EventKind("agent", "target", "registered")
TARGET_DELETED = EventKind("agent", "target", "deleted")
TARGET_HEALTH_CHANGED = EventKind("agent", "target", "health-changed")
TARGET_HOST_KEY_CHANGED = EventKind("agent", "target", "host-key-changed")
STEP_CANCEL = EventKind("agent", "step", "cancel", command=True)


class TargetRegisteredV1(Contract):
    machine_id: str
    name: str
    kind: str  # target | worker
    mode: str  # polling | listening
    thumbprint: str


class TargetDeletedV1(Contract):
    machine_id: str
    name: str
    kind: str
    thumbprint: str


class TargetHealthChangedV1(Contract):
    """A machine's health status changed (Healthy, HasWarnings, Unhealthy, Unavailable)."""

    machine_id: str
    name: str
    kind: str
    previous_status: str
    status: str
    message: str
    checked_at: str


class TargetHostKeyChangedV1(Contract):
    """An SSH target presented a host key other than the pinned one; the connection was
    refused (an audit event: a re-installed host, or someone in the middle)."""

    machine_id: str
    name: str
    host: str
    port: int
    pinned_fingerprint: str
    presented_fingerprint: str | None
    occurred_at: str


class StepCancelV1(Contract):
    """Cancel the script run of `ticket` (its process tree is killed; it finishes with -1)."""

    ticket: str
    task_id: str | None = None
    step_run_id: str | None = None
    reason: str | None = None
