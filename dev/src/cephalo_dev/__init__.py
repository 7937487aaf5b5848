"""Developer tooling: the embedded stack runner behind `make run`, and the demo seed."""
