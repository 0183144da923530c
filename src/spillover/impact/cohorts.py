"""The comparison design for one gateway product and horizon: who is compared with whom, from which
day, over which window, on which outcome; and the flat frame an estimator fits.

Design (a trip-level risk set, as in sequential target-trial emulation):

- **Index rows are shopping trips** (a customer's local day with at least one order). An adopter is
  indexed at the trip on which it first bought the product (``fct_product_adoptions``). Every trip
  of a customer who had not adopted by that day is a candidate control: never-adopters and
  not-yet-adopters alike, so a customer can be a control on several days and an adopter later.
  Adoption happens on trips, so both groups are indexed on a day they shopped: alive as shoppers,
  with a basket that day, new customers' first trips included (a quarter of synthetic adopters buy
  the device in their first basket).
- **Same calendar dates.** Controls are kept only on days on which some adopter is indexed;
  ``calendar_weight`` reweights them to the adopters' distribution of index days (exact balance on
  the calendar: seasonality and promotion days cancel). An adopter indexed on a day on which no
  eligible control shopped has no comparison and is left out (counted).
- **Outcome**: downstream contribution margin in ``(index, index + H]`` local days, leaving out the
  product itself and the configured exclusions (accessories). Margin is revenue − quantity × unit
  cost, net of discount, exactly as profiles computes it.
- **Complete windows only**: ``index + H <= last day of data``.
- **Not yet adopted at the index day**: a control trip's customer may adopt later, even inside the
  window; it stays a control (the comparison is "buy now" against "not now", as in sequential
  target-trial emulation). Dropping controls that adopt inside their window would condition on the
  future: adoption happens on trips, so those controls are the ones that went on shopping, and the
  rest would understate what non-adopters spend (on the synthetic ecosystem it made the smart
  speaker's 180-day ATT look several times its true size). A control that adopts later carries
  part of that later effect into the control mean, a bias towards zero of at most (share of
  controls adopting inside the window) × (effect): ``design_counts`` reports that share.
- **Registered before the index day** (``registered_only``, on by default): both groups are
  customers whose CRM signup came before the index day. A customer who registers with the purchase
  has its later purchases identified (member card, login) where they were anonymous before, so its
  identified spending rises because it registered, not because of the product.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pandas as pd

from spillover.engine import to_float_pandas
from spillover.errors import SpilloverInputError
from spillover.impact.covariates import daily_activity, pre_period_covariates
from spillover.impact.sampling import sample_beyond
from spillover.profiles.attribution import MONEY

if TYPE_CHECKING:
    from spillover.config import ImpactSettings
    from spillover.impact.facts import Facts


@dataclass(frozen=True)
class CohortSpec:
    """One design: the product, the horizon (days) and the pre-period covariates describe (days).

    ``exclude_products`` / ``exclude_categories`` are left out of the downstream margin besides the
    product itself (e.g. its accessories). ``registered_only``: compare only customers registered in
    the CRM before the index day (see the module docstring).
    """

    product_id: str
    horizon_days: int
    pre_period_days: int = 365
    exclude_products: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    registered_only: bool = True

    def __post_init__(self) -> None:
        if self.horizon_days < 1 or self.pre_period_days < 1:
            raise SpilloverInputError(
                f"impact design for {self.product_id!r}: horizon_days ({self.horizon_days}) and "
                f"pre_period_days ({self.pre_period_days}) must be at least 1"
            )

    @classmethod
    def from_settings(cls, settings: ImpactSettings, product_id: str, horizon_days: int) -> CohortSpec:
        """The design ``[impact]`` configures for ``product_id`` at ``horizon_days``."""
        return cls(
            product_id=product_id,
            horizon_days=horizon_days,
            pre_period_days=settings.pre_period_days,
            exclude_products=tuple(settings.exclude_products.get(product_id, ())),
            exclude_categories=tuple(settings.exclude_categories.get(product_id, ())),
            registered_only=settings.registered_only,
        )

    @property
    def excluded_products(self) -> tuple[str, ...]:
        """Products whose lines never count as downstream margin: the product and its exclusions."""
        return (self.product_id, *self.exclude_products)


def _check_product(facts: Facts, spec: CohortSpec) -> None:
    if spec.product_id not in facts.gateway_products:
        known = ", ".join(facts.gateway_products) or "none"
        raise SpilloverInputError(
            f"impact: {spec.product_id!r} is not a gateway product of stg_shop__products "
            f"(gateway products: {known}); mark it is_gateway in the catalog or pick one of those"
        )


def index_rows(facts: Facts, spec: CohortSpec) -> ibis.Table:
    """``customer_key, index_day, treated, adopted_day, calendar_weight``: one row per adopter (at its
    adoption trip) and per control trip (not adopted by that day); windows complete; with
    ``spec.registered_only``, customers registered before the index day only."""
    _check_product(facts, spec)
    candidates = _candidate_trips(facts, spec)
    treated = (candidates.adopted_day == candidates.day).fill_null(False)
    not_yet_adopted = candidates.adopted_day.isnull() | (candidates.adopted_day > candidates.day)
    eligible = candidates.day + spec.horizon_days <= facts.calendar.last_day
    if spec.registered_only:
        eligible = eligible & _registered_before(candidates)
    rows = candidates.filter(eligible & (treated | not_yet_adopted)).select(
        "customer_key", "adopted_day", index_day=candidates.day, treated=treated
    )
    is_treated = rows.treated.cast("int64")
    per_day = rows.group_by("index_day").aggregate(
        treated_that_day=is_treated.sum(), controls_that_day=(1 - is_treated).sum()
    )
    # Controls only on adopters' index days; an adopter with no control trip that day has no comparison.
    per_day = per_day.filter((per_day.treated_that_day > 0) & (per_day.controls_that_day > 0))
    totals = per_day.aggregate(
        treated_total=per_day.treated_that_day.sum(), controls_total=per_day.controls_that_day.sum()
    )
    per_day = per_day.cross_join(totals)
    rows = rows.join(per_day, "index_day")
    # Controls reweighted to the adopters' index days; control weights sum to the number of controls.
    weight = ibis.ifelse(
        rows.treated,
        1.0,
        (rows.treated_that_day / rows.treated_total) / (rows.controls_that_day / rows.controls_total),
    )
    return rows.select(
        "customer_key", "adopted_day", "index_day", "treated", calendar_weight=weight.cast("float64")
    )


def _candidate_trips(facts: Facts, spec: CohortSpec) -> ibis.Table:
    """Every trip (customer and local day with an order) with the customer's adoption day of the
    product (null if never) and CRM signup day (null if not registered)."""
    trips = facts.lines.select("customer_key", "day").distinct()
    adoptions = facts.adoptions.filter(facts.adoptions.product_id == spec.product_id)
    signups = facts.customers.select("customer_key", "signup_day")
    return trips.left_join(adoptions.select("customer_key", "adopted_day"), "customer_key").drop(
        "customer_key_right"
    ).left_join(signups, "customer_key").drop("customer_key_right")


def _registered_before(trips: ibis.Table) -> ibis.Value:
    return (trips.signup_day < trips.day).fill_null(False)


def window_margins(daily: ibis.Table, index: ibis.Table, spec: CohortSpec, first_day: int) -> ibis.Table:
    """Per index row: ``outcome`` (downstream margin in ``(index, index + H]``), ``margin_before`` (the
    same margin in the ``H`` days before the index day) and ``before_complete`` (those days are all
    inside the data, so ``margin_before`` is a fair placebo and before/after figure)."""
    horizon = spec.horizon_days
    keys = index.select("customer_key", "index_day")
    days = daily.select("customer_key", "day", "downstream_margin")
    joined = keys.join(
        days,
        [
            "customer_key",
            days.day >= keys.index_day - horizon,
            days.day <= keys.index_day + horizon,
            days.day != keys.index_day,
        ],
    )
    sums = joined.group_by("customer_key", "index_day").aggregate(
        outcome=joined.downstream_margin.sum(where=joined.day > joined.index_day),
        margin_before=joined.downstream_margin.sum(where=joined.day < joined.index_day),
    )
    out = keys.left_join(sums, ["customer_key", "index_day"])
    return out.select(
        "customer_key",
        "index_day",
        outcome=out.outcome.fill_null(0).cast(MONEY),
        margin_before=out.margin_before.fill_null(0).cast(MONEY),
        before_complete=out.index_day - horizon >= first_day,
    )


def sample_controls(index: ibis.Table, max_control_rows: int | None, seed: int = 0) -> ibis.Table:
    """``index`` rows with ``sampling_rate``: every adopter is kept (rate 1); when there are more than
    ``max_control_rows`` control rows, each is kept with probability ``rate = max_control_rows /
    control rows``, decided by a hash of (``seed``, customer, index day), so the same warehouse and
    seed keep the same rows. Weighting a kept control by ``calendar_weight / sampling_rate`` makes
    every weighted sum estimate the full design's. Sampling in the engine, before outcomes and
    covariates, keeps a large warehouse's design as cheap as a small one's."""
    if max_control_rows is None:
        return index.mutate(sampling_rate=ibis.literal(1.0))
    if max_control_rows < 1:
        raise SpilloverInputError(f"impact: max_control_rows is {max_control_rows}; it must be at least 1")
    return sample_beyond(index, "treated", max_control_rows, seed, ("customer_key", "index_day"))


def cohort(
    facts: Facts,
    spec: CohortSpec,
    *,
    event_families: Mapping[str, Sequence[str]],
    index: ibis.Table | None = None,
    daily: ibis.Table | None = None,
) -> ibis.Table:
    """The design table of ``spec``: index rows with outcome, placebo and pre-period covariates
    (columns in ``docs/impact.md``). ``index``: the design's rows when already chosen (e.g.
    :func:`sample_controls` of :func:`index_rows`; without ``sampling_rate``, 1 is assumed);
    ``daily``: :func:`daily_activity` of ``spec`` when already built (e.g. cached for several
    horizons of one product)."""
    index = index_rows(facts, spec) if index is None else index
    if "sampling_rate" not in index.columns:
        index = index.mutate(sampling_rate=ibis.literal(1.0))
    daily = daily_activity(facts, spec) if daily is None else daily
    margins = window_margins(daily, index, spec, facts.calendar.first_day)
    covariates = pre_period_covariates(facts, index, daily, spec, event_families=event_families)
    joined = index.join(margins, ["customer_key", "index_day"]).join(covariates, ["customer_key", "index_day"])
    joined = joined.mutate(index_date=facts.calendar.date(joined.index_day)).relocate("index_date", after="index_day")
    return joined.order_by("index_day", "customer_key")


def placebo_covariates(
    facts: Facts, spec: CohortSpec, *, event_families: Mapping[str, Sequence[str]]
) -> ibis.Table:
    """The pre-period covariates of every index row, measured before its ``margin_before`` window
    (days ``[index − H − P, index − H − 1]``): the ``X`` of a placebo run whose outcome is
    ``margin_before``. An estimator that finds an effect there is picking up selection, not impact."""
    index = index_rows(facts, spec)
    daily = daily_activity(facts, spec)
    return pre_period_covariates(
        facts, index, daily, spec, event_families=event_families, ends_days_before=spec.horizon_days
    )


# --------------------------------------------------------------------------------------------------
# the flat frame an estimator fits

#: Cohort columns that are not covariates.
DESIGN_COLUMNS = (
    "customer_key", "index_day", "treated", "adopted_day", "calendar_weight", "sampling_rate", "outcome",
    "margin_before", "before_complete", "index_date",
)
#: Covariates one-hot encoded in the flat frame.
CATEGORICAL = ("tier", "region", "index_month")


@dataclass
class DesignFrame:
    """One design pulled into memory: ``X`` (numeric covariates), ``treatment`` (1 = adopter),
    ``outcome`` and ``placebo`` (``margin_before``; NaN where its window starts before the data) per
    index row, the calendar weights and control sampling rates, the rows' keys, and ``X_placebo``
    (covariates measured before the placebo window) when asked for."""

    X: pd.DataFrame
    treatment: np.ndarray
    outcome: np.ndarray
    placebo: np.ndarray
    calendar_weight: np.ndarray
    keys: pd.DataFrame
    sampling_rate: np.ndarray
    X_placebo: pd.DataFrame | None = None

    @property
    def design_weight(self) -> np.ndarray:
        """The weight an estimator gives each row: ``calendar_weight / sampling_rate`` (1 for adopters)."""
        return self.calendar_weight / self.sampling_rate


def _numeric_covariates(frame: pd.DataFrame) -> pd.DataFrame:
    covariates = frame.drop(columns=[c for c in DESIGN_COLUMNS if c in frame.columns])
    for column in CATEGORICAL:
        if column in covariates.columns:
            values = covariates[column].astype("object").where(covariates[column].notna(), "(missing)")
            covariates[column] = values.astype(str)
    encoded = pd.get_dummies(covariates, columns=[c for c in CATEGORICAL if c in covariates.columns], dtype=float)
    return encoded.astype(float)


def design_frame(
    facts: Facts,
    spec: CohortSpec,
    *,
    event_families: Mapping[str, Sequence[str]],
    with_placebo_covariates: bool = False,
) -> DesignFrame:
    """Run ``spec``'s design in the engine and return the per-row frame an estimator fits.

    Rows are ordered by index day and customer; ``X`` one-hot encodes ``tier``, ``region`` and
    ``index_month`` (a missing value is its own level).
    """
    frame = to_float_pandas(cohort(facts, spec, event_families=event_families))
    if frame.empty:
        raise SpilloverInputError(
            f"impact: no adopter of {spec.product_id!r} has a complete {spec.horizon_days}-day window "
            f"(the data ends on day {facts.calendar.last_day}); use a shorter horizon or more data"
        )
    design = frame_of(frame)
    if with_placebo_covariates:
        shifted = to_float_pandas(placebo_covariates(facts, spec, event_families=event_families))
        shifted = frame[["customer_key", "index_day"]].merge(shifted, on=["customer_key", "index_day"], how="left")
        design.X_placebo = _numeric_covariates(shifted)
    return design


def frame_of(frame: pd.DataFrame) -> DesignFrame:
    """The :class:`DesignFrame` of a :func:`cohort` table already pulled into pandas."""
    X = _numeric_covariates(frame)
    placebo = frame.margin_before.astype(float).where(frame.before_complete.astype(bool))
    design = DesignFrame(
        X=X,
        treatment=frame.treated.astype(int).to_numpy(),
        outcome=frame.outcome.astype(float).to_numpy(),
        placebo=placebo.to_numpy(dtype=float),
        calendar_weight=frame.calendar_weight.astype(float).to_numpy(),
        keys=frame[["customer_key", "index_day", "index_date"]].reset_index(drop=True),
        sampling_rate=(frame.sampling_rate.astype(float).to_numpy() if "sampling_rate" in frame
                       else np.ones(len(frame))),
    )
    return design


def design_counts(facts: Facts, spec: CohortSpec, index: ibis.Table | None = None) -> dict[str, int]:
    """How the design came out: adopters in it; adopters left out because their window runs past the
    data, because (``registered_only``) they had not registered before buying, or because no control
    shopped on their index day; control rows and customers; and control rows whose customer adopts
    inside the window (they stay controls; see the module docstring). ``index``: the
    :func:`index_rows` (or unsampled :func:`cohort`) table of ``spec`` when already built, so its
    rows are not computed again; the counts describe the whole design, before control sampling."""
    _check_product(facts, spec)
    horizon = spec.horizon_days
    last_day = facts.calendar.last_day
    adoptions = _candidate_trips(facts, spec)
    adoptions = adoptions.filter(adoptions.adopted_day == adoptions.day)
    complete = adoptions.adopted_day + horizon <= last_day
    registered = _registered_before(adoptions) if spec.registered_only else ibis.literal(True)
    index = index_rows(facts, spec) if index is None else index
    controls = index.filter(~index.treated)
    counts = {
        "adopters": index.filter(index.treated).count(),
        "adopters_window_incomplete": adoptions.filter(~complete).count(),
        "adopters_not_registered_before": adoptions.filter(complete & ~registered).count(),
        "adopters_eligible": adoptions.filter(complete & registered).count(),
        "control_rows": controls.count(),
        "control_customers": controls.customer_key.nunique(),
        "control_rows_adopting_in_window": controls.filter(
            controls.adopted_day.notnull() & (controls.adopted_day <= controls.index_day + horizon)
        ).count(),
    }
    found = {name: int(value.to_pyarrow().as_py()) for name, value in counts.items()}
    found["adopters_without_controls_that_day"] = found.pop("adopters_eligible") - found["adopters"]
    return found
