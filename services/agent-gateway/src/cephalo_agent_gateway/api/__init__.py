"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_agent_gateway.api.routes import (
    machine_policies,
    machines,
    offline_drops,
    script_runs,
    server,
    ssh_targets,
    worker_pools,
    workers,
)

routers = [
    ssh_targets.router,  # before machines: POST /ssh is not a machine id
    offline_drops.router,
    machines.router,
    workers.router,
    worker_pools.router,
    machine_policies.router,
    script_runs.router,
    server.router,
]
