"""The impact report renders rows a small warehouse leaves empty (a horizon too short to fit)."""

from __future__ import annotations

import math

import pandas as pd

from spillover.config import Config
from spillover.engine import connect
from spillover.impact.run import (
    ESTIMATE_COLUMNS, ESTIMATES, ESTIMATES_SCHEMA, EVENT_COLUMNS, EVENT_SCHEMA, EVENT_STUDY, PORTFOLIO,
    PORTFOLIO_COLUMNS, PORTFOLIO_SCHEMA, _arrow,
)
from spillover.report.impact_report import write_impact_report


def test_a_row_without_an_estimate_shows_n_a(tmp_path):
    con = connect("duckdb://")
    empty = dict.fromkeys(ESTIMATE_COLUMNS, math.nan)
    estimates = pd.DataFrame([
        {**empty, "product_id": "G001", "product_name": "Leaf e-Reader", "horizon_days": 90, "estimate": 12.5,
         "ci_low": 2.0, "ci_high": 23.0, "n_treated": 120, "n_control": 4000, "verdict": "inconclusive",
         "estimator_verdict": "reliable", "reasons": "the interval of the net value spans zero", "warnings": None},
        {**empty, "product_id": "G001", "product_name": "Leaf e-Reader", "horizon_days": 365,
         "verdict": "inconclusive", "estimator_verdict": None,
         "reasons": "no adopter has a complete 365-day window", "warnings": None},
    ])
    con.create_table(ESTIMATES, _arrow(estimates, ESTIMATES_SCHEMA))
    con.create_table(EVENT_STUDY, _arrow(pd.DataFrame(columns=EVENT_COLUMNS), EVENT_SCHEMA))
    portfolio = pd.DataFrame([{**dict.fromkeys(PORTFOLIO_COLUMNS, math.nan), "product_id": "G001",
                               "product_name": "Leaf e-Reader", "horizon_days": 90, "estimate": 12.5,
                               "verdict": "inconclusive", "note": None, "claims_exceed_portfolio": None}])
    con.create_table(PORTFOLIO, _arrow(portfolio, PORTFOLIO_SCHEMA))

    text = write_impact_report(con, Config(), tmp_path / "r.html").read_text()
    assert "120 / 4,000" in text and "n/a / n/a" in text
    assert "no adopter has a complete 365-day window" in text
    assert text.count('class="verdict-inconclusive"') == 3  # two horizons and the portfolio row
