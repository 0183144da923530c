"""``fct_sessions``: one row per GA4 session, attributed to its customer, before login included.

A session is the events of one ``session_key`` (a client and a ``ga_session_id``). Its customer is the
one its logged-in member resolves to, else the one its client resolves to in the id graph: so every
session of a browser that ever logged in (or bought) carries that customer, the sessions before the
first login too (back-stitching).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from spillover.profiles.attribution import EVENTS, customers_of
from spillover.profiles.channels import DIRECT_SOURCE, NO_MEDIUM, default_channel_group

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

#: Events that count as a page (web) or screen (app) view.
PAGE_VIEW_EVENTS = ("page_view", "screen_view")
#: GA4's engaged session: longer than this, or two page views, or a key event (here: a purchase).
ENGAGED_AFTER_MSEC = 10_000


def _traffic(events: ibis.Table) -> dict[str, ibis.Value]:
    """Per event, the source it reports: GA4's last-click session source, else the collected
    (manual) source, else the ``source``/``medium`` event parameters; null when none is set."""
    origins = (
        (events.session_source, events.session_medium, events.session_campaign),
        (events.collected_source, events.collected_medium, events.collected_campaign),
        (events.event_source, events.event_medium, events.event_campaign),
    )

    def pick(position: int) -> ibis.Value:
        branches = ((origin[0].notnull(), origin[position]) for origin in origins)
        return ibis.cases(*branches, else_=ibis.null("string"))

    return {
        "source": pick(0),
        "medium": pick(1),
        "campaign": pick(2),
        "channel": ibis.ifelse(
            events.session_source.notnull(), events.session_default_channel_group, ibis.null("string")
        ),
    }


def fct_sessions(con: BaseBackend) -> ibis.Table:
    """One row per session (see ``docs/data-model.md`` for the columns)."""
    events = con.table(EVENTS)
    events = events.filter(events.session_key.notnull())
    traffic = ibis.struct(_traffic(events))
    first_touch = ibis.struct({
        "source": events.traffic_source_source,
        "medium": events.traffic_source_medium,
        "campaign": events.traffic_source_name,
    })
    consent = ibis.struct({"analytics": events.consent_analytics_storage, "ads": events.consent_ads_storage})
    at = events.event_timestamp
    is_page_view = events.event_name.isin(PAGE_VIEW_EVENTS)
    sessions = events.group_by("session_key").aggregate(
        client_key=events.client_key.min(),
        user_id=events.user_id.argmin(at, where=events.user_id.notnull()),
        stream_id=events.stream_id.min(),
        platform=events.platform.min(),
        ga_session_id=events.ga_session_id.min(),
        ga_session_number=events.ga_session_number.min(),
        session_date=events.event_date.min(),
        session_start_at=at.min(),
        session_end_at=at.max(),
        events=events.count(),
        page_views=is_page_view.sum(),
        purchases=(events.event_name == "purchase").sum(),
        engagement_time_msec=events.engagement_time_msec.sum(),
        flagged_engaged=events.session_engaged.any(),
        traffic=traffic.argmin(at, where=traffic["source"].notnull()),
        first_touch=first_touch.argmin(at, where=events.traffic_source_source.notnull()),
        device_category=events.device_category.argmin(at, where=events.device_category.notnull()),
        consent=consent.argmax(at, where=consent["analytics"].notnull() | consent["ads"].notnull()),
    )
    engagement = sessions.engagement_time_msec.fill_null(0).cast("int64")
    # A client's first session came from its first-touch source (the export's user-scoped
    # traffic_source), when the session's own events name none.
    first_session = (sessions.ga_session_number == 1).fill_null(False) & sessions.first_touch.source.notnull()
    source = ibis.coalesce(
        sessions.traffic.source,
        ibis.ifelse(first_session, sessions.first_touch.source, ibis.null("string")),
        DIRECT_SOURCE,
    )
    medium = ibis.cases(
        (sessions.traffic.source.notnull(), sessions.traffic.medium),
        (first_session, sessions.first_touch.medium),
        else_=ibis.literal(NO_MEDIUM),
    )
    campaign = ibis.cases(
        (sessions.traffic.source.notnull(), sessions.traffic.campaign),
        (first_session, sessions.first_touch.campaign),
        else_=ibis.null("string"),
    )
    shaped = sessions.select(
        "session_key",
        "client_key",
        "user_id",
        logged_in=sessions.user_id.notnull(),
        stream_id=sessions.stream_id,
        platform=sessions.platform,
        ga_session_id=sessions.ga_session_id,
        ga_session_number=sessions.ga_session_number,
        session_date=sessions.session_date,
        session_start_at=sessions.session_start_at,
        session_end_at=sessions.session_end_at,
        duration_seconds=(
            sessions.session_end_at.epoch_seconds() - sessions.session_start_at.epoch_seconds()
        ).cast("int64"),
        events=sessions.events.cast("int64"),
        page_views=sessions.page_views.fill_null(0).cast("int64"),
        purchases=sessions.purchases.fill_null(0).cast("int64"),
        engagement_time_msec=engagement,
        engaged=(
            sessions.flagged_engaged.fill_null(False)
            | (engagement >= ENGAGED_AFTER_MSEC)
            | (sessions.page_views.fill_null(0) >= 2)
            | (sessions.purchases.fill_null(0) >= 1)
        ),
        source=source,
        medium=medium.fill_null(NO_MEDIUM),
        campaign=campaign,
        channel=ibis.coalesce(
            sessions.traffic.channel, default_channel_group(source, medium.fill_null(NO_MEDIUM))
        ),
        device_category=sessions.device_category,
        consent_analytics=sessions.consent.analytics,
        consent_ads=sessions.consent.ads,
    )
    by_member = customers_of(con, "member_id", "user_id")
    by_client = customers_of(con, "client_key", "client_key")
    joined = shaped.left_join(by_member, "user_id").left_join(by_client, "client_key")
    customer_key = ibis.coalesce(joined.user_id_customer_key, joined.client_key_customer_key)
    rest = [joined[c] for c in shaped.columns if c not in ("session_key", "client_key")]
    return joined.select(joined.session_key, joined.client_key, customer_key.name("customer_key"), *rest)
