"""The coverage study's summary, by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from spillover.synth.coverage import summarise


def test_summary_counts_coverage_and_compares_the_mean_error_with_the_naive_one():
    scores = pd.DataFrame({
        "product_id": ["G001", "G001", "G002", "G002"],
        "horizon_days": [90, 90, 90, 90],
        "covers": [True, False, True, True],
        "true_att": [10.0, 20.0, 1.0, 3.0],
        "error": [2.0, -6.0, 1.0, 1.0],
        "naive_error": [30.0, 50.0, 20.0, 20.0],
        "ci_low": [0.0, 0.0, -1.0, -1.0],
        "ci_high": [10.0, 20.0, 1.0, 3.0],
    })
    summary = summarise(scores).set_index("design")
    assert list(summary.index) == ["G001 90d", "G002 90d", "all"]
    assert summary.loc["G001 90d", "coverage"] == 0.5 and summary.loc["all", "coverage"] == 0.75
    assert summary.loc["G001 90d", "mean_error"] == -2.0
    assert summary.loc["G001 90d", "bias_share_of_naive_error"] == pytest.approx(2.0 / 40.0)
    assert summary.loc["all", "bias_share_of_naive_error"] == pytest.approx(0.5 / 30.0)
    assert summary.loc["G002 90d", "mean_ci_width"] == 3.0 and summary.loc["all", "intervals"] == 4
