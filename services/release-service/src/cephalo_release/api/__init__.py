"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_release.api.routes import (
    channels,
    dashboard,
    deployments,
    environments,
    lifecycles,
    project_groups,
    projects,
    releases,
    spaces,
    variables,
)

routers = [
    spaces.router,
    environments.router,
    lifecycles.router,
    project_groups.router,
    projects.router,
    channels.router,
    releases.router,
    deployments.router,
    dashboard.router,
    variables.router,
]
