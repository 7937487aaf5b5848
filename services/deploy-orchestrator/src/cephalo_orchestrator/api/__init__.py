"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_orchestrator.api.routes import plans, tasks

routers = [tasks.router, plans.router]
