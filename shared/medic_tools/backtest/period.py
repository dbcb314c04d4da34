"""The period a backtest replays: `--since` and `--until`, each a duration back from now or an ISO date/time.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
>>> parse_moment("30d", now).isoformat()
'2026-11-04T12:00:00+00:00'
>>> parse_moment("2026-11-27T09:30", now).isoformat()
'2026-11-27T09:30:00+00:00'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from medic.errors import InputError

SOURCE: Final = "backtest"
_DURATION: Final = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
#: How long CloudWatch keeps datapoints of a 60-second period (CloudWatch concepts, "Metrics retention": 15 days);
#: the facts read 60-second periods, so a transition older than this finds none of them.
ONE_MINUTE_RETENTION: Final = timedelta(days=15)


def parse_moment(text: str, now: datetime, *, field: str = "--since") -> datetime:
    """A duration back from `now` (`90s`, `30m`, `12h`, `30d`, `2w`) or an ISO date/time (`2026-11-27`,
    `2026-11-27T09:30Z`, `2026-11-27T09:30+01:00`; no zone means UTC), as an aware UTC datetime. Anything else is an
    `InputError` naming `field`."""
    value = text.strip()
    duration = _DURATION.match(value.lower())
    if duration:
        return now.astimezone(UTC) - timedelta(seconds=int(duration.group(1)) * _SECONDS[duration.group(2)])
    try:
        when = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("z", "Z") else value)
    except ValueError:
        problem = f"{text!r} is neither a duration (12h, 30d, 2w) nor an ISO date/time (2026-11-27T09:30Z)"
        raise InputError(field=field, source=SOURCE, problem=problem) from None
    return when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """[since, until], both aware UTC."""

    since: datetime
    until: datetime

    @classmethod
    def parse(cls, since: str, until: str | None, now: datetime) -> Period:
        """`--since` and `--until` (default: now); `since` must come first, and neither after now."""
        end = parse_moment(until, now, field="--until") if until is not None else now.astimezone(UTC)
        start = parse_moment(since, now, field="--since")
        if end > now:
            raise InputError(field="--until", source=SOURCE, problem=f"{end:%Y-%m-%dT%H:%M:%SZ} is in the future")
        if start >= end:
            raise InputError(
                field="--since",
                source=SOURCE,
                problem=f"{start:%Y-%m-%dT%H:%M:%SZ} is not before --until ({end:%Y-%m-%dT%H:%M:%SZ})",
            )
        return cls(start, end)
