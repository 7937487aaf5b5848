"""HTTP routes (thin: parse, call, render). The proxy's catch-all comes after every
gateway-owned `/api/v1` route, and the Octopus routes (`/api/{space}/…`) after it, so
`/api/v1/…` is never taken for a space called `v1`."""

from cephalo_gateway.api.routes import audit, docs, hooks, proxy, root, teams, users
from cephalo_gateway.octopus import routes as octopus

routers = [
    root.router,
    audit.router,
    docs.router,
    users.router,
    users.roles_router,
    teams.router,
    hooks.router,
    proxy.router,
    octopus.router,
]
