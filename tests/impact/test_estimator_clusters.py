"""Design weights and cluster-robust standard errors of DownstreamImpact.

A customer repeated on several rows carries no more information than one row: clustering by
customer must give back (about) the single-row standard error, where the naive one shrinks by
sqrt(copies). Subsampling controls with inverse-rate weights must still cover the truth.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from spillover.errors import SpilloverInputError
from spillover.impact.estimators import DownstreamImpact
from tests.impact.known_truth import confounded


def _linear() -> DownstreamImpact:
    return DownstreamImpact(propensity_model=LogisticRegression(), outcome_model=LinearRegression())


def test_clustered_se_of_repeated_rows_equals_the_single_row_se():
    truth = confounded(3000, seed=3)
    single = _linear().fit(truth.covariates, truth.treatment, truth.outcome).result_
    copies = 3
    X = np.repeat(truth.covariates, copies, axis=0)
    d, y = np.repeat(truth.treatment, copies), np.repeat(truth.outcome, copies)
    customer = np.repeat(np.arange(len(truth.treatment)), copies)
    naive = _linear().fit(X, d, y).result_
    clustered = _linear().fit(X, d, y, groups=customer).result_
    # Linear nuisances on exact copies: the estimates agree to fold noise (tolerance 0.02 on ~2).
    assert clustered.estimate == pytest.approx(single.estimate, abs=0.02)
    # Clustering recovers the single-row se (within 5%); ignoring clusters understates it by √3.
    assert clustered.se == pytest.approx(single.se, rel=0.05)
    assert naive.se == pytest.approx(single.se / np.sqrt(copies), rel=0.05)


def test_clusters_stay_whole_across_folds():
    truth = confounded(600, seed=4)
    customer = np.arange(600) // 3
    model = DownstreamImpact()
    folds = model._folds(truth.covariates, truth.treatment, np.unique(customer, return_inverse=True)[1], 0)
    for train, test in folds:
        assert not set(customer[train]) & set(customer[test])
    # Every row is held out exactly once; treated clusters are dealt evenly over the folds.
    held_out = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(held_out), np.arange(600))
    treated_clusters = [len(set(customer[test][truth.treatment[test] == 1])) for _, test in folds]
    assert max(treated_clusters) - min(treated_clusters) <= 1
    clusters = [len(set(customer[test])) for _, test in folds]
    assert max(clusters) - min(clusters) <= 2
    again = model._folds(truth.covariates, truth.treatment, np.unique(customer, return_inverse=True)[1], 0)
    other = model._folds(truth.covariates, truth.treatment, np.unique(customer, return_inverse=True)[1], 1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))


def test_subsampled_controls_with_inverse_rate_weights_cover_the_truth():
    truth = confounded(8000, seed=5)
    rng = np.random.default_rng(0)
    rate = 0.3
    keep = (truth.treatment == 1) | (rng.random(len(truth.treatment)) < rate)
    weight = np.where(truth.treatment == 1, 1.0, 1.0 / rate)[keep]
    result = _linear().fit(truth.covariates[keep], truth.treatment[keep], truth.outcome[keep], sample_weight=weight).result_
    assert result.ci_low < truth.att < result.ci_high
    # The naive difference is weighted too: far above the ATT, as on the full table.
    full = _linear().fit(truth.covariates, truth.treatment, truth.outcome).result_
    assert result.naive_difference == pytest.approx(full.naive_difference, abs=0.25)


def test_bad_weights_and_groups_are_refused():
    truth = confounded(200, seed=6)
    with pytest.raises(SpilloverInputError, match="positive"):
        _linear().fit(truth.covariates, truth.treatment, truth.outcome, sample_weight=np.zeros(200))
    with pytest.raises(SpilloverInputError, match="one cluster label per row"):
        _linear().fit(truth.covariates, truth.treatment, truth.outcome, groups=np.arange(10))
