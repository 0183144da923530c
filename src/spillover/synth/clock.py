"""The simulation calendar: property-time-zone days, their exact UTC spans, and the retail seasons.

A simulated day is a local calendar day of the GA4 property (America/New_York). Its UTC span is taken
from the time-zone database, so every event's ``event_date`` is its local date across DST changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

PROPERTY_TIMEZONE = "America/New_York"
DEFAULT_START = dt.date(2024, 1, 1)

#: Demand multiplier by calendar month (January first): a quiet start of the year, a holiday peak.
MONTH_DEMAND = np.array([0.85, 0.85, 0.95, 0.95, 1.0, 1.0, 1.05, 1.0, 0.95, 1.0, 1.25, 1.5])
#: Demand multiplier by weekday (Monday first).
WEEKDAY_DEMAND = np.array([0.95, 0.95, 0.97, 0.98, 1.02, 1.08, 1.05])
#: The whole ecosystem grows by this share per year (a common calendar trend).
YEARLY_GROWTH = 0.08


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def promotion_dates(year: int) -> list[dt.date]:
    """A two-day summer sale (second Tuesday of July) and Black Friday to Cyber Monday."""
    summer = _nth_weekday(year, 7, 1, 2)
    black_friday = _nth_weekday(year, 11, 3, 4) + dt.timedelta(days=1)
    return [summer, summer + dt.timedelta(days=1)] + [black_friday + dt.timedelta(days=k) for k in range(4)]


@dataclass(frozen=True)
class Calendar:
    """``days`` written days from ``start``, followed by ``future_days`` simulated for the truth only."""

    start: dt.date
    days: int
    future_days: int
    timezone: str = PROPERTY_TIMEZONE
    day_start_us: np.ndarray = field(init=False, repr=False)
    demand: np.ndarray = field(init=False, repr=False)
    is_promotion: np.ndarray = field(init=False, repr=False)
    dates: list[dt.date] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        zone = ZoneInfo(self.timezone)
        total = self.days + self.future_days
        dates = [self.start + dt.timedelta(days=k) for k in range(total + 1)]
        starts = np.array(
            [int(dt.datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()) * 1_000_000 for d in dates],
            dtype=np.int64,
        )
        promos = {p for year in range(self.start.year, dates[-1].year + 1) for p in promotion_dates(year)}
        months = np.array([d.month - 1 for d in dates[:total]])
        weekdays = np.array([d.weekday() for d in dates[:total]])
        trend = 1.0 + YEARLY_GROWTH * np.arange(total) / 365.0
        object.__setattr__(self, "dates", dates[:total])
        object.__setattr__(self, "day_start_us", starts)
        object.__setattr__(self, "demand", MONTH_DEMAND[months] * WEEKDAY_DEMAND[weekdays] * trend)
        object.__setattr__(self, "is_promotion", np.array([d in promos for d in dates[:total]]))

    @property
    def total_days(self) -> int:
        return self.days + self.future_days

    def day_span_us(self, day: int) -> tuple[int, int]:
        """UTC microseconds of the day's local midnight and of the next one (23, 24 or 25 hours)."""
        return int(self.day_start_us[day]), int(self.day_start_us[day + 1])

    def local_to_utc_us(self, day: int, fraction_of_day: np.ndarray) -> np.ndarray:
        """UTC microseconds for local times given as fractions of the day's real length."""
        start, end = self.day_span_us(day)
        return start + np.floor(np.asarray(fraction_of_day) * (end - start)).astype(np.int64)

    def compact(self, day: int) -> str:
        return self.dates[day].strftime("%Y%m%d")

    def iso(self, day: int) -> str:
        return self.dates[day].isoformat()
