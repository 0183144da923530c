"""Local days in the engine: offsets across daylight saving, and dates from day numbers, against
Python's own calendar and time zones."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from spillover.engine import write_table
from spillover.impact.calendar import Calendar, date_of, day_number, utc_offsets

UTC = dt.timezone.utc


def test_offsets_change_at_the_zones_transitions():
    offsets = utc_offsets("America/New_York", dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 12, 31, tzinfo=UTC))
    # EST before 10 March 2024 07:00 UTC, EDT until 3 November 06:00 UTC, EST after.
    assert [shift for _, shift in offsets] == [-5 * 3600, -4 * 3600, -5 * 3600]
    assert [dt.datetime.fromtimestamp(start, UTC) for start, _ in offsets[1:]] == [
        dt.datetime(2024, 3, 10, 7, tzinfo=UTC), dt.datetime(2024, 11, 3, 6, tzinfo=UTC)
    ]
    assert utc_offsets("UTC", dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 1, tzinfo=UTC))[0][1] == 0
    kolkata = utc_offsets("Asia/Kolkata", dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 1, tzinfo=UTC))
    assert kolkata == ((kolkata[0][0], 19_800),)


def test_local_days_match_pandas_around_daylight_saving(duck):
    rng = np.random.default_rng(0)
    start = dt.datetime(2023, 12, 20, tzinfo=UTC)
    seconds = np.concatenate([
        rng.integers(0, 400 * 86_400, 3000),
        # the hours around both 2024 transitions, second by second at the edges
        np.arange(-7200, 7200, 97) + int((dt.datetime(2024, 3, 10, 7, tzinfo=UTC) - start).total_seconds()),
        np.arange(-7200, 7200, 97) + int((dt.datetime(2024, 11, 3, 6, tzinfo=UTC) - start).total_seconds()),
    ])
    instants = pd.Series(pd.to_datetime(int(start.timestamp()) + seconds, unit="s", utc=True))
    write_table(duck, "instants", pd.DataFrame({"moment": instants}))
    calendar = Calendar.spanning("America/New_York", instants.min().to_pydatetime(), instants.max().to_pydatetime())
    table = duck.table("instants")
    got = table.select("moment", day=calendar.day(table.moment)).to_pandas()
    expected = pd.to_datetime(got.moment, utc=True).dt.tz_convert("America/New_York").dt.date.map(day_number)
    assert (got.day == expected).all()


def test_dates_and_months_from_day_numbers(duck):
    days = list(range(day_number(dt.date(1999, 12, 1)), day_number(dt.date(2041, 3, 2))))
    write_table(duck, "days", pd.DataFrame({"day": days}))
    table = duck.table("days")
    year, month, day_of_month = Calendar.civil(table.day)
    got = table.select("day", year=year, month=month, day_of_month=day_of_month,
                       date=Calendar.date(table.day), months=Calendar.month(table.day)).to_pandas()
    expected = [date_of(day) for day in got.day]
    assert list(zip(got.year, got.month, got.day_of_month)) == [(d.year, d.month, d.day) for d in expected]
    assert list(pd.to_datetime(got.date).dt.date) == expected
    assert list(got.months) == [(d.year - 1970) * 12 + d.month - 1 for d in expected]


def test_complete_months_lie_wholly_inside_the_data():
    def calendar(first: str, last: str) -> Calendar:
        return Calendar("UTC", day_number(dt.date.fromisoformat(first)), day_number(dt.date.fromisoformat(last)), ((0, 0),))

    assert calendar("2024-01-01", "2024-02-29").complete_months() == [648, 649]
    assert calendar("2024-01-02", "2024-02-28").complete_months() == []
    assert calendar("2023-12-31", "2024-03-31").complete_months() == [648, 649, 650]
