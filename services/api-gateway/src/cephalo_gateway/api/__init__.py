"""HTTP routes (thin: parse, call, render). The proxy's catch-all must come last."""

from cephalo_gateway.api.routes import audit, docs, proxy, root

routers = [root.router, audit.router, docs.router, proxy.router]
