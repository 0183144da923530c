"""The impact design against the synthetic truth at the truth's own horizons (90 and 180 days).

A year of data is needed for those windows, so this module uses the `synthetic_year` warehouse of conftest.py: 4,000 customers
× 365 days, seed 0, with the orders, CRM and catalog loaded in full and GA4 for the first day only
(loading a year of GA4 would take minutes and the checks here need orders, not browsing). Without
GA4, guest orders that only a GA4 client identifies stay unattributed, so some adopters' outcomes
miss an order; the window itself reproduces the truth to the cent.

Measured at this size (USD per adopter, 90 days): smart speaker true ATT 0.60; all post-purchase
margin 31.8; owners minus never-buyers 17.5; adopters minus calendar-weighted same-day controls 1.34
(se 2.38): controls who shopped the same day remove most of the selection.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from spillover.config import Config
from spillover.impact.calendar import date_of
from spillover.impact.cohorts import CohortSpec, cohort
from spillover.impact.facts import load_facts
from spillover.impact.naive import naive_figures
from spillover.profiles.attribution import order_lines
from tests.impact.truth import local_days, persons_of_customers

pytestmark = pytest.mark.slow

HORIZONS = (90, 180)
FAMILIES = Config().profiles.event_families
PRODUCTS = {"ereader": "G001", "speaker": "G002", "stick": "G003"}


@pytest.fixture(scope="module")
def year(synthetic_year):
    con, config, data = synthetic_year["con"], synthetic_year["config"], synthetic_year["data"]
    facts = load_facts(con, config.ga4.property_timezone)
    truth = data / "truth"
    designs = {
        # Every adopter, registered before buying or not, to compare with the truth's adopters.
        (product, horizon): cohort(
            facts, CohortSpec(product, horizon, registered_only=False), event_families=FAMILIES
        ).cache()
        for product in PRODUCTS.values() for horizon in HORIZONS
    }
    yield {
        "con": con, "facts": facts, "truth": truth, "designs": designs,
        "impact": json.loads((truth / "impact.json").read_text())["devices"],
        "adopters": pd.read_csv(truth / "adopters.csv"),
        "person_of": persons_of_customers(con, truth),
        "timezone": config.ga4.property_timezone,
    }
    for design in designs.values():
        design.release()


def _treated(year, product: str, horizon: int) -> pd.DataFrame:
    design = year["designs"][(product, horizon)]
    treated = design.filter(design.treated).select("customer_key", "index_day", "outcome").to_pandas()
    treated["person_id"] = treated.customer_key.map(year["person_of"])
    return treated


def test_adopters_are_the_truths_fully_observed_adopters(year):
    for device, product in PRODUCTS.items():
        for horizon in HORIZONS:
            treated = _treated(year, product, horizon)
            truth = year["adopters"]
            truth = truth[(truth.device == device) & truth[f"fully_observed_{horizon}"]]
            assert len(treated) == len(truth) == year["impact"][device]["att"][str(horizon)]["adopters_fully_observed"]
            found = set(zip(treated.person_id, (date_of(d).isoformat() for d in treated.index_day)))
            assert found == set(zip(truth.person_id, truth.adopted_on)), (device, horizon)


def test_the_window_is_the_truths_to_the_cent_and_outcomes_mostly_are(year):
    lines = order_lines(year["con"]).to_pandas()
    lines["day"] = local_days(lines.ordered_at, year["timezone"])
    causes = pd.read_csv(year["truth"] / "orders.csv").set_index("order_id").person_id
    lines["person_id"] = lines.order_id.map(causes)
    for device, product in PRODUCTS.items():
        for horizon in HORIZONS:
            treated = _treated(year, product, horizon)
            truth = year["adopters"].query("device == @device").set_index("person_id")[f"margin_with_{horizon}"]
            # Every line of the person (attributed or not) in (index, index + H], the device excluded.
            window = lines[lines.product_id != product].merge(treated[["person_id", "index_day"]], on="person_id")
            window = window[(window.day > window.index_day) & (window.day <= window.index_day + horizon)]
            by_person = window.groupby("person_id").margin.sum().astype(float)
            recomputed = treated.person_id.map(by_person).fillna(0.0)
            assert (recomputed - treated.person_id.map(truth)).abs().max() < 0.005
            # The design's outcome holds the attributed part: exact for most adopters.
            exact = (treated.outcome.astype(float) - treated.person_id.map(truth)).abs() < 0.005
            assert exact.mean() >= 0.65, (device, horizon, exact.mean())


def test_naive_figures_of_the_speaker_are_far_above_its_true_effect(year):
    for horizon in HORIZONS:
        spec = CohortSpec("G002", horizon, registered_only=False)
        figures = naive_figures(year["facts"], spec, event_families=FAMILIES, design=year["designs"][("G002", horizon)])
        truth = year["impact"]["speaker"]["att"][str(horizon)]["att_fully_observed"]
        post = figures.post_purchase_margin
        assert post.value > 10 * truth
        assert (post.value - truth) / post.se > 5
        owners = figures.owner_vs_non_owner
        assert (owners.value - truth) / owners.se > 3
        # Controls who shopped on the same days remove most of that selection: the plain difference
        # in means against them is a small fraction of the post-purchase figure.
        gap = figures.adopters_vs_controls
        assert gap.value < post.value / 5, (horizon, gap, post)
