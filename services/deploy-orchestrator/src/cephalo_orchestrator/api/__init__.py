"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_orchestrator.api.routes import tasks

routers = [tasks.router]
