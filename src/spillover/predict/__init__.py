"""Predictions about customers: lifetime value, purchase and churn probabilities.

:mod:`~spillover.predict.rfm` turns a transactions table into the per-customer RFM summary
(frequency, recency, T, monetary value) and checks its contract; :mod:`~spillover.predict.clv`
fits the BG/NBD purchase model and the Gamma-Gamma spend model to it and predicts expected
purchases, the probability that a customer is still active, and discounted customer lifetime value;
:mod:`~spillover.predict.pareto_nbd` offers Pareto/NBD as the alternative purchase model. The models
are scikit-learn estimators; :mod:`~spillover.predict.mle` holds their shared fitting code,
:mod:`~spillover.predict.simulate` draws data with known parameters, and
:mod:`~spillover.predict.clv_fit` serves ``spillover clv fit``.

In the warehouse: :mod:`~spillover.predict.features` builds each customer's history as of past
cutoffs, :mod:`~spillover.predict.propensity` trains GA4's purchase-probability, churn-probability
and predicted-revenue models on it and :mod:`~spillover.predict.evaluation` judges them out of time;
:mod:`~spillover.predict.clv_warehouse` fits and checks the CLV models on the attributed orders;
:mod:`~spillover.predict.build` is the ``predict`` stage (``mart_predictions``, ``ops_models``,
``mart_clv__holdout``), storing models through :mod:`~spillover.predict.artefacts`, and
:mod:`~spillover.predict.summary` reports them.
"""
