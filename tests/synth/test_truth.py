"""The declared truth is what happened: ATTs, counterfactuals, rates, selection, and naive bias.

Statistical checks state their tolerance: Poisson counts within 4 standard deviations; "clearly
biased" means the naive figure exceeds the truth by more than 3 standard errors (4 for the gap).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spillover.synth import simulate_truth
from spillover.synth.catalog import DEVICES
from spillover.synth.truth import HORIZONS
from spillover.synth.world import effect_profile


def _adopters(dataset) -> pd.DataFrame:
    frame = dataset.csv("truth/adopters.csv").copy()
    for h in HORIZONS:
        for column in (f"margin_with_{h}", f"margin_without_{h}"):
            frame[column] = frame[column].astype(float)
        frame[f"induced_orders_{h}"] = frame[f"induced_orders_{h}"].astype(int)
    frame["adoption_day"] = frame.adoption_day.astype(int)
    frame["effect_scale_per_year"] = frame.effect_scale_per_year.astype(float)
    return frame


def _line_margins(dataset) -> pd.DataFrame:
    """Every order line with its person, local day index and contribution margin, from the files."""
    orders = dataset.csv("shop/orders.csv")[["order_id", "ordered_at"]]
    items = dataset.csv("shop/order_items.csv")
    products = dataset.csv("shop/products.csv")[["product_id", "unit_cost"]]
    people = dataset.csv("truth/orders.csv")[["order_id", "person_id"]]
    lines = items.merge(products, on="product_id").merge(people, on="order_id").merge(orders, on="order_id")
    cents = lambda column: (lines[column].astype(float) * 100).round().astype(np.int64)  # noqa: E731
    quantity = lines.quantity.astype(np.int64)
    lines["margin_cents"] = (cents("unit_price") - cents("unit_cost")) * quantity - cents("discount")
    local = pd.to_datetime(lines.ordered_at, utc=True).dt.tz_convert("America/New_York").dt.tz_localize(None)
    start = pd.Timestamp(dataset.impact["period"]["start"])
    lines["day"] = (local.dt.normalize() - start).dt.days
    return lines


def test_att_is_the_mean_of_the_counterfactual_differences(medium):
    adopters = _adopters(medium)
    for device in DEVICES:
        mine = adopters[adopters.device == device.key]
        truth = medium.impact["devices"][device.key]
        assert truth["adopters"] == len(mine) > 100
        for h in HORIZONS:
            difference = mine[f"margin_with_{h}"] - mine[f"margin_without_{h}"]
            assert truth["att"][str(h)]["att"] == pytest.approx(difference.mean(), abs=1e-3)
            assert truth["att"][str(h)]["se"] == pytest.approx(difference.std() / math.sqrt(len(mine)), abs=1e-3)


def test_margin_with_the_device_is_the_margin_in_the_files(medium):
    """Y(1) is observable: recomputed from orders, lines and unit costs, to the cent."""
    adopters = _adopters(medium)
    lines = _line_margins(medium)
    last_day = medium.impact["period"]["days"] - 1
    checked = 0
    for device in DEVICES:
        mine = adopters[adopters.device == device.key].set_index("person_id")
        own = lines[(lines.product_id != device.product_id) & lines.person_id.isin(mine.index)]
        elapsed = own.day - mine.adoption_day.reindex(own.person_id).to_numpy()
        for h in HORIZONS:
            observed = mine[mine.adoption_day + h <= last_day]
            window = own[(elapsed >= 1) & (elapsed <= h)]
            from_files = window.groupby("person_id").margin_cents.sum().reindex(observed.index, fill_value=0)
            truth = (observed[f"margin_with_{h}"] * 100).round().astype(np.int64)
            assert (from_files == truth).all()
            assert (observed[f"fully_observed_{h}"] == "true").all()
            checked += len(observed)
    assert checked > 1000


def test_the_world_without_the_device_reproduces_margin_without(small, small_arguments):
    """Common random numbers, literally: re-simulate with one device's effects switched off."""
    adopters = _adopters(small)
    for k, device in enumerate(DEVICES):
        _, ledger = simulate_truth(**small_arguments, without_effects_of=frozenset({device.key}))
        mine = adopters[adopters.device == device.key]
        people = mine.person_id.str.removeprefix("person_").astype(int).to_numpy()
        for h, horizon in enumerate(HORIZONS):
            without = ledger.margin_with[k, h, people] / 100
            assert np.abs(without - mine[f"margin_without_{horizon}"].to_numpy()).max() < 0.005


def test_orders_placed_through_devices_follow_the_effect_model(medium):
    """Counts of induced orders agree with sum_i kappa_i * sum_tau g(tau) (Poisson, 4 sd)."""
    adopters = _adopters(medium)
    for k, device in enumerate(DEVICES):
        mine = adopters[adopters.device == device.key]
        kappa = mine.effect_scale_per_year.to_numpy() / 365.0
        for h in HORIZONS:
            expected = kappa.sum() * effect_profile(k, np.arange(1, h + 1)).sum()
            observed = mine[f"induced_orders_{h}"].sum()
            assert abs(observed - expected) < 4 * math.sqrt(expected), (device.key, h, observed, expected)


def test_the_devices_differ_as_in_the_public_story(medium):
    devices = medium.impact["devices"]
    ereader, speaker, stick = devices["ereader"], devices["speaker"], devices["stick"]
    for device in (ereader, stick):
        att = device["att"]["365"]
        assert att["att"] > 8 * att["se"]  # real incremental margin
    assert ereader["att"]["365"]["att"] > stick["att"]["365"]["att"] > speaker["att"]["365"]["att"]
    # The speaker: ~zero incremental shopping, sold below cost, so each unit loses money.
    assert abs(speaker["att"]["365"]["att"]) < 5.0
    assert speaker["hardware_margin_per_unit"] < 0
    assert speaker["att"]["365"]["att"] + speaker["hardware_margin_per_unit"] < 0
    assert ereader["hardware_margin_per_unit"] < 0 < ereader["att"]["365"]["att"] + ereader["hardware_margin_per_unit"]
    # The effect builds up and wears off: later days add less than the first 90 did.
    for device in (ereader, stick):
        att = {h: device["att"][str(h)]["att"] for h in HORIZONS}
        assert (att[365] - att[180]) / 185 < att[90] / 90


def test_adopters_are_selected_on_latent_traits(medium):
    people = medium.csv("truth/people.csv")
    traits = people[["tech_affinity", "orders_per_year"]].astype(float)
    for device in DEVICES:
        adopted = people[f"{device.key}_adopted_on"] != ""
        gap = traits[adopted].mean() - traits[~adopted].mean()
        assert gap.tech_affinity > 0.25
        assert gap.orders_per_year > 0.2 * traits.orders_per_year.mean()
    # About a quarter buy the device in their first basket: no history before it.
    adopters = _adopters(medium)
    first_basket = (adopters.days_as_customer.astype(int) == 0).mean()
    assert 0.15 < first_basket < 0.35
    # The effect is heterogeneous, and larger for those with the taste the device serves.
    ereader = adopters[adopters.device == "ereader"].merge(people, on="person_id")
    scale = ereader.effect_scale_per_year
    assert scale.std() / scale.mean() > 0.3
    taste = ereader.taste_books.astype(float) + ereader.taste_ebooks.astype(float)
    assert np.corrcoef(scale, taste)[0, 1] > 0.2


def test_naive_owner_gap_and_before_after_overstate_the_speaker(medium):
    """Owners out-spend non-owners and spend more after than before, though the speaker causes ~0."""
    lines = _line_margins(medium)
    lines = lines[lines.day < medium.impact["period"]["days"]]
    speaker = next(d for d in DEVICES if d.key == "speaker")
    truth = medium.impact["devices"]["speaker"]
    adopters = _adopters(medium)
    owners = adopters[adopters.device == "speaker"].set_index("person_id")

    # Owners vs non-owners, over the whole period, among people who ordered at all.
    downstream = lines[lines.product_id != speaker.product_id]
    margin = downstream.groupby("person_id").margin_cents.sum() / 100
    customers = lines.person_id.unique()
    owner_margin = margin.reindex(owners.index.intersection(customers), fill_value=0)
    other_margin = margin.reindex(np.setdiff1d(customers, owners.index), fill_value=0)
    gap = owner_margin.mean() - other_margin.mean()
    gap_se = math.sqrt(owner_margin.var() / len(owner_margin) + other_margin.var() / len(other_margin))
    assert gap == pytest.approx(truth["naive"]["owner_vs_non_owner_gap"], abs=0.01)
    assert gap - truth["att"]["365"]["att"] > 4 * gap_se
    assert gap > 10 * abs(truth["att"]["365"]["att"])

    # Before/after: 90 days after adoption minus the 90 days before, both inside the period.
    last_day = medium.impact["period"]["days"] - 1
    both = owners[(owners.adoption_day >= 90) & (owners.adoption_day + 90 <= last_day)]
    mine = downstream[downstream.person_id.isin(both.index)]
    elapsed = mine.day - both.adoption_day.reindex(mine.person_id).to_numpy()
    after = mine[(elapsed >= 1) & (elapsed <= 90)].groupby("person_id").margin_cents.sum()
    before = mine[(elapsed >= -90) & (elapsed <= -1)].groupby("person_id").margin_cents.sum()
    change = (after.reindex(both.index, fill_value=0) - before.reindex(both.index, fill_value=0)) / 100
    true_att = (both.margin_with_90 - both.margin_without_90).mean()
    assert len(both) > 150
    assert change.mean() - true_att > 3 * change.std() / math.sqrt(len(change))
    # "All post-purchase margin" is the old metric: dwarfs the truth.
    assert truth["naive"]["post_adoption_margin"]["365"] > 20 * abs(truth["att"]["365"]["att"])


def test_repeat_buying_lapses_and_the_holdout_follows_the_traits(medium):
    people = medium.csv("truth/people.csv")
    future = people.future_orders_365.astype(int)
    no_device = (people.filter(like="_adopted_on") == "").all(axis=1)
    lapsed = people.active_at_end == "false"
    # Lapsed customers never buy again (the BG/NBD-like dropout), unless a device keeps them.
    assert (future[lapsed & no_device] == 0).all()
    assert 0.15 < lapsed.mean() < 0.6
    active = ~lapsed & no_device
    rate = people.orders_per_year.astype(float)
    assert np.corrcoef(rate[active], future[active])[0, 1] > 0.5
    # Order counts are over-dispersed and order values right-skewed, as in real repeat buying.
    period = people.period_orders.astype(int)
    assert period.var() > 2 * period.mean()
    lines = _line_margins(medium)
    value = (lines.unit_price.astype(float) * lines.quantity.astype(int) - lines.discount.astype(float))
    per_order = value.groupby(lines.order_id).sum()
    assert per_order.mean() > 1.2 * per_order.median()
