"""Cephalo deploy-orchestrator: server tasks, step runs and task logs."""
