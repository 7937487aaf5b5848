"""Cron schedules with seconds (first field) in an IANA time zone, as Octopus writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

CRON_FIELDS = 6


def zone(name: str) -> ZoneInfo:
    """The time zone; ValueError when the name is not an IANA zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"{name!r} is not an IANA time zone") from error


def check_cron(expression: str) -> None:
    """ValueError unless `expression` is six cron fields, seconds first, that ever fire."""
    if len(expression.split()) != CRON_FIELDS:
        raise ValueError(
            f"{expression!r} must have six fields: second minute hour day month weekday"
        )
    try:
        croniter(expression, second_at_beginning=True).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as error:
        raise ValueError(f"{expression!r} is not a valid cron expression: {error}") from error


def next_fire(expression: str, timezone: str, after: datetime) -> datetime:
    """The first time strictly after `after` the schedule fires, in UTC (DST-aware)."""
    start = after.astimezone(zone(timezone))
    fired: datetime = croniter(expression, start, second_at_beginning=True).get_next(datetime)
    return fired.astimezone(UTC)
