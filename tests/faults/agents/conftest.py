"""Fault suites of the agent protocol: the fixtures of agent-gateway's own tests."""

from cephalo_agent_gateway.testing.fixtures import (  # noqa: F401 - pytest finds them by name
    database,
    events,
    gateway_settings,
    orchestrator,
    real_agents,
    release_url,
    serve_another_gateway,
    served,
    space,
)
