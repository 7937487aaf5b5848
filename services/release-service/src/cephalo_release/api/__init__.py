"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_release.api.routes import (
    channels,
    dashboard,
    deployments,
    environments,
    lifecycles,
    package_references,
    project_groups,
    projects,
    releases,
    spaces,
    triggers,
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
    package_references.router,
    deployments.router,
    dashboard.router,
    variables.router,
    triggers.router,
]
