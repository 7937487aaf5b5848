"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_release.api.routes import deployments, environments, projects, releases, spaces

routers = [
    spaces.router,
    environments.router,
    projects.router,
    releases.router,
    deployments.router,
]
