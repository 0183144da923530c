"""Simulated flat tables with a known effect: confounded adoption, heterogeneous effects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class KnownTruth:
    covariates: np.ndarray
    treatment: np.ndarray
    outcome: np.ndarray
    pre_outcome: np.ndarray
    att: float
    ate: float

    def frame(self) -> pd.DataFrame:
        table = pd.DataFrame(self.covariates, columns=[f"x{i}" for i in range(self.covariates.shape[1])])
        return table.assign(bought=self.treatment, margin=self.outcome, margin_before=self.pre_outcome)


def confounded(n: int, seed: int, *, hidden: float = 0.0) -> KnownTruth:
    """Heavy shoppers (high x0) adopt more and spend more anyway; the effect grows with x0.

    The effect is τ(x) = 1.5 + 0.5 x0; ``att`` and ``ate`` are its sample means over the treated and
    over everyone. ``hidden`` adds an unobserved trait that raises adoption and both outcomes,
    which a placebo (``pre_outcome``, untouched by treatment) must expose.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    unobserved = rng.normal(size=n)
    logit = x[:, 0] + 0.5 * x[:, 1] + hidden * unobserved
    treatment = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    effect = 1.5 + 0.5 * x[:, 0]
    baseline = 2.0 * x[:, 0] + x[:, 1] + hidden * unobserved
    outcome = baseline + treatment * effect + rng.normal(size=n)
    pre_outcome = baseline + rng.normal(size=n)
    return KnownTruth(x, treatment, outcome, pre_outcome, float(effect[treatment == 1].mean()), float(effect.mean()))
