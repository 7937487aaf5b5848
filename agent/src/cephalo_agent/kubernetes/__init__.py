"""Kubernetes steps on a worker: apply raw YAML with server-side apply, wait for rollout.

Not part of the standalone runner bundle (it needs kubernetes-asyncio): the step runner
imports it only for a Kubernetes action, so these steps run on workers with the agent.
"""
