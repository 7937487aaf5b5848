"""No request schemathesis generates from the merged OpenAPI document gets a 5xx from the
whole stack (five services as real processes, the bootstrap administrator's key, so
requests reach every upstream).

Bounded: a few derandomized examples per operation and a wall-clock budget, so the suite
costs about a minute even under load; operations the budget leaves out are named.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck

from cephalo_dev.stack import Stack

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(300)]

MAX_EXAMPLES = 2
BUDGET_SECONDS = 75.0


def test_no_generated_request_gets_a_server_error(
    whole_stack: Stack, merged_openapi: dict[str, Any]
) -> None:
    with httpx.Client(
        base_url=whole_stack.gateway_url, headers=whole_stack.auth_headers, timeout=30
    ) as client:
        schema = schemathesis.openapi.from_dict(merged_openapi)
        failures: list[str] = []
        done, left_out = 0, []
        deadline = time.monotonic() + BUDGET_SECONDS
        for result in schema.get_all_operations():
            operation = result.ok()
            if time.monotonic() > deadline:
                left_out.append(f"{operation.method.upper()} {operation.path}")
                continue

            @hypothesis.given(case=operation.as_strategy())
            @hypothesis.settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            def call(case: schemathesis.Case) -> None:
                kwargs = case.as_transport_kwargs(base_url=whole_stack.gateway_url)
                kwargs.pop("cookies", None)
                if isinstance(kwargs.get("data"), bytes | str):
                    kwargs["content"] = kwargs.pop("data")
                headers = {**(kwargs.pop("headers", None) or {}), **whole_stack.auth_headers}
                response = client.request(headers=headers, **kwargs)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {response.request.url}: "
                        f"{response.status_code} {response.text[:300]}"
                    )

            call()
            done += 1
    assert failures == []
    assert done >= 100, f"the budget left out {left_out}"
