"""What the gateway adds to /metrics: answers per upstream, audit writes that failed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.upstream_responses = Counter(
            "cephalo_gateway_upstream_responses_total",
            "Forwarded requests by upstream and outcome (status code, unavailable, timeout).",
            ["upstream", "outcome"],
            registry=registry,
        )
        self.audit_failures = Counter(
            "cephalo_gateway_audit_write_failures_total",
            "State-changing requests whose audit row could not be written.",
            registry=registry,
        )
