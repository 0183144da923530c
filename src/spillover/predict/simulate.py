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


def simulate_transactions(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    days: int,
    start: str = "2024-01-01",
    p: float = 6.0,
    q: float = 3.8,
    v: float = 15.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Dated purchases of ``n_customers`` over ``days`` days, from BG/NBD and Gamma-Gamma in days.

    Each customer's first purchase falls on a uniform day of the window (at a uniform time of day);
    repeat purchases follow as in :func:`simulate_rfm` (Poisson rate lambda per day, drop-out after
    the J-th repeat purchase), and each purchase's amount is Gamma(p, rate nu). Columns
    ``customer_id``, ``purchased_at``, ``amount``, in time order per customer.
    """
    if n_customers < 1 or days < 1:
        raise SpilloverInputError("simulate_transactions: n_customers and days must be at least 1")
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1.0 / alpha, n_customers)
    dropout = np.clip(rng.beta(a, b, n_customers), 1e-12, 1.0)
    scale = rng.gamma(q, 1.0 / v, n_customers)
    birth = rng.integers(0, days, n_customers) + rng.uniform(0, 1, n_customers)
    window = days - birth
    arrivals = rng.poisson(rate * window)
    kept = np.minimum(arrivals, rng.geometric(dropout))
    owner = np.repeat(np.arange(n_customers), arrivals)
    offsets = rng.uniform(0, 1, len(owner)) * window[owner]
    order = np.lexsort((offsets, owner))
    owner, offsets = owner[order], offsets[order]
    first_of_owner = np.concatenate([[0], np.cumsum(arrivals)[:-1]])
    rank = np.arange(len(owner)) - first_of_owner[owner]
    keep = rank < kept[owner]
    owner = np.concatenate([np.arange(n_customers), owner[keep]])
    moment = np.concatenate([birth, birth[owner[n_customers:]] + offsets[keep]])
    order = np.lexsort((moment, owner))
    owner, moment = owner[order], moment[order]
    amount = rng.gamma(p, 1.0 / scale[owner])
    stamps = pd.Timestamp(start) + pd.to_timedelta(np.round(moment * 86_400), unit="s")
    return pd.DataFrame({"customer_id": owner, "purchased_at": stamps, "amount": np.round(amount, 2)})
