"""When a machine's next health check is due, as its machine policy schedules it.

Like Octopus's machine policies, a policy checks either every `interval` seconds after the
last check, or at the times of a cron expression (5 fields, or 6 with seconds first)
evaluated in the policy's time zone, so "0 3 * * *" in Europe/Zurich means 03:00 there
across daylight-saving changes. Pure functions: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from cephalo_common.errors import Invalid


class HealthCheckSchedule(StrEnum):
    INTERVAL = "Interval"
    CRON = "Cron"


@dataclass(frozen=True)
class Schedule:
    kind: HealthCheckSchedule
    interval_seconds: int
    cron: str | None = None
    timezone: str = "UTC"


def validate(schedule: Schedule) -> None:
    """422 for a cron schedule without a valid expression or with an unknown time zone."""
    if schedule.kind is not HealthCheckSchedule.CRON:
        return
    if not schedule.cron or not _valid_cron(schedule.cron):
        raise Invalid(
            f"not a valid cron expression: {schedule.cron!r}",
            errors=[
                {
                    "field": "body.health_check_cron",
                    "message": "5 fields (minute hour day month weekday), or 6 with seconds first",
                }
            ],
        )
    _zone(schedule.timezone)


def next_check_at(schedule: Schedule, now: datetime) -> datetime:
    """The first due time strictly after `now` (an aware datetime), in UTC."""
    if schedule.kind is HealthCheckSchedule.CRON and schedule.cron:
        local = now.astimezone(_zone(schedule.timezone))
        following = croniter(
            schedule.cron, local, second_at_beginning=_has_seconds(schedule.cron)
        ).get_next(datetime)
        if not isinstance(following, datetime):
            raise TypeError("croniter returned no datetime")
        return following.astimezone(UTC)
    return now + timedelta(seconds=schedule.interval_seconds)


def _has_seconds(expression: str) -> bool:
    return len(expression.split()) == 6


def _valid_cron(expression: str) -> bool:
    fields = expression.split()
    if len(fields) not in (5, 6):
        return False
    return bool(croniter.is_valid(expression, second_at_beginning=len(fields) == 6))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise Invalid(
            f"unknown time zone {name!r}",
            errors=[{"field": "body.health_check_cron_timezone", "message": "an IANA time zone"}],
        ) from error
