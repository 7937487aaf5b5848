"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_orchestrator.api.routes import interruptions, plans, tasks

routers = [tasks.router, interruptions.router, plans.router]
