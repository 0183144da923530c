"""Local calendar days in the engine: each instant's day in the GA4 property's time zone, as an integer.

Ibis has no time-zone conversion and engines disagree on theirs, so the zone's UTC offsets over the
data's range are worked out here in Python and applied as a CASE over epoch seconds. Days are integers
(days since 1970-01-01, local), so windows are plain arithmetic on every engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import ibis
import pandas as pd

SECONDS_PER_DAY = 86_400
EPOCH = dt.date(1970, 1, 1)
#: Steps in which the zone's offset is probed; offsets never change twice within one.
_PROBE_SECONDS = 6 * 3600


def _offset(zone: ZoneInfo, seconds: int) -> int:
    offset = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def utc_offsets(timezone: str, start: dt.datetime, end: dt.datetime) -> tuple[tuple[int, int], ...]:
    """``(from_epoch_second, offset_seconds)`` for every offset ``timezone`` uses from ``start`` to
    ``end`` (a day of margin either side), in time order; the first applies before the range too."""
    zone = ZoneInfo(timezone)
    second = int(start.timestamp()) - 2 * SECONDS_PER_DAY
    last = int(end.timestamp()) + 2 * SECONDS_PER_DAY
    spans = [(second, _offset(zone, second))]
    while second < last:
        probe = second + _PROBE_SECONDS
        if _offset(zone, probe) != spans[-1][1]:
            before, after = second, probe
            while after - before > 1:  # the exact second the offset changes
                middle = (before + after) // 2
                if _offset(zone, middle) == spans[-1][1]:
                    before = middle
                else:
                    after = middle
            spans.append((after, _offset(zone, after)))
        second = probe
    return tuple(spans)


def day_number(date: dt.date) -> int:
    """Days from 1970-01-01 to ``date``."""
    return (date - EPOCH).days


def date_of(day: int) -> dt.date:
    """The date of day number ``day``."""
    return EPOCH + dt.timedelta(days=int(day))


@dataclass(frozen=True)
class Calendar:
    """The data's local calendar: its time zone, its first and last local day, and the zone's offsets.

    ``last_day`` is the day of the latest GA4 event or order (the profiles' ``as_of``): a window
    ``(index, index + H]`` is fully observed when ``index + H <= last_day``.
    """

    timezone: str
    first_day: int
    last_day: int
    offsets: tuple[tuple[int, int], ...]

    @classmethod
    def spanning(cls, timezone: str, first: dt.datetime, last: dt.datetime) -> Calendar:
        """The calendar of data from instant ``first`` to instant ``last`` (UTC-aware)."""
        offsets = utc_offsets(timezone, first, last)
        zone = ZoneInfo(timezone)
        return cls(
            timezone=timezone,
            first_day=day_number(first.astimezone(zone).date()),
            last_day=day_number(last.astimezone(zone).date()),
            offsets=offsets,
        )

    def day(self, moment: ibis.TimestampValue) -> ibis.IntegerValue:
        """The local day number of ``moment`` (a UTC timestamp column)."""
        seconds = moment.epoch_seconds()
        if len(self.offsets) == 1:
            offset: ibis.IntegerValue = ibis.literal(self.offsets[0][1])
        else:
            offset = ibis.cases(
                *((seconds >= start, shift) for start, shift in reversed(self.offsets[1:])),
                else_=self.offsets[0][1],
            )
        return ((seconds + offset) / SECONDS_PER_DAY).floor().cast("int64")

    def days(self) -> ibis.Table:
        """One row per local day of the data: ``day``, ``date``, ``month`` (months since 1970-01),
        ``month_of_year`` (1–12) and ``weekday`` (Monday 0)."""
        numbers = range(self.first_day, self.last_day + 1)
        dates = [date_of(n) for n in numbers]
        frame = pd.DataFrame({
            "day": pd.Series(list(numbers), dtype="int64"),
            "date": dates,
            "month": pd.Series([(d.year - 1970) * 12 + d.month - 1 for d in dates], dtype="int64"),
            "month_of_year": pd.Series([d.month for d in dates], dtype="int64"),
            "weekday": pd.Series([d.weekday() for d in dates], dtype="int64"),
        })
        return ibis.memtable(frame, schema={
            "day": "int64", "date": "date", "month": "int64", "month_of_year": "int64", "weekday": "int64"
        })

    def complete_months(self) -> list[int]:
        """Months (since 1970-01) whose every day lies inside the data."""
        first, last = date_of(self.first_day), date_of(self.last_day)
        months = []
        month = (first.year - 1970) * 12 + first.month - 1
        while True:
            start = dt.date(1970 + month // 12, month % 12 + 1, 1)
            following = dt.date(1970 + (month + 1) // 12, (month + 1) % 12 + 1, 1)
            if start > last:
                break
            if start >= first and following - dt.timedelta(days=1) <= last:
                months.append(month)
            month += 1
        return months


def month_start(month: int) -> dt.date:
    """The first day of ``month`` (months since 1970-01)."""
    return dt.date(1970 + month // 12, month % 12 + 1, 1)
