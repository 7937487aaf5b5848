"""deploy-orchestrator settings: env vars `CEPHALO_ORCHESTRATOR_…`."""

from __future__ import annotations

from pydantic import Field

from cephalo_common.settings import ServiceSettings, service_config


class OrchestratorSettings(ServiceSettings):
    model_config = service_config("orchestrator")

    port: int = Field(8082, ge=0, le=65535)
    agent_gateway_url: str = Field(
        "http://127.0.0.1:8084",
        description="agent-gateway's internal base URL, asked for each step's machines.",
    )
    agent_gateway_timeout_seconds: float = Field(
        5.0, gt=0, description="Per request to agent-gateway (connect and read)."
    )
    package_feed_url: str = Field(
        "http://127.0.0.1:8083",
        description="package-feed's internal base URL, asked for each package step's download "
        "link, SHA-256 and size.",
    )
    package_download_base_url: str | None = Field(
        None,
        description="The feed's address as targets reach it, put before a relative download "
        "link (package-feed without a public base URL); package_feed_url when unset.",
    )
    package_feed_timeout_seconds: float = Field(
        10.0, gt=0, description="Per request to package-feed (connect and read)."
    )
    step_start_retry_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a step keeps retrying an unreachable agent-gateway before the "
        "task fails.",
    )
    task_poll_seconds: float = Field(
        0.5, gt=0, description="How often the task runner looks for queued tasks and due steps."
    )
    max_concurrent_tasks: int = Field(
        20, ge=1, description="Executing tasks this instance starts at most (no global cap)."
    )
    metrics_refresh_seconds: float = Field(
        5.0, gt=0, description="How often the tasks-by-state gauge is read from the database."
    )
    max_parallel_steps: int = Field(
        10, ge=1, description="Steps of one parallel group (start with previous) running at once."
    )
    max_parallel_targets: int = Field(
        10,
        ge=1,
        description="Targets one step runs on at once, unless the step sets max_parallelism.",
    )
    log_catch_up_seconds: float = Field(
        30.0,
        gt=0,
        description="How long a verdict waits for the log lines it announces before it is "
        "applied anyway (with a line saying the log is incomplete).",
    )
    cancel_grace_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a cancelled task waits for its running steps to stop before it "
        "abandons them and ends Canceled.",
    )
    sweep_seconds: float = Field(
        10.0,
        gt=0,
        description="How often the runner looks for running tasks that wait on nothing.",
    )
    step_timeout_seconds: int | None = Field(
        None,
        gt=0,
        description="How long a script may run when its step sets no timeout_seconds; it then "
        "ends TimedOut. None: no limit.",
    )
    lease_seconds: float = Field(
        30.0,
        gt=0,
        description="How long an instance holds a running task without renewing it (it renews "
        "every third of this); another instance adopts a task whose lease ran out.",
    )
    lost_dispatch_seconds: float = Field(
        60.0,
        gt=0,
        description="How long after its dispatch was sent a step run unknown to agent-gateway "
        "is given up as lost (it fails with reason orchestrator-lost).",
    )
