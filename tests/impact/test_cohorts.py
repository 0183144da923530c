"""The impact design on the shared synthetic demo warehouse (500 customers × 60 days), checked against
an independent pandas recomputation from the attributed order lines and against the truth.

The demo is too short for the truth's 90-day horizons, so the design runs at 21 days here; the
checks against the truth's per-adopter margins and ATTs are in ``test_cohorts_truth.py``.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from spillover.config import Config, ImpactSettings, load_config
from spillover.engine import connect
from spillover.errors import SpilloverInputError
from spillover.impact.calendar import date_of, day_number
from spillover.impact.cohorts import (
    CohortSpec,
    cohort,
    design_counts,
    design_frame,
    index_rows,
    sample_controls,
)
from spillover.impact.facts import hardware_margin_per_unit, load_facts
from spillover.impact.naive import naive_figures
from spillover.impact.panel import monthly_panel
from spillover.profiles.attribution import order_lines
from tests.impact.truth import adopters_of, local_days, persons_of_customers

HORIZON = 21
PRE_PERIOD = 30
FAMILIES = Config().profiles.event_families
PRODUCTS = {"ereader": "G001", "speaker": "G002", "stick": "G003"}


@pytest.fixture(scope="module")
def warehouse(demo_warehouse):
    con = connect(f"duckdb:///{demo_warehouse['database']}", read_only=True)
    timezone = load_config(demo_warehouse["directory"]).ga4.property_timezone
    facts = load_facts(con, timezone)
    lines = order_lines(con).to_pandas()
    lines = lines[lines.customer_key.notna()].copy()
    lines["day"] = local_days(lines.ordered_at, timezone)
    yield {
        "con": con, "facts": facts, "lines": lines, "timezone": timezone,
        "truth": demo_warehouse["directory"] / "data" / "truth",
    }
    con.disconnect()


def _spec(product_id: str, **overrides) -> CohortSpec:
    return CohortSpec(product_id, overrides.pop("horizon_days", HORIZON), pre_period_days=PRE_PERIOD, **overrides)


@pytest.fixture(scope="module")
def designs(warehouse):
    """The cohort table of each device, in pandas."""
    return {
        product: cohort(warehouse["facts"], _spec(product), event_families=FAMILIES).to_pandas()
        for product in PRODUCTS.values()
    }


def test_the_calendar_is_the_propertys_local_days(warehouse):
    facts, lines = warehouse["facts"], warehouse["lines"]
    engine_days = facts.lines.select("order_id", "day").distinct().to_pandas().set_index("order_id").day
    pandas_days = lines.drop_duplicates("order_id").set_index("order_id").day
    assert (engine_days.sort_index() == pandas_days.sort_index()).all()
    assert date_of(facts.calendar.first_day).isoformat() == "2024-01-01"
    assert facts.calendar.last_day - facts.calendar.first_day == 59  # 60 local days


def test_adopters_are_indexed_at_adoption_and_match_the_truth(warehouse):
    facts, truth = warehouse["facts"], warehouse["truth"]
    person_of = persons_of_customers(warehouse["con"], truth)
    last_day = facts.calendar.last_day
    for device, product in PRODUCTS.items():
        spec = _spec(product, registered_only=False)
        design = cohort(facts, spec, event_families=FAMILIES).to_pandas()
        treated = design[design.treated]
        assert (treated.index_day == treated.adopted_day).all()
        assert treated.customer_key.is_unique
        # The truth's adopters whose window ends inside the period, by person and local date.
        expected = adopters_of(truth, device)
        expected = expected[expected.adoption_day + HORIZON <= expected.period_days - 1]
        found = {(person_of.get(c), date_of(d).isoformat()) for c, d in zip(treated.customer_key, treated.index_day)}
        assert found == set(zip(expected.person_id, expected.adopted_on)), device
        counts = design_counts(facts, spec)
        assert design_counts(facts, spec, cohort(facts, spec, event_families=FAMILIES)) == counts
        assert counts["adopters"] == len(treated) == len(expected) > 0
        assert counts["adopters_not_registered_before"] == 0
        assert counts["control_rows"] == int((~design.treated).sum())
        assert (design.index_day + HORIZON <= last_day).all()


def test_by_default_only_customers_registered_before_the_index_day_are_compared(warehouse, designs):
    """Registering with the purchase makes later purchases identifiable: such adopters (and controls
    not yet registered) are left out, and counted."""
    facts = warehouse["facts"]
    signup = facts.customers.to_pandas().set_index("customer_key").signup_day
    left_out = 0
    for product, design in designs.items():
        assert (design.customer_key.map(signup) < design.index_day).all(), product
        everyone = cohort(facts, _spec(product, registered_only=False), event_families=FAMILIES).to_pandas()
        registered = everyone[everyone.customer_key.map(signup) < everyone.index_day]
        kept = set(zip(design.customer_key[design.treated], design.index_day[design.treated]))
        eligible = set(zip(registered.customer_key[registered.treated], registered.index_day[registered.treated]))
        counts = design_counts(facts, _spec(product))
        assert kept <= eligible
        assert len(eligible - kept) == counts["adopters_without_controls_that_day"]
        assert counts["adopters"] == int(design.treated.sum())
        assert counts["adopters"] + counts["adopters_not_registered_before"] + counts[
            "adopters_without_controls_that_day"] == int(everyone.treated.sum())
        left_out += counts["adopters_not_registered_before"]
    assert left_out > 0


def test_controls_had_not_adopted_by_their_index_day(warehouse, designs):
    """Controls are trips of customers who had not bought the product yet; those who buy it inside
    the window stay controls (dropping them would condition on the future) and are counted."""
    adoptions = warehouse["facts"].adoptions.to_pandas()
    not_yet = 0
    for product, design in designs.items():
        adopted = adoptions[adoptions.product_id == product].set_index("customer_key").adopted_day
        controls = design[~design.treated]
        assert len(controls) > 10
        their_adoption = controls.customer_key.map(adopted)
        assert (their_adoption.isna() | (their_adoption > controls.index_day)).all()
        assert controls.adopted_day.isna().equals(their_adoption.isna())
        in_window = int((their_adoption <= controls.index_day + HORIZON).sum())
        assert design_counts(warehouse["facts"], _spec(product))["control_rows_adopting_in_window"] == in_window
        not_yet += int(their_adoption.notna().sum())
    # Not-yet adopters are controls on their earlier trips: the design uses both kinds.
    assert not_yet > 0


def test_controls_are_trips_on_the_adopters_index_days_reweighted_to_them(warehouse, designs):
    trips = set(zip(warehouse["lines"].customer_key, warehouse["lines"].day))
    for design in designs.values():
        assert set(zip(design.customer_key, design.index_day)) <= trips
        treated, controls = design[design.treated], design[~design.treated]
        assert set(controls.index_day) <= set(treated.index_day)
        assert controls.calendar_weight.sum() == pytest.approx(len(controls))
        weighted = controls.groupby("index_day").calendar_weight.sum() / controls.calendar_weight.sum()
        adopters = treated.groupby("index_day").size() / len(treated)
        assert weighted.to_numpy() == pytest.approx(adopters.reindex(weighted.index).to_numpy())


def test_control_sampling_keeps_every_adopter_and_a_seeded_share_of_controls(warehouse, designs):
    facts = warehouse["facts"]
    for product, design in designs.items():
        full = design.set_index(["customer_key", "index_day"])
        index = index_rows(facts, _spec(product))
        controls = int((~design.treated).sum())
        assert (design.sampling_rate == 1.0).all()  # an unsampled design carries rate 1
        assert sample_controls(index, controls, seed=0).count().execute() == len(design)  # at the cap: all kept
        cap = controls // 4
        sampled = cohort(facts, _spec(product), event_families=FAMILIES,
                         index=sample_controls(index, cap, seed=3)).to_pandas()
        again = sample_controls(index, cap, seed=3).to_pandas()
        other = sample_controls(index, cap, seed=4).to_pandas()
        kept = sampled[~sampled.treated]
        assert sampled.treated.sum() == design.treated.sum()
        assert (sampled[sampled.treated].sampling_rate == 1.0).all()
        assert kept.sampling_rate.unique().tolist() == [pytest.approx(cap / controls)]
        # A binomial draw: within 5 standard deviations of the cap.
        assert abs(len(kept) - cap) < 5 * np.sqrt(cap) + 1
        assert set(zip(kept.customer_key, kept.index_day)) == set(zip(again[~again.treated].customer_key,
                                                                        again[~again.treated].index_day))
        assert set(zip(other.customer_key, other.index_day)) != set(zip(again.customer_key, again.index_day))
        # Kept rows carry the full design's values; the weighted control total estimates the full one.
        same = full.loc[list(zip(kept.customer_key, kept.index_day))]
        assert (same.outcome.to_numpy() == kept.outcome.to_numpy()).all()
        assert (same.calendar_weight.to_numpy() == pytest.approx(kept.calendar_weight.to_numpy()))
        weights = kept.calendar_weight / kept.sampling_rate
        assert weights.sum() == pytest.approx(controls, rel=5 / np.sqrt(cap))
    with pytest.raises(SpilloverInputError, match="max_control_rows"):
        sample_controls(index_rows(facts, _spec("G002")), 0)


def _window_sum(lines: pd.DataFrame, keys: pd.DataFrame, first: int, last: int, column: str = "margin") -> pd.Series:
    """Sum of ``column`` over each key row's lines on days ``[index + first, index + last]``."""
    joined = keys.merge(lines, on="customer_key")
    inside = joined[(joined.day >= joined.index_day + first) & (joined.day <= joined.index_day + last)]
    sums = inside.groupby(["customer_key", "index_day"])[column].sum()
    return keys.set_index(["customer_key", "index_day"]).index.map(lambda k: sums.get(k, Decimal(0))).to_series()


def test_outcomes_placebo_and_covariates_match_a_recomputation(warehouse, designs):
    lines = warehouse["lines"]
    for product, design in designs.items():
        downstream = lines[lines.product_id != product]
        keys = design[["customer_key", "index_day"]]
        assert list(_window_sum(downstream, keys, 1, HORIZON)) == list(design.outcome)
        assert list(_window_sum(downstream, keys, -HORIZON, -1)) == list(design.margin_before)
        assert list(_window_sum(lines, keys, -PRE_PERIOD, -1)) == list(design.pre_margin)
        assert list(_window_sum(lines[lines.category == "groceries"], keys, -PRE_PERIOD, -1, "revenue")) == list(
            design.pre_revenue__groceries
        )
        first_day = warehouse["facts"].calendar.first_day
        assert (design.before_complete == (design.index_day - HORIZON >= first_day)).all()
        assert (design.pre_days_observed == np.minimum(PRE_PERIOD, design.index_day - first_day)).all()
    # Recency counts back from the index day, never from the index day's own trip.
    speaker = designs["G002"]
    trips = lines[["customer_key", "day"]].drop_duplicates().merge(speaker[["customer_key", "index_day"]])
    before = trips[(trips.day < trips.index_day) & (trips.day >= trips.index_day - PRE_PERIOD)]
    last_trip = before.groupby(["customer_key", "index_day"]).day.max()
    expected = [
        i - last_trip[(c, i)] if (c, i) in last_trip.index else PRE_PERIOD + 1
        for c, i in zip(speaker.customer_key, speaker.index_day)
    ]
    assert list(speaker.pre_recency_days) == expected
    assert (speaker.pre_trips <= speaker.pre_orders).all()


def test_exclusions_leave_out_accessories_and_categories(warehouse, designs):
    lines, facts = warehouse["lines"], warehouse["facts"]
    base = designs["G001"]
    without_ebooks = cohort(facts, _spec("G001", exclude_categories=("ebooks",)), event_families=FAMILIES).to_pandas()
    keys = base[["customer_key", "index_day"]]
    ebooks = _window_sum(lines[lines.category == "ebooks"], keys, 1, HORIZON)
    assert list(without_ebooks.outcome) == [a - b for a, b in zip(base.outcome, ebooks)]
    assert sum(ebooks) > 0
    # An "accessory": the best-selling book.
    accessory = lines[lines.category == "books"].product_id.value_counts().index[0]
    spec = _spec("G001", exclude_products=(accessory,))
    assert spec.excluded_products == ("G001", accessory)
    without_accessory = cohort(facts, spec, event_families=FAMILIES).to_pandas()
    accessory_margin = _window_sum(lines[lines.product_id == accessory], keys, 1, HORIZON)
    assert list(without_accessory.outcome) == [a - b for a, b in zip(base.outcome, accessory_margin)]
    assert sum(accessory_margin) != 0
    # Settings name them per product.
    settings = ImpactSettings(exclude_products={"G001": (accessory,)}, exclude_categories={"G001": ("ebooks",)})
    assert CohortSpec.from_settings(settings, "G001", 90) == CohortSpec(
        "G001", 90, pre_period_days=365, exclude_products=(accessory,), exclude_categories=("ebooks",)
    )


def test_the_design_frame_is_numeric_and_aligned(warehouse, designs):
    frame = design_frame(warehouse["facts"], _spec("G002"), event_families=FAMILIES, with_placebo_covariates=True)
    design = designs["G002"]
    assert len(frame.X) == len(frame.treatment) == len(frame.outcome) == len(design)
    assert frame.treatment.sum() == design.treated.sum()
    assert not frame.X.isna().any().any()
    assert frame.outcome == pytest.approx(design.outcome.astype(float).to_numpy())
    assert np.isnan(frame.placebo).sum() == (~design.before_complete).sum()
    for column in ("pre_margin", "pre_margin__groceries", "pre_recency_days", "pre_device_use_events",
                   "tenure_days", "member", "owns_g001", "owns_g003", "tier_gold", "index_month_1"):
        assert column in frame.X.columns, column
    assert "owns_g002" not in frame.X.columns and "outcome" not in frame.X.columns
    assert set(frame.X_placebo.columns) <= set(frame.X.columns)
    # Placebo covariates end before the placebo window: they hold less history.
    assert (frame.X_placebo.pre_days_observed <= frame.X.pre_days_observed).all()
    assert (frame.X_placebo.pre_days_observed == np.maximum(0, np.minimum(
        PRE_PERIOD, design.index_day - HORIZON - warehouse["facts"].calendar.first_day))).all()


def test_naive_figures_are_what_they_say(warehouse, designs):
    facts, lines = warehouse["facts"], warehouse["lines"]
    design = designs["G002"]
    figures = naive_figures(facts, _spec("G002"), event_families=FAMILIES)
    treated, controls = design[design.treated], design[~design.treated]
    y = treated.outcome.astype(float)
    assert figures.post_purchase_margin.value == pytest.approx(y.mean())
    assert figures.post_purchase_margin.se == pytest.approx(y.std() / np.sqrt(len(y)))
    assert figures.post_purchase_margin.naive
    control_mean = np.average(controls.outcome.astype(float), weights=controls.calendar_weight)
    assert figures.adopters_vs_controls.value == pytest.approx(y.mean() - control_mean)
    paired = treated[treated.before_complete]
    change = paired.outcome.astype(float) - paired.margin_before.astype(float)
    assert figures.before_after.buyers == len(paired)
    assert figures.before_after.value == (pytest.approx(change.mean()) if len(paired) else None)
    # Owners against never-buyers over the same windows, recomputed customer by customer.
    buyers = set(facts.adoptions.to_pandas().query("product_id == 'G002'").customer_key)
    never = lines[~lines.customer_key.isin(buyers)]
    first = never.groupby("customer_key").day.min()
    means = []
    for day in treated.index_day:
        customers = first[first <= day + HORIZON].index
        window = never[(never.day > day) & (never.day <= day + HORIZON)]
        means.append(float(window.margin.sum()) / len(customers))
    assert figures.owner_vs_non_owner.value == pytest.approx(y.mean() - np.mean(means))


def test_the_panel_is_balanced_over_complete_months(warehouse):
    facts, lines = warehouse["facts"], warehouse["lines"]
    panel = monthly_panel(facts, _spec("G002")).to_pandas()
    assert facts.calendar.complete_months() == [648, 649]  # January and February 2024
    assert panel.groupby("customer_key").period.apply(tuple).map(lambda periods: periods == (1, 2)).all()
    assert set(panel.customer_key) == set(lines.customer_key)
    march = day_number(pd.Timestamp("2024-03-01").date())
    in_months = lines[(lines.day >= facts.calendar.first_day) & (lines.day < march) & (lines.product_id != "G002")]
    assert panel.downstream_margin.sum() == in_months.margin.sum()
    adoptions = facts.adoptions.to_pandas().query("product_id == 'G002'").set_index("customer_key").adopted_day
    expected = panel.customer_key.map(lambda c: 0 if c not in adoptions.index else date_of(adoptions[c]).month)
    assert (panel.first_treated == expected).all()
    assert set(panel.first_treated) == {0, 1, 2}  # never, January, February (the data ends on 29 February)


def test_the_panel_can_keep_a_seeded_sample_of_never_adopters(warehouse):
    facts = warehouse["facts"]
    full = monthly_panel(facts, _spec("G002")).to_pandas()
    units = full.drop_duplicates("customer_key")
    never = int((units.first_treated == 0).sum())
    cap = never // 3
    sampled = monthly_panel(facts, _spec("G002"), max_never_treated=cap, seed=1).to_pandas()
    again = monthly_panel(facts, _spec("G002"), max_never_treated=cap, seed=1).to_pandas()
    kept = sampled.drop_duplicates("customer_key")
    assert set(kept[kept.first_treated > 0].customer_key) == set(units[units.first_treated > 0].customer_key)
    assert abs(int((kept.first_treated == 0).sum()) - cap) < 5 * np.sqrt(cap) + 1
    assert set(kept.customer_key) <= set(units.customer_key)
    assert sampled.equals(again)
    # Kept customers keep their whole rows.
    merged = sampled.merge(full, on=["customer_key", "period"], suffixes=("", "_full"))
    assert len(merged) == len(sampled) and (merged.downstream_margin == merged.downstream_margin_full).all()
    assert monthly_panel(facts, _spec("G002"), max_never_treated=never).count().execute() == len(full)


def test_hardware_margin_is_the_truths(warehouse):
    import json

    impact = json.loads((warehouse["truth"] / "impact.json").read_text())
    for device, product in PRODUCTS.items():
        units, margin = hardware_margin_per_unit(warehouse["con"], product)
        assert units == impact["devices"][device]["units_sold"]
        assert margin == pytest.approx(impact["devices"][device]["hardware_margin_per_unit"], abs=0.005)


def test_bad_designs_say_what_to_do(warehouse):
    facts = warehouse["facts"]
    with pytest.raises(SpilloverInputError, match="'P999' is not a gateway product.*G001, G002, G003"):
        cohort(facts, _spec("P999"), event_families=FAMILIES)
    with pytest.raises(SpilloverInputError, match="no adopter of 'G002' has a complete 90-day window"):
        design_frame(facts, _spec("G002", horizon_days=90), event_families=FAMILIES)
    with pytest.raises(SpilloverInputError, match="must be at least 1"):
        CohortSpec("G002", 0)
