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

    @staticmethod
    def civil(day: ibis.IntegerValue) -> tuple[ibis.IntegerValue, ibis.IntegerValue, ibis.IntegerValue]:
        """``(year, month, day of month)`` of day number ``day``, in integer arithmetic (Hinnant's
        ``civil_from_days``), so no engine's session time zone can shift it. Days on or after
        0000-03-01."""
        shifted = day + 719_468
        era = shifted // 146_097
        day_of_era = shifted - era * 146_097
        year_of_era = (
            day_of_era - day_of_era // 1_460 + day_of_era // 36_524 - day_of_era // 146_096
        ) // 365
        day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
        march_based = (5 * day_of_year + 2) // 153
        day_of_month = day_of_year - (153 * march_based + 2) // 5 + 1
        month = ibis.ifelse(march_based < 10, march_based + 3, march_based - 9)
        year = year_of_era + era * 400 + ibis.ifelse(month <= 2, 1, 0)
        return year.cast("int64"), month.cast("int64"), day_of_month.cast("int64")

    @classmethod
    def date(cls, day: ibis.IntegerValue) -> ibis.DateValue:
        """The date of day number ``day``, in the engine."""
        year, month, day_of_month = cls.civil(day)
        return ibis.date(year, month, day_of_month)

    @classmethod
    def month(cls, day: ibis.IntegerValue) -> ibis.IntegerValue:
        """Months since 1970-01 of day number ``day``, in the engine."""
        year, month, _ = cls.civil(day)
        return ((year - 1970) * 12 + month - 1).cast("int64")

    def complete_months(self) -> list[int]:
        """Months (since 1970-01) whose every day lies inside the data."""
        first, last = date_of(self.first_day), date_of(self.last_day)
        months = []
        month = (first.year - 1970) * 12 + first.month - 1
        while month_start(month) <= last:
            if month_start(month) >= first and month_start(month + 1) - dt.timedelta(days=1) <= last:
                months.append(month)
            month += 1
        return months


def month_start(month: int) -> dt.date:
    """The first day of ``month`` (months since 1970-01)."""
    return dt.date(1970 + month // 12, month % 12 + 1, 1)
