"""HTTP routes (thin: parse, call the domain, render)."""

from cephalo_feed.api.routes import content, packages, push

routers = [push.router, content.router, packages.router]
