"""deploy-orchestrator's tests, mirroring `cephalo_orchestrator`.

A uniquely named package (not `tests/__init__.py`): under `--import-mode=importlib` every
service's `tests` package would share the module name `tests` and shadow the others.
"""
