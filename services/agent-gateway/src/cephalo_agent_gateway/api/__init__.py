"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_agent_gateway.api.routes import (
    machine_policies,
    machines,
    script_runs,
    server,
    worker_pools,
    workers,
)

routers = [
    machines.router,
    workers.router,
    worker_pools.router,
    machine_policies.router,
    script_runs.router,
    server.router,
]
