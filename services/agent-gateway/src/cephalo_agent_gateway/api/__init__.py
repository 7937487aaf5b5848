"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_agent_gateway.api.routes import machines, server

routers = [machines.router, server.router]
