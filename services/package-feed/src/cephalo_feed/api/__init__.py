"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_feed.api.routes import packages

routers = [packages.router]
