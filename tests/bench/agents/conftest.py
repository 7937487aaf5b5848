"""The agent swarm's own check: agent-gateway's fixtures, and `tests/bench` importable."""

import sys
from pathlib import Path

from cephalo_agent_gateway.testing.fixtures import (  # noqa: F401 - pytest finds them by name
    database,
    events,
    gateway_settings,
    orchestrator,
    release_url,
    served,
    space,
)

BENCH = str(Path(__file__).resolve().parent.parent)
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)
