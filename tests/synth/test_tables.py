"""CSV files follow their contracts; identity.csv explains every identifier that appears anywhere."""

from __future__ import annotations

import re

import pandas as pd
import pytest

CONTRACTS = {
    "crm/members.csv": ["member_id", "email", "phone", "first_name", "last_name", "address", "postcode",
                        "signup_date", "tier", "region", "consent_analytics", "consent_ads"],
    "shop/orders.csv": ["order_id", "member_id", "email", "ordered_at", "channel", "transaction_id", "store_id"],
    "shop/order_items.csv": ["order_id", "line_number", "product_id", "quantity", "unit_price", "discount"],
    "shop/products.csv": ["product_id", "name", "category", "price", "unit_cost", "is_gateway",
                          "subscription_price"],
    "truth/identity.csv": ["id_type", "id_value", "person_id"],
}
MONEY = re.compile(r"^\d+\.\d\d$")


@pytest.mark.parametrize("relative", sorted(CONTRACTS))
def test_csv_files_have_the_contract_columns(small, relative):
    frame = small.csv(relative)
    assert list(frame.columns) == CONTRACTS[relative]
    assert len(frame) > 0


def test_products_hold_three_gateway_devices_and_a_monthly_subscription(small):
    products = small.csv("shop/products.csv").set_index("product_id")
    gateways = products[products.is_gateway == "true"]
    assert sorted(gateways.name) == ["Beam Streaming Stick", "Leaf e-Reader", "Orbit Smart Speaker"]
    price, cost = gateways.price.astype(float), gateways.unit_cost.astype(float)
    margin = (price - cost).set_axis(gateways.name)
    assert margin["Leaf e-Reader"] < 0 and margin["Orbit Smart Speaker"] < 0  # sold below cost
    assert abs(margin["Beam Streaming Stick"]) < 0.05 * price.max()  # near cost
    subscriptions = products[products.subscription_price != ""]
    assert len(subscriptions) == 1 and subscriptions.iloc[0].category == "subscriptions"
    assert {"ebooks", "books", "groceries", "household", "electronics", "video", "music", "fashion"} <= set(
        products.category)
    assert products.price.str.match(MONEY).all() and products.unit_cost.str.match(MONEY).all()
    assert (products.unit_cost.astype(float) <= products.price.astype(float) * 1.15).all()


def test_orders_follow_the_contract(small):
    orders = small.csv("shop/orders.csv")
    assert orders.order_id.is_unique
    assert set(orders.channel) == {"online", "store", "call_centre"}
    assert orders.ordered_at.str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all()
    guests = orders.member_id == ""
    assert 0.05 < guests.mean() < 0.7
    assert (orders.loc[~guests, "email"] == "").all()  # an email only for guests
    assert (orders.loc[guests, "email"] != "").mean() > 0.2
    store = orders.channel == "store"
    assert (orders.loc[store, "store_id"] != "").all() and (orders.loc[~store, "store_id"] == "").all()


def test_order_lines_are_numbered_within_their_order(small):
    items = small.csv("shop/order_items.csv")
    orders = small.csv("shop/orders.csv")
    assert set(items.order_id) == set(orders.order_id)
    numbers = items.line_number.astype(int)
    expected = items.groupby("order_id").cumcount() + 1
    assert (numbers == expected).all()
    assert items.unit_price.str.match(MONEY).all() and items.discount.str.match(MONEY).all()
    assert (items.discount.astype(float) <= items.unit_price.astype(float) * items.quantity.astype(int)).all()
    products = small.csv("shop/products.csv")
    assert set(items.product_id) <= set(products.product_id)


def test_members_are_synthetic_and_some_registered_twice_with_typos(small, medium):
    for dataset in (small, medium):
        members = dataset.csv("crm/members.csv")
        assert members.member_id.is_unique
        assert members.email.str.lower().str.endswith(("@example.com", "@example.org", "@example.net")).all()
        phones = members.phone[members.phone != ""]
        assert phones.str.replace(r"\D", "", regex=True).str[-7:-4].eq("555").all()
        assert set(members.consent_analytics) <= {"true", "false"}
    identity = medium.csv("truth/identity.csv")
    member_ids = identity[identity.id_type == "member_id"]
    per_person = member_ids.groupby("person_id").size()
    people = len(medium.csv("truth/people.csv"))
    twice = (per_person == 2).sum()
    assert per_person.max() == 2
    assert 0.012 < twice / people < 0.03  # about 2% of people
    members = medium.csv("crm/members.csv").set_index("member_id")
    pairs = member_ids[member_ids.person_id.isin(per_person[per_person == 2].index)]
    differing_email = 0
    for _, group in pairs.groupby("person_id"):
        first, second = (members.loc[member] for member in group.id_value)
        differing_email += first.email.lower() != second.email.lower()
        assert first.signup_date <= second.signup_date
        assert (first.first_name, first.last_name, first.email) != (second.first_name, second.last_name, second.email)
    assert differing_email / twice > 0.9


def test_identity_covers_every_identifier_in_the_files(small, small_events):
    events, _ = small_events
    identity = small.csv("truth/identity.csv")
    known = identity.groupby("id_type").id_value.apply(set)
    assert set(known.index) == {"user_pseudo_id", "user_id", "member_id", "email", "phone"}
    assert set(events.user_pseudo_id.dropna()) == known["user_pseudo_id"]
    assert set(events.user_id.dropna()) == known["user_id"]
    members = small.csv("crm/members.csv")
    orders = small.csv("shop/orders.csv")
    assert set(members.member_id) == known["member_id"]
    assert set(orders.member_id) - {""} <= known["member_id"]
    assert set(members.email) | (set(orders.email) - {""}) == known["email"]
    assert set(members.phone) - {""} == known["phone"]
    # Each identifier belongs to one person.
    assert identity.groupby(["id_type", "id_value"]).person_id.nunique().max() == 1


def test_every_order_has_its_person_and_cause_in_the_truth(medium):
    orders = medium.csv("shop/orders.csv")
    truth = medium.csv("truth/orders.csv")
    assert list(truth.order_id) == list(orders.order_id)
    assert set(truth.cause) == {"baseline", "ereader", "speaker", "stick", "subscription"}
    identity = medium.csv("truth/identity.csv")
    member_person = identity[identity.id_type == "member_id"].set_index("id_value").person_id
    booked = orders.member_id != ""
    assert (member_person[orders.member_id[booked]].to_numpy() == truth.person_id[booked].to_numpy()).all()


def test_people_file_has_traits_and_the_future(small):
    people = small.csv("truth/people.csv")
    assert len(people) == small.summary["customers"]
    for column in ["orders_per_year", "dropout_probability", "tech_affinity", "price_sensitivity",
                   "taste_ebooks", "future_orders_180", "future_revenue_365", "active_at_end"]:
        assert column in people.columns
    taste = people.filter(like="taste_").astype(float).sum(axis=1)
    assert ((taste - 1).abs() < 1e-4).all()
    f180, f365 = people.future_orders_180.astype(int), people.future_orders_365.astype(int)
    assert (f180 <= f365).all() and f365.sum() > 0
    pd.testing.assert_series_equal(people.person_id, people.person_id.sort_values(), check_names=False)
