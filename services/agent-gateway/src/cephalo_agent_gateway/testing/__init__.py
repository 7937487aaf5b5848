"""Test support for agent-gateway and the suites that drive it (e2e, faults).

`FakeAgent` is a minimal polling agent over real mutual TLS with scripted answers;
`harness` runs a gateway in-process and plays the orchestrator's part on NATS.
"""
