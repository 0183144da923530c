"""Engagement mix per gateway product: what owners do with it, month by month after buying it —
free use (timers, weather, music, reading, streaming) against interactions that make money (voice
shopping, e-book purchases, rentals).

A product's interactions are the GA4 events ``[impact] device_events`` names for it, counted on the
product's own clients: the GA4 clients that sent at least one of its free events (so an e-reader's
``purchase`` events are e-book purchases on the e-reader, not the owner's web orders). Months are
30-day periods after the adoption day (month 0: days 1–30); a month counts an owner only when it lies
wholly inside the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import ibis

if TYPE_CHECKING:
    from spillover.impact.facts import Facts

MONTH_DAYS = 30


def _product_mix(facts: Facts, product_id: str, free: Sequence[str], monetisable: Sequence[str]) -> ibis.Table:
    last_day = facts.calendar.last_day
    months = (last_day - facts.calendar.first_day) // MONTH_DAYS + 1
    events = facts.events
    device_clients = (
        events.filter(events.event_name.isin(list(free)) & events.client_key.notnull()).select("client_key").distinct()
    )
    owners = facts.adoptions.filter(facts.adoptions.product_id == product_id).select("customer_key", "adopted_day")
    interactions = events.filter(events.event_name.isin([*free, *monetisable])).semi_join(device_clients, "client_key")
    owned = interactions.join(owners, "customer_key")
    since = ((owned.day - owned.adopted_day - 1) / MONTH_DAYS).floor().cast("int64")
    owned = owned.filter(owned.day > owned.adopted_day).mutate(months_since_adoption=since)
    owned = owned.filter(owned.adopted_day + (owned.months_since_adoption + 1) * MONTH_DAYS <= last_day)
    is_free = owned.event_name.isin(list(free))
    counts = owned.group_by("months_since_adoption").aggregate(
        owners_active=owned.customer_key.nunique(),
        free_events=is_free.cast("int64").sum(),
        monetisable_events=(~is_free).cast("int64").sum(),
    )
    observed = owners.select(
        "customer_key", "adopted_day", months_since_adoption=ibis.range(0, months)
    ).unnest("months_since_adoption")
    observed = observed.filter(observed.adopted_day + (observed.months_since_adoption + 1) * MONTH_DAYS <= last_day)
    at_risk = observed.group_by("months_since_adoption").aggregate(owners=observed.count())
    mix = at_risk.left_join(counts, "months_since_adoption").drop("months_since_adoption_right")
    free_events = mix.free_events.fill_null(0)
    monetisable_events = mix.monetisable_events.fill_null(0)
    interactions_total = free_events + monetisable_events
    return mix.select(
        product_id=ibis.literal(product_id),
        months_since_adoption=mix.months_since_adoption.cast("int64"),
        owners=mix.owners,
        owners_active=mix.owners_active.fill_null(0),
        free_events=free_events,
        monetisable_events=monetisable_events,
        free_share=ibis.ifelse(interactions_total > 0, free_events / interactions_total, ibis.null("float64")),
        free_per_owner=free_events / mix.owners,
        monetisable_per_owner=monetisable_events / mix.owners,
    )


def engagement_mix(facts: Facts, device_events: Mapping[str, Mapping[str, Sequence[str]]]) -> ibis.Table | None:
    """Per gateway product in ``device_events`` and month since adoption: ``owners`` (adopters whose
    month is wholly observed), ``owners_active`` (of them, those with an interaction), ``free_events``,
    ``monetisable_events``, ``free_share`` (free over all interactions) and both per owner.

    Products the catalog does not hold as gateway products are skipped; None when none is left.
    """
    parts = [
        _product_mix(facts, product_id, kinds["free"], kinds["monetisable"])
        for product_id, kinds in sorted(device_events.items())
        if product_id in facts.gateway_products
    ]
    if not parts:
        return None
    return ibis.union(*parts).order_by("product_id", "months_since_adoption")
