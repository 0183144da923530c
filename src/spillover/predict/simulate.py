"""Draw RFM summaries from the BG/NBD and Gamma-Gamma models with known parameters.

Used to check that the fitters recover the parameters they were given (tests) and to time them on
large populations (``benchmarks/clv.py``). Synthetic data only; no person is behind any row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spillover.errors import SpilloverInputError

__all__ = ["simulate_rfm"]


def simulate_rfm(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    max_age: int,
    p: float | None = None,
    q: float | None = None,
    v: float | None = None,
    whole_periods: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """A summary of ``n_customers`` drawn from the BG/NBD model [FHL05, section 2].

    Each customer gets a purchase rate lambda ~ Gamma(r, rate alpha) and a drop-out probability
    p ~ Beta(a, b), and an age ``T`` uniform on 1..``max_age`` periods (cohorts acquired evenly).
    They make repeat purchases as a Poisson process and drop out right after the J-th repeat
    purchase, J ~ Geometric(p); so x = min(J, N(T)) and, given N(T) = n arrivals (uniform on (0, T]),
    the x-th arrival falls at T * Beta(x, n - x + 1). With ``whole_periods`` recency is rounded down
    to a whole period, as in a summary built from dated transactions.

    With ``p``, ``q``, ``v`` a ``monetary_value`` column is added from the Gamma-Gamma model: each
    customer's nu ~ Gamma(q, rate v) and the mean of x purchases ~ Gamma(p x, rate nu x).
    """
    if n_customers < 1 or max_age < 1:
        raise SpilloverInputError("simulate_rfm: n_customers and max_age must be at least 1")
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1.0 / alpha, n_customers)
    dropout = rng.beta(a, b, n_customers)
    age = rng.integers(1, max_age + 1, n_customers).astype(float)
    arrivals = rng.poisson(rate * age)
    purchases_before_dropout = rng.geometric(np.clip(dropout, 1e-12, 1.0))
    x = np.minimum(arrivals, purchases_before_dropout)
    recency = np.zeros(n_customers)
    repeat = x > 0
    recency[repeat] = age[repeat] * rng.beta(x[repeat], arrivals[repeat] - x[repeat] + 1)
    if whole_periods:
        recency = np.floor(recency)
    summary = pd.DataFrame({"frequency": x.astype("int64"), "recency": recency, "T": age})
    if p is not None and q is not None and v is not None:
        scale = rng.gamma(q, 1.0 / v, n_customers)
        spend = np.zeros(n_customers)
        spend[repeat] = rng.gamma(p * x[repeat], 1.0 / (scale[repeat] * x[repeat]))
        summary["monetary_value"] = spend
    return summary
