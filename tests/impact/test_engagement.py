"""Engagement mix on the shared synthetic demo warehouse: counts recomputed from the attributed events,
and the synthetic devices' known usage (speaker owners mostly ask for timers, weather and music;
e-reader purchases on the device are the e-reader's induced e-book orders)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spillover.config import ImpactSettings, load_config
from spillover.engine import connect
from spillover.impact.engagement import MONTH_DAYS, engagement_mix
from spillover.impact.facts import load_facts
from tests.impact.truth import local_days, persons_of_customers

DEVICE_EVENTS = ImpactSettings().device_events


@pytest.fixture(scope="module")
def mixed(demo_warehouse):
    con = connect(f"duckdb:///{demo_warehouse['database']}", read_only=True)
    timezone = load_config(demo_warehouse["directory"]).ga4.property_timezone
    facts = load_facts(con, timezone)
    yield {
        "con": con, "facts": facts, "timezone": timezone,
        "mix": engagement_mix(facts, DEVICE_EVENTS).to_pandas(),
        "events": facts.events.to_pandas(),
        "adoptions": facts.adoptions.to_pandas(),
        "truth": demo_warehouse["directory"] / "data" / "truth",
    }
    con.disconnect()


def test_counts_are_the_owners_device_events_in_observed_months(mixed):
    mix, events, adoptions = mixed["mix"], mixed["events"], mixed["adoptions"]
    last_day = mixed["facts"].calendar.last_day
    assert set(mix.product_id) == {"G001", "G002", "G003"}
    for product, kinds in DEVICE_EVENTS.items():
        owners = adoptions[adoptions.product_id == product]
        clients = set(events[events.event_name.isin(kinds["free"])].client_key.dropna())
        mine = events[events.client_key.isin(clients) & events.event_name.isin([*kinds["free"], *kinds["monetisable"]])]
        mine = mine.merge(owners, on="customer_key")
        mine = mine[mine.day > mine.adopted_day].copy()
        mine["month"] = (mine.day - mine.adopted_day - 1) // MONTH_DAYS
        mine = mine[mine.adopted_day + (mine.month + 1) * MONTH_DAYS <= last_day]
        rows = mix[mix.product_id == product].set_index("months_since_adoption")
        free = mine[mine.event_name.isin(kinds["free"])].groupby("month").size()
        assert rows.free_events.to_dict() == free.reindex(rows.index, fill_value=0).to_dict()
        assert rows.monetisable_events.sum() == len(mine) - free.sum()
        for month, row in rows.iterrows():
            assert row.owners == int((owners.adopted_day + (month + 1) * MONTH_DAYS <= last_day).sum())
            assert row.free_per_owner == pytest.approx(row.free_events / row.owners)
        assert (rows.owners_active <= rows.owners).all()


def test_speaker_owners_mostly_use_it_for_free(mixed):
    speaker = mixed["mix"][mixed["mix"].product_id == "G002"]
    free, paid = speaker.free_events.sum(), speaker.monetisable_events.sum()
    assert free > 300
    # The simulator: timer .38, weather .30, music .30, shop .02 of usage, plus one voice_shop per
    # voice order (0.003 a day): about 97% free.
    assert 0.95 < free / (free + paid) < 0.99
    assert speaker.free_share.between(0.9, 1.0).all()


def test_e_reader_purchases_on_the_device_are_its_induced_orders(mixed):
    """Purchases on e-reader clients are the e-book orders the e-reader induced, not the owners' web
    orders: they match the truth's ``cause = ereader`` orders of the observed months, less those of
    clients whose consent mode withheld the client id."""
    con, facts, adoptions = mixed["con"], mixed["facts"], mixed["adoptions"]
    ereader = mixed["mix"][mixed["mix"].product_id == "G001"]
    person_of = persons_of_customers(con, mixed["truth"])
    causes = pd.read_csv(mixed["truth"] / "orders.csv")
    induced = causes[causes.cause == "ereader"].merge(
        con.table("stg_shop__orders").select("order_id", "ordered_at").to_pandas(), on="order_id"
    )
    induced["day"] = local_days(induced.ordered_at, mixed["timezone"])
    owners = adoptions[adoptions.product_id == "G001"].copy()
    owners["person_id"] = owners.customer_key.map(person_of)
    induced = induced.merge(owners, on="person_id")
    induced = induced[induced.day > induced.adopted_day]
    assert len(induced) >= 10
    # The rule the mix counts by, over the whole period: purchases on clients that sent ebook_open.
    events = mixed["events"]
    clients = set(events[events.event_name == "ebook_open"].client_key.dropna())
    on_device = events[(events.event_name == "purchase") & events.client_key.isin(clients)].merge(
        owners, on="customer_key"
    )
    on_device = on_device[on_device.day > on_device.adopted_day]
    assert 0.85 * len(induced) <= len(on_device) <= len(induced)
    # In the months the mix observes, the same holds.
    months = (induced.day - induced.adopted_day - 1) // MONTH_DAYS
    observed = induced[induced.adopted_day + (months + 1) * MONTH_DAYS <= facts.calendar.last_day]
    assert 0.85 * len(observed) <= ereader.monetisable_events.sum() <= len(observed)
    # Owners' purchases anywhere are many more: the web ones are not the device's.
    all_purchases = events[(events.event_name == "purchase") & events.customer_key.isin(owners.customer_key)]
    assert len(all_purchases) > 3 * len(on_device)
    assert np.isfinite(ereader.free_share).all()


def test_products_missing_from_the_catalog_are_skipped(mixed):
    only_unknown = {"X999": {"free": ("voice_timer",), "monetisable": ("voice_shop",)}}
    assert engagement_mix(mixed["facts"], only_unknown) is None
