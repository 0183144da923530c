"""Repeated-seed coverage study of the impact stage: for each seed, synthesise an ecosystem, load it
(GA4 for its first day only: the design reads orders), build the stages impact needs, estimate every
gateway product at the given horizons and score each estimate against the truth
(:func:`spillover.synth.scoring.impact_scores`). Summarises coverage of the 95% intervals, the mean
error, and the mean error of the naive "all post-purchase margin" beside it.

Run by ``tests/impact/test_coverage_study.py`` (marker ``slow``) and quoted in docs/methods.md.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd


def run_seed(
    seed: int, *, customers: int, days: int, horizons: Sequence[int], directory: Path
) -> list[dict[str, Any]]:
    """The scored estimates of one synthetic ecosystem (one row per product and horizon)."""
    from spillover.config import project_key
    from spillover.demo import synthesise_and_load
    from spillover.impact.run import run_impact
    from spillover.pipeline import run_pipeline
    from spillover.synth.scoring import impact_scores

    project = synthesise_and_load(
        directory, customers=customers, days=days, seed=seed, db=f"duckdb:///{directory / 'warehouse.duckdb'}",
        ga4_days=1,
    )
    try:
        run_pipeline(project.con, project.config, stages=["stage", "identity", "profiles"])
        run = run_impact(project.con, project.config, horizons=horizons, primary_horizon=max(horizons))
        scores = impact_scores(
            project.con, project.config, project.data_dir / "truth", project_key(project.config), run.estimates
        )
    finally:
        project.con.disconnect()
    return [{"seed": seed, **score} for score in scores]


def coverage_study(
    seeds: Iterable[int],
    *,
    customers: int = 2_000,
    days: int = 365,
    horizons: Sequence[int] = (90, 180),
    on_seed: Callable[[int, list[dict[str, Any]]], None] | None = None,
) -> pd.DataFrame:
    """Every seed's scored estimates, one row per seed, product and horizon; ``on_seed(seed, rows)``
    is called as each seed finishes (a study takes minutes per seed)."""
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix=f"spillover-coverage-{seed}-") as folder:
            scored = run_seed(seed, customers=customers, days=days, horizons=horizons, directory=Path(folder))
        rows += scored
        if on_seed is not None:
            on_seed(seed, scored)
    return pd.DataFrame(rows)


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """Per product and horizon, and overall: intervals, coverage, mean error of the estimate and of
    the naive figure, and the first as a share of the second."""
    groups = [(f"{p} {h}d", g) for (p, h), g in scores.groupby(["product_id", "horizon_days"])]
    rows = []
    for label, group in [*groups, ("all", scores)]:
        rows.append({
            "design": label,
            "intervals": len(group),
            "coverage": float(group.covers.mean()),
            "mean_true_att": float(group.true_att.mean()),
            "mean_error": float(group.error.mean()),
            "mean_naive_error": float(group.naive_error.mean()),
            "bias_share_of_naive_error": float(abs(group.error.mean()) / abs(group.naive_error.mean())),
            "mean_ci_width": float((group.ci_high - group.ci_low).mean()),
        })
    return pd.DataFrame(rows)
