"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_agent_gateway.api.routes import (
    machine_policies,
    machines,
    script_runs,
    server,
    ssh_targets,
    worker_pools,
    workers,
)

routers = [
    ssh_targets.router,  # before machines: POST /ssh is not a machine id
    machines.router,
    workers.router,
    worker_pools.router,
    machine_policies.router,
    script_runs.router,
    server.router,
]
