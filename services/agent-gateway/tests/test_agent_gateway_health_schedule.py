"""Health checks on a cron schedule per machine policy, besides the interval (as in Octopus).

The schedule is pure (`next_check_at(schedule, now)`); the monitor takes its clock as an
argument, so the tests fix "now" instead of waiting for a cron time to come.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cephalo_agent_gateway.db.models import Machine
from cephalo_agent_gateway.domain.health import HealthChecker, HealthMonitor, HealthSettings
from cephalo_agent_gateway.domain.health_schedule import (
    HealthCheckSchedule,
    Schedule,
    next_check_at,
    validate,
)
from cephalo_agent_gateway.testing.harness import Space, unique
from cephalo_common.errors import Invalid

CRON = HealthCheckSchedule.CRON


@pytest.mark.parametrize(
    ("schedule", "now", "expected"),
    [
        (
            Schedule(HealthCheckSchedule.INTERVAL, 600),
            datetime(2026, 5, 1, 10, 0, 30, tzinfo=UTC),
            datetime(2026, 5, 1, 10, 10, 30, tzinfo=UTC),
        ),
        (
            Schedule(CRON, 3600, "*/15 * * * *"),
            datetime(2026, 5, 1, 10, 7, tzinfo=UTC),
            datetime(2026, 5, 1, 10, 15, tzinfo=UTC),
        ),
        (  # strictly after now: a check that just ran is not due again at once
            Schedule(CRON, 3600, "*/15 * * * *"),
            datetime(2026, 5, 1, 10, 15, tzinfo=UTC),
            datetime(2026, 5, 1, 10, 30, tzinfo=UTC),
        ),
        (  # six fields: seconds first
            Schedule(CRON, 3600, "30 0 * * * *"),
            datetime(2026, 5, 1, 10, 0, 31, tzinfo=UTC),
            datetime(2026, 5, 1, 11, 0, 30, tzinfo=UTC),
        ),
        (  # 03:00 in Zurich is 01:00 UTC in summer (CEST) ...
            Schedule(CRON, 3600, "0 3 * * *", "Europe/Zurich"),
            datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
            datetime(2026, 7, 2, 1, 0, tzinfo=UTC),
        ),
        (  # ... and 02:00 UTC in winter (CET)
            Schedule(CRON, 3600, "0 3 * * *", "Europe/Zurich"),
            datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
            datetime(2026, 12, 2, 2, 0, tzinfo=UTC),
        ),
        (  # weekdays only: Friday evening → Monday morning
            Schedule(CRON, 3600, "0 8 * * 1-5"),
            datetime(2026, 5, 1, 18, 0, tzinfo=UTC),  # a Friday
            datetime(2026, 5, 4, 8, 0, tzinfo=UTC),
        ),
    ],
)
def test_next_check_time(schedule: Schedule, now: datetime, expected: datetime) -> None:
    validate(schedule)
    assert next_check_at(schedule, now) == expected


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (Schedule(CRON, 60, None), "body.health_check_cron"),
        (Schedule(CRON, 60, "every hour"), "body.health_check_cron"),
        (Schedule(CRON, 60, "61 * * * *"), "body.health_check_cron"),
        (Schedule(CRON, 60, "* * *"), "body.health_check_cron"),
        (Schedule(CRON, 60, "0 3 * * *", "Mars/Olympus"), "body.health_check_cron_timezone"),
        (Schedule(CRON, 60, "0 3 * * *", "../etc/passwd"), "body.health_check_cron_timezone"),
    ],
)
def test_invalid_cron_schedules_are_refused(schedule: Schedule, field: str) -> None:
    with pytest.raises(Invalid) as raised:
        validate(schedule)
    assert raised.value.errors[0]["field"] == field


async def _policy(http: Any, space: Space, **fields: Any) -> Any:
    return await http.post(
        f"/api/v1/spaces/{space.id}/machine-policies", json={"name": unique("cron"), **fields}
    )


async def _next_at(served: Any, machine_id: str) -> datetime | None:
    async with served.app.state.runtime.sessionmaker() as session:
        found = await session.scalar(
            select(Machine.health_next_at).where(Machine.id == uuid.UUID(machine_id))
        )
    return found


async def test_cron_policies_through_the_api(served: Any, space: Space) -> None:
    async with served.client() as http:
        created = await _policy(
            http,
            space,
            health_check_schedule="Cron",
            health_check_cron="0 3 * * *",
            health_check_cron_timezone="Europe/Zurich",
        )
        no_expression = await _policy(http, space, health_check_schedule="Cron")
        bad_expression = await _policy(
            http, space, health_check_schedule="Cron", health_check_cron="0 25 * * *"
        )
        bad_zone = await _policy(
            http,
            space,
            health_check_schedule="Cron",
            health_check_cron="0 3 * * *",
            health_check_cron_timezone="Nowhere/Land",
        )
        unknown_kind = await _policy(http, space, health_check_schedule="Sometimes")
        listed = await http.get(f"/api/v1/spaces/{space.id}/machine-policies")
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["health_check_schedule"], body["health_check_cron"]) == ("Cron", "0 3 * * *")
    assert body["health_check_cron_timezone"] == "Europe/Zurich"
    for refused in (no_expression, bad_expression, bad_zone, unknown_kind):
        assert refused.status_code == 422, refused.text
    names = {policy["name"] for policy in listed.json()}
    assert body["name"] in names and len(names) == len(listed.json())  # nothing half-written
    default = next(p for p in listed.json() if p["is_default"])
    assert default["health_check_schedule"] == "Interval"


async def test_switching_a_policy_to_cron_reschedules_its_machines(
    served: Any, space: Space, real_agents: Any
) -> None:
    agent = await real_agents(served, space, start=False)
    async with served.client() as http:
        policy = (await _policy(http, space, health_check_interval_seconds=3600)).json()
        await http.patch(
            f"/api/v1/spaces/{space.id}/machines/{agent.machine_id}",
            json={"machine_policy_id": policy["id"]},
        )
        before = datetime.now(UTC)
        response = await http.put(
            f"/api/v1/spaces/{space.id}/machine-policies/{policy['id']}",
            json={
                "name": policy["name"],
                "health_check_schedule": "Cron",
                "health_check_cron": "0 0 1 1 *",  # once a year, at New Year
            },
        )
        refused = await http.put(
            f"/api/v1/spaces/{space.id}/machine-policies/{policy['id']}",
            json={"name": policy["name"], "health_check_schedule": "Cron"},
        )
    assert response.status_code == 200, response.text
    assert refused.status_code == 422
    next_at = await _next_at(served, agent.machine_id)
    assert next_at == datetime(before.year + 1, 1, 1, tzinfo=UTC)


async def test_the_monitor_schedules_the_next_check_from_the_cron_on_its_clock(
    served: Any, space: Space, real_agents: Any
) -> None:
    """A connectivity check against a real agent; 'now' is fixed at 10:07 on a Friday."""
    agent = await real_agents(served, space)
    now = datetime(2026, 5, 1, 10, 7, tzinfo=UTC)
    sessionmaker = served.app.state.runtime.sessionmaker
    monitor = HealthMonitor(
        sessionmaker,
        HealthChecker(served.gateway.transport),
        HealthSettings(scan_seconds=3600, max_concurrency=1, history_limit=10),
        clock=lambda: now,
    )
    async with served.client() as http:
        weekdays = (
            await _policy(
                http, space, health_check_schedule="Cron", health_check_cron="30 8-17 * * 1-5"
            )
        ).json()
        hourly = (await _policy(http, space, health_check_interval_seconds=3600)).json()
        results = []
        for policy in (weekdays, hourly):
            await http.patch(
                f"/api/v1/spaces/{space.id}/machines/{agent.machine_id}",
                json={"machine_policy_id": policy["id"]},
            )
            check = await monitor.check_now(uuid.UUID(agent.machine_id))
            assert check is not None
            results.append((check.status, await _next_at(served, agent.machine_id)))
    assert results == [
        ("Healthy", datetime(2026, 5, 1, 10, 30, tzinfo=UTC)),
        ("Healthy", now + timedelta(hours=1)),
    ]
