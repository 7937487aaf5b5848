"""Fixtures: the real release-service on a free port, a gateway per test, real agents, NATS.

They live in `cephalo_agent_gateway.testing.fixtures` so that the fault and bench suites
under `tests/` use the very same ones.
"""

from cephalo_agent_gateway.testing.fixtures import (  # noqa: F401 - pytest finds them by name
    agent,
    database,
    events,
    gateway,
    gateway_settings,
    orchestrator,
    real_agents,
    release_url,
    serve_another_gateway,
    served,
    space,
)
from cephalo_agent_gateway.testing.sshd import client_key, package_server, sshd  # noqa: F401
