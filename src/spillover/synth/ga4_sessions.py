"""What GA4 records of a day: browsers, app installs and devices, their sessions, and the events in them.

Online orders become purchase sessions (view, add to cart, log in, check out, buy); people also browse,
and device owners use their devices. Events come out as flat NumPy columns for the JSON writer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spillover.synth.catalog import CATEGORIES, DEVICES, Catalog, draw_products
from spillover.synth.clock import Calendar
from spillover.synth.people import Population
from spillover.synth.world import (
    CAUSE_BASELINE,
    CAUSE_SUBSCRIPTION,
    CHANNEL_ONLINE,
    TENURE_RAMP_DAYS,
    TENURE_RAMP_DEPTH,
    DayOrders,
    World,
    diurnal_fraction,
)

# --- client profiles (index into ga4_json.PROFILES) -----------------------------------------------
DESKTOP_PROFILES = np.arange(0, 5)
MOBILE_WEB_PROFILES = np.arange(5, 8)
TABLET_PROFILES = np.array([8])
APP_PROFILES = np.arange(9, 13)
DEVICE_PROFILE = {"ereader": 13, "speaker": 14, "stick": 15}
N_WEB_PROFILES = 9  # profiles below this are web browsers
WEB_APP_SLOTS = 4
SLOTS = WEB_APP_SLOTS + len(DEVICES)

CONSENT_GRANTED, CONSENT_NO_ADS, CONSENT_DENIED = 0, 1, 2
TRAFFIC_SOURCE_SHARES = np.array([0.35, 0.3, 0.1, 0.1, 0.15])

# --- event names and the canonical order of event slots within a session --------------------------
EVENT_NAMES = (
    "first_visit", "session_start", "login", "page_view", "view_item", "add_to_cart", "begin_checkout",
    "purchase", "voice_timer", "voice_weather", "voice_music", "voice_shop", "ebook_open", "video_play",
)
NAME = {name: k for k, name in enumerate(EVENT_NAMES)}
S_FIRST_VISIT, S_SESSION_START, S_LOGIN_EARLY, S_PAGE_VIEW, S_VIEW_ITEM, S_ADD_TO_CART = range(6)
S_LOGIN_CHECKOUT, S_BEGIN_CHECKOUT, S_USAGE, S_VOICE_SHOP, S_PURCHASE = range(6, 11)
N_SESSION_SLOTS = 11
SLOT_NAME = np.array([NAME["first_visit"], NAME["session_start"], NAME["login"], NAME["page_view"],
                      NAME["view_item"], NAME["add_to_cart"], NAME["login"], NAME["begin_checkout"], -1,
                      NAME["voice_shop"], NAME["purchase"]])
SESSION_PURCHASE, SESSION_BROWSE, SESSION_DEVICE = range(3)


def _slots(*slots: int) -> np.ndarray:
    """A lookup by event slot: True for the given slots (faster than np.isin on every event)."""
    table = np.zeros(N_SESSION_SLOTS, dtype=bool)
    table[list(slots)] = True
    return table


ENGAGED_SLOT = _slots(S_PAGE_VIEW, S_USAGE)
VALUED_SLOT = _slots(S_VIEW_ITEM, S_ADD_TO_CART, S_BEGIN_CHECKOUT, S_PURCHASE)
HOME_SLOT = _slots(S_FIRST_VISIT, S_SESSION_START)
PRODUCT_SLOT = _slots(S_VIEW_ITEM, S_ADD_TO_CART)

# --- behaviour of visitors ------------------------------------------------------------------------
COOKIE_RESET_PER_DAY_USED = 0.03
BROWSE_LOGIN = {"web": 0.2, "app": 0.7}
BROWSE_PAGE_VIEWS, BROWSE_ITEM_VIEWS, BROWSE_ADD_TO_CART = 2.0, 1.2, 0.15
PURCHASE_PAGE_VIEWS = 1.5
LAPSED_BROWSING = 0.05  # lapsed customers still visit, at this fraction of their old rate
DEVICE_PAGE_VIEW = 0.03  # chance a browsed item is a launched device, scaled by tech affinity
WEB_GAP_SECONDS, DEVICE_GAP_SECONDS = 40.0, 480.0
DUPLICATE_ROW_SHARE = 0.002


def web_client_number(id_high: np.ndarray) -> np.ndarray:
    """The random ten-digit half of a web client id (``1234567890.<first visit seconds>``)."""
    return (1_000_000_000 + (np.asarray(id_high, dtype=np.uint64) % np.uint64(1_000_000_000))).astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Clients:
    """Per person: up to four browsers/app installs and one slot per gateway device."""

    def __init__(self, pop: Population, rng: np.random.Generator):
        n = pop.size
        self.rng = rng
        self.profile = np.full((n, SLOTS), -1, dtype=np.int8)
        count = 1 + rng.binomial(3, 0.15 + 0.25 * _sigmoid(pop.tech_affinity))
        desktop = rng.random(n) < 0.6
        self.profile[:, 0] = np.where(desktop, rng.choice(DESKTOP_PROFILES, n), rng.choice(MOBILE_WEB_PROFILES, n))
        p_app = 0.3 + 0.3 * _sigmoid(pop.tech_affinity)
        for slot in range(1, WEB_APP_SLOTS):
            u = rng.random(n)
            kind = np.where(u < p_app, rng.choice(APP_PROFILES, n),
                            np.where(u < p_app + 0.15, rng.choice(TABLET_PROFILES, n), rng.choice(MOBILE_WEB_PROFILES, n)))
            self.profile[:, slot] = np.where(slot < count, kind, -1)
        is_app = np.isin(self.profile[:, :WEB_APP_SLOTS], APP_PROFILES)
        is_tablet = np.isin(self.profile[:, :WEB_APP_SLOTS], TABLET_PROFILES)
        self.weight = np.where(is_app, 0.6 + 0.8 * _sigmoid(pop.tech_affinity)[:, None], np.where(is_tablet, 0.4, 0.8))
        self.weight[:, 0] = 1.0
        self.weight[self.profile[:, :WEB_APP_SLOTS] < 0] = 0.0
        self.weight_cdf = (np.cumsum(self.weight, axis=1) / self.weight.sum(axis=1, keepdims=True)).astype(np.float32)
        del self.weight  # only the cumulative form is needed
        u = rng.random((n, SLOTS))
        web = self.profile < N_WEB_PROFILES
        denied = np.where(pop.privacy_conscious[:, None], u < 0.8, np.where(web, u < 0.05, u < 0.03))
        no_ads = ~denied & web & (rng.random((n, SLOTS)) < 0.1)
        self.consent = np.where(denied, CONSENT_DENIED, np.where(no_ads, CONSENT_NO_ADS, CONSENT_GRANTED)).astype(np.int8)
        self.consent[:, WEB_APP_SLOTS:] = CONSENT_GRANTED
        self.source = rng.choice(len(TRAFFIC_SOURCE_SHARES), (n, SLOTS), p=TRAFFIC_SOURCE_SHARES).astype(np.int8)
        self.id_high = rng.integers(0, 2**63, (n, SLOTS), dtype=np.int64).astype(np.uint64)
        self.id_low = rng.integers(0, 2**63, (n, SLOTS), dtype=np.int64).astype(np.uint64)
        # Customers from before the period already have browsers that first visited back then.
        first_touch = np.full((n, SLOTS), -1, dtype=np.int64)
        self.first_touch_us = first_touch
        self.sessions = np.where(pop.existing[:, None], rng.poisson(15, (n, SLOTS)), 0).astype(np.int32)
        self.logged_in = np.zeros((n, SLOTS), dtype=bool)
        self.announced = np.zeros((n, SLOTS), dtype=bool)
        self.sessions[:, WEB_APP_SLOTS:] = 0

    def backdate(self, pop: Population, start_us: int) -> None:
        """Existing customers' clients first touched between their first day and the period start."""
        n = pop.size
        existing = pop.existing
        days_before = np.maximum(-pop.birth_day, 1)
        for slot in range(WEB_APP_SLOTS):
            offset = (self.rng.random(n) * days_before * 86_400_000_000).astype(np.int64) + 1_000_000
            self.first_touch_us[:, slot] = np.where(existing & (self.profile[:, slot] >= 0),
                                                    start_us - offset, -1)

    def choose_slot(self, people: np.ndarray) -> np.ndarray:
        u = self.rng.random(len(people))
        return np.minimum((u[:, None] > self.weight_cdf[people]).sum(axis=1), WEB_APP_SLOTS - 1)

    def reset_cookies(self, people: np.ndarray, slots: np.ndarray) -> None:
        """Some browsers lost their cookie since last used: a new client id, a new first visit."""
        web = self.profile[people, slots] < N_WEB_PROFILES
        key = np.unique(people[web] * SLOTS + slots[web])
        reset = key[self.rng.random(len(key)) < COOKIE_RESET_PER_DAY_USED]
        p, s = reset // SLOTS, reset % SLOTS
        self.id_high[p, s] = self.rng.integers(0, 2**63, len(reset), dtype=np.int64).astype(np.uint64)
        self.first_touch_us[p, s] = -1
        self.sessions[p, s] = 0
        self.announced[p, s] = False


@dataclass
class Events:
    """One day's GA4 events as columns (sorted by timestamp), and the item rows of those events."""

    timestamp_us: np.ndarray
    name: np.ndarray  # index into EVENT_NAMES
    person: np.ndarray
    slot: np.ndarray
    profile: np.ndarray
    consent: np.ndarray
    source: np.ndarray
    client_high: np.ndarray
    client_low: np.ndarray
    first_touch_us: np.ndarray  # -1: null
    session_id: np.ndarray  # -1: absent (server-side event)
    session_number: np.ndarray
    user_member: np.ndarray  # member number of user_id; -1: null
    page: np.ndarray  # index into the page table; -1: none
    engagement_ms: np.ndarray  # -1: absent
    value_cents: np.ndarray  # -1: absent
    order: np.ndarray  # index into the day's orders for purchase events; -1 otherwise
    login_method: np.ndarray  # -1 none, 0 email, 1 device registration
    bundle: np.ndarray
    server_offset: np.ndarray  # -1: null
    item_count: np.ndarray
    item_event: np.ndarray  # item rows: event index
    item_product: np.ndarray
    item_quantity: np.ndarray
    item_price: np.ndarray
    item_discount: np.ndarray
    duplicates: int = 0

    @property
    def size(self) -> int:
        return len(self.timestamp_us)


def _lookup(values: np.ndarray, index: np.ndarray, missing: int) -> np.ndarray:
    """``values[index]`` where index >= 0, ``missing`` elsewhere (``values`` may be empty)."""
    out = np.full(len(index), missing, dtype=np.int64)
    found = index >= 0
    out[found] = values[index[found]]
    return out


def _segment_cumsum(values: np.ndarray, starts: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at every segment start."""
    total = np.cumsum(values)
    before = np.concatenate([[0], total])[starts]
    return total - before[segment]


class SessionBuilder:
    """Turns a day's people, orders and devices into GA4 sessions and events."""

    def __init__(self, pop: Population, catalog: Catalog, calendar: Calendar, world: World,
                 rng: np.random.Generator, pages: "PageIndex"):
        self.pop, self.catalog, self.calendar, self.world, self.rng = pop, catalog, calendar, world, rng
        self.clients = Clients(pop, rng)
        self.clients.backdate(pop, int(calendar.day_start_us[0]))
        self.pages = pages
        self.user_id_seen = np.zeros(0, dtype=bool)

    def _mark_user_ids(self, numbers: np.ndarray) -> None:
        numbers = numbers[numbers >= 0]
        if len(numbers) == 0:
            return
        top = int(numbers.max()) + 1
        if top > len(self.user_id_seen):
            grown = np.zeros(max(top, 2 * len(self.user_id_seen)), dtype=bool)
            grown[: len(self.user_id_seen)] = self.user_id_seen
            self.user_id_seen = grown
        self.user_id_seen[numbers] = True

    def build(self, day: int, orders: DayOrders) -> tuple[Events, np.ndarray]:
        """The day's events, and the UTC time of every order (online: its purchase event)."""
        pop, rng, world, clients = self.pop, self.rng, self.world, self.clients
        day_start, day_end = self.calendar.day_span_us(day)
        day_length = day_end - day_start
        promo = bool(self.calendar.is_promotion[day])

        # --- sessions -----------------------------------------------------------------------------
        online = np.flatnonzero((orders.channel == CHANNEL_ONLINE) & (orders.cause == CAUSE_BASELINE))
        purchase_person = orders.person[online]

        born = np.flatnonzero(pop.birth_day <= day)
        tenure = day - pop.birth_day[born]
        rate = (pop.browse_rate[born] * (1.0 - TENURE_RAMP_DEPTH * np.exp(-tenure / TENURE_RAMP_DAYS))
                * self.calendar.demand[day] * (1.5 if promo else 1.0))
        rate = np.where(world.active[born], rate, rate * LAPSED_BROWSING)
        browse_count = rng.poisson(rate)
        browse_person = np.repeat(born, browse_count)

        device_person, device_k, device_usage, device_orders, device_first_order = [], [], [], [], []
        order_device = orders.cause - 1
        for k, device in enumerate(DEVICES):
            owners = world.owners[k]
            tau = day - world.adoption_day[owners, k]
            owners, tau = owners[tau > 0], tau[tau > 0]
            usage = rng.poisson(pop.usage_rate[owners, k] * (0.5 + 0.5 * np.exp(-tau / 60.0)))
            induced = np.flatnonzero(order_device == k)
            block_people, block_first, block_count = np.unique(orders.person[induced], return_index=True,
                                                               return_counts=True)
            n_induced = np.zeros(len(owners), dtype=np.int64)
            first_order = np.full(len(owners), -1, dtype=np.int64)
            sorter = np.argsort(owners, kind="stable")
            where = sorter[np.searchsorted(owners[sorter], block_people)]
            n_induced[where] = block_count
            first_order[where] = induced[block_first]
            keep = (usage + n_induced) > 0
            device_person.append(owners[keep])
            device_k.append(np.full(keep.sum(), k))
            device_usage.append(usage[keep])
            device_orders.append(n_induced[keep])
            device_first_order.append(first_order[keep])
        device_person = np.concatenate(device_person).astype(np.int64)
        device_k = np.concatenate(device_k).astype(np.int64)
        device_usage = np.concatenate(device_usage).astype(np.int64)
        device_orders = np.concatenate(device_orders).astype(np.int64)
        device_first_order = np.concatenate(device_first_order).astype(np.int64)

        kind = np.concatenate([np.full(len(online), SESSION_PURCHASE), np.full(len(browse_person), SESSION_BROWSE),
                               np.full(len(device_person), SESSION_DEVICE)])
        person = np.concatenate([purchase_person, browse_person, device_person]).astype(np.int64)
        n_sessions = len(person)
        slot = np.concatenate([clients.choose_slot(purchase_person), clients.choose_slot(browse_person),
                               WEB_APP_SLOTS + device_k]).astype(np.int64)
        session_order = np.concatenate([online, np.full(len(browse_person), -1), device_first_order]).astype(np.int64)
        session_orders = np.concatenate([np.ones(len(online), np.int64), np.zeros(len(browse_person), np.int64),
                                         device_orders])
        session_device = np.concatenate([np.full(len(online) + len(browse_person), -1), device_k])
        device_profiles = np.array([DEVICE_PROFILE[d.key] for d in DEVICES])
        clients.profile[device_person, WEB_APP_SLOTS + device_k] = device_profiles[device_k]
        clients.reset_cookies(person[kind != SESSION_DEVICE], slot[kind != SESSION_DEVICE])

        start_fraction = np.concatenate([
            orders.time_fraction[online] - rng.uniform(0.001, 0.006, len(online)),
            diurnal_fraction(len(browse_person), rng),
            rng.uniform(0.25, 0.85, len(device_person)),
        ])
        start_us = day_start + (np.clip(start_fraction, 0.0, 0.999) * day_length).astype(np.int64)
        by_start = np.lexsort((np.arange(n_sessions), start_us))  # sessions in time order
        # First sessions of never-seen clients get a first_visit; number sessions per client.
        client_key = person * SLOTS + slot
        key_sorted = client_key[by_start]
        order_in_key = np.lexsort((np.arange(n_sessions), key_sorted))
        sorted_keys = key_sorted[order_in_key]
        run_start = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]][:n_sessions]
        rank = np.arange(n_sessions) - np.maximum.accumulate(np.where(run_start, np.arange(n_sessions), 0))
        rank_by_session = np.empty(n_sessions, dtype=np.int64)
        rank_by_session[by_start[order_in_key]] = rank
        first_of_day = rank_by_session == 0
        unseen = clients.first_touch_us[person, slot] < 0
        first_visit = first_of_day & unseen
        clients.first_touch_us[person[first_visit], slot[first_visit]] = start_us[first_visit]
        session_number = clients.sessions[person, slot] + rank_by_session + 1
        run_first = np.flatnonzero(run_start)
        used_keys = sorted_keys[run_first]
        sessions_today = np.diff(np.append(run_first, n_sessions))
        clients.sessions[used_keys // SLOTS, used_keys % SLOTS] += sessions_today
        consent = clients.consent[person, slot].astype(np.int64)
        profile = clients.profile[person, slot].astype(np.int64)
        is_web = profile < N_WEB_PROFILES
        is_device = kind == SESSION_DEVICE

        # Logins: web logins last for the session; apps and devices stay logged in afterwards.
        member = world.member_since[person] <= day
        persisted = clients.logged_in[person, slot]
        order_member = _lookup(orders.member_number, session_order, -1)
        login_checkout = (kind == SESSION_PURCHASE) & (order_member >= 0) & ~(persisted & ~is_web)
        browse_login_chance = np.where(is_web, BROWSE_LOGIN["web"], BROWSE_LOGIN["app"])
        login_early = (kind == SESSION_BROWSE) & member & ~persisted & (rng.random(n_sessions) < browse_login_chance)
        login_early |= is_device & ~persisted
        logged_from_start = persisted & ~is_web
        later = logged_from_start | login_early | login_checkout
        # Remember app/device logins in time order: a later session of the same day starts logged in.
        clients.logged_in[person[later & ~is_web], slot[later & ~is_web]] = True
        user_member = np.where(kind == SESSION_PURCHASE, order_member, world.member_number[person])
        user_member = np.where(member | (kind == SESSION_PURCHASE), user_member, -1)

        # --- events per session -------------------------------------------------------------------
        counts = np.zeros((n_sessions, N_SESSION_SLOTS), dtype=np.int64)
        counts[:, S_FIRST_VISIT] = first_visit
        counts[:, S_SESSION_START] = 1
        counts[:, S_LOGIN_EARLY] = login_early
        purchase = kind == SESSION_PURCHASE
        browse = kind == SESSION_BROWSE
        lines = np.where(purchase, _lookup(orders.line_count, session_order, 0), 0)
        counts[:, S_PAGE_VIEW] = np.where(purchase, 1 + rng.poisson(PURCHASE_PAGE_VIEWS, n_sessions),
                                          np.where(browse, 1 + rng.poisson(BROWSE_PAGE_VIEWS, n_sessions), 0))
        views = np.where(browse, rng.poisson(BROWSE_ITEM_VIEWS, n_sessions), 0)
        counts[:, S_VIEW_ITEM] = np.where(purchase, lines, views)
        counts[:, S_ADD_TO_CART] = np.where(purchase, lines, (views > 0) & (rng.random(n_sessions) < BROWSE_ADD_TO_CART))
        counts[:, S_LOGIN_CHECKOUT] = login_checkout
        counts[:, S_BEGIN_CHECKOUT] = purchase
        device_row = np.flatnonzero(is_device)
        counts[device_row, S_USAGE] = device_usage
        speaker = next(k for k, d in enumerate(DEVICES) if d.key == "speaker")
        counts[device_row, S_VOICE_SHOP] = np.where(device_k == speaker, device_orders, 0)
        counts[:, S_PURCHASE] = np.where(purchase, 1, 0)
        counts[device_row, S_PURCHASE] = device_orders

        per_session = counts.sum(axis=1)
        n_events = int(per_session.sum())
        event_session = np.repeat(np.arange(n_sessions), per_session)
        event_slot = np.repeat(np.tile(np.arange(N_SESSION_SLOTS), n_sessions), counts.ravel())
        session_first_event = np.cumsum(per_session) - per_session
        position = np.arange(n_events) - session_first_event[event_session]
        slot_first = (np.cumsum(counts, axis=1) - counts)[event_session, event_slot]
        rank_in_slot = position - slot_first

        # Names: device usage events draw from the device's mix.
        name = SLOT_NAME[event_slot].copy()
        usage_rows = np.flatnonzero(event_slot == S_USAGE)
        if len(usage_rows):
            usage_device = session_device[event_session[usage_rows]]
            u = rng.random(len(usage_rows))
            for k, device in enumerate(DEVICES):
                rows = usage_rows[usage_device == k]
                names = np.array([NAME[e] for e, _ in device.usage_events])
                cdf = np.cumsum([w for _, w in device.usage_events])
                pick = np.minimum(np.searchsorted(cdf / cdf[-1], u[usage_device == k], side="right"), len(names) - 1)
                name[rows] = names[pick]

        # Timestamps: gaps between events, the whole session kept inside the local day.
        gap_mean = np.where(is_device, DEVICE_GAP_SECONDS, WEB_GAP_SECONDS)[event_session]
        gaps = ((rng.exponential(1.0, n_events) * gap_mean + 1.0) * 1_000_000).astype(np.int64)
        gaps[session_first_event] = 0
        offset = _segment_cumsum(gaps, session_first_event, event_session)
        timestamp = start_us[event_session] + offset
        remaining = per_session[event_session] - 1 - position
        timestamp = np.minimum(timestamp, day_end - 1 - remaining)

        # User ids: from the login event on (web), from the start when the client remembers it.
        is_login = (event_slot == S_LOGIN_EARLY) | (event_slot == S_LOGIN_CHECKOUT)
        after_login = _segment_cumsum(is_login.astype(np.int64), session_first_event, event_session) > 0
        has_user = (after_login | logged_from_start[event_session]) & (user_member[event_session] >= 0)
        denied = consent[event_session] == CONSENT_DENIED
        event_user = np.where(has_user & ~denied, user_member[event_session], -1)
        self._mark_user_ids(event_user)

        # Which order each purchase event reports, and the time every order happened.
        event_order = np.full(n_events, -1, dtype=np.int64)
        purchase_rows = np.flatnonzero(event_slot == S_PURCHASE)
        event_order[purchase_rows] = session_order[event_session[purchase_rows]] + rank_in_slot[purchase_rows]
        order_time = self.calendar.local_to_utc_us(day, orders.time_fraction)
        order_time[event_order[purchase_rows]] = timestamp[purchase_rows]

        # Item rows: purchase sessions show their basket; browsing shows products by taste.
        item_event, item_product, item_quantity, item_price, item_discount = self._items(
            n_events, event_slot, event_session, rank_in_slot, kind, session_order, session_orders,
            event_order, orders, person, day)

        # Server-side subscription bills (Measurement Protocol): a purchase without a session.
        bills = np.flatnonzero(orders.cause == CAUSE_SUBSCRIPTION)
        server = self._server_events(bills, orders, order_time)

        # Page/screen of each event.
        page = self.pages.for_events(event_slot, item_event, item_product, n_events, person[event_session],
                                     pop, rng, kind[event_session])
        engagement = np.where(ENGAGED_SLOT[event_slot],
                              (rng.exponential(20_000.0, n_events) + 500).astype(np.int64), -1)
        is_app_event = ~is_web[event_session]
        value = np.full(n_events, -1, dtype=np.int64)
        if len(item_event):
            revenue = item_price * item_quantity - item_discount
            summed = np.bincount(item_event, weights=revenue, minlength=n_events)
            has_items = np.bincount(item_event, minlength=n_events) > 0
            value = np.where(has_items, np.rint(summed).astype(np.int64), -1)
        item_count = np.bincount(item_event, minlength=n_events) if len(item_event) else np.zeros(n_events, np.int64)

        bundle = rng.integers(1_000_000_000, 4_000_000_000, n_events)
        server_offset = np.where(is_app_event, rng.integers(1_000_000, 10_000_000, n_events), -1)
        sid_present = consent[event_session] != CONSENT_DENIED
        events = Events(
            timestamp_us=timestamp,
            name=name,
            person=person[event_session],
            slot=slot[event_session],
            profile=profile[event_session],
            consent=consent[event_session],
            source=clients.source[person, slot][event_session].astype(np.int64),
            client_high=clients.id_high[person, slot][event_session],
            client_low=clients.id_low[person, slot][event_session],
            first_touch_us=np.where(sid_present, clients.first_touch_us[person, slot][event_session], -1),
            session_id=np.where(sid_present, start_us[event_session] // 1_000_000, -1),
            session_number=np.where(sid_present, session_number[event_session], -1),
            user_member=event_user,
            page=page,
            engagement_ms=engagement,
            value_cents=np.where(VALUED_SLOT[event_slot], value, -1),
            order=event_order,
            login_method=np.where(is_login, np.where(is_device[event_session], 1, 0), -1),
            bundle=bundle,
            server_offset=server_offset,
            item_count=item_count,
            item_event=item_event,
            item_product=item_product,
            item_quantity=item_quantity,
            item_price=item_price,
            item_discount=item_discount,
        )
        events = _concatenate_events(events, server)
        events = self._sort_and_duplicate(events)
        return events, order_time

    # ---------------------------------------------------------------------------------------------

    def _items(self, n_events, event_slot, event_session, rank_in_slot, kind, session_order,
               session_orders, event_order, orders: DayOrders, person, day):
        """Item rows (event, product, quantity, unit price, discount) for every ecommerce event."""
        rng, pop, cat = self.rng, self.pop, self.catalog
        ev_kind = kind[event_session]
        # Purchase sessions: item views and cart adds show one basket line each.
        one_line = np.flatnonzero(((event_slot == S_VIEW_ITEM) | (event_slot == S_ADD_TO_CART))
                                  & (ev_kind == SESSION_PURCHASE))
        line_of_one = orders.line_start[session_order[event_session[one_line]]] + rank_in_slot[one_line]
        # Checkout and purchase events show the whole basket of their order.
        checkout = np.flatnonzero((event_slot == S_BEGIN_CHECKOUT))
        checkout_order = session_order[event_session[checkout]]
        purchase = np.flatnonzero(event_slot == S_PURCHASE)
        basket_event = np.concatenate([checkout, purchase])
        basket_order = np.concatenate([checkout_order, event_order[purchase]])
        n_lines = orders.line_count[basket_order]
        basket_rows = np.repeat(basket_event, n_lines)
        basket_lines = (np.repeat(orders.line_start[basket_order] - np.cumsum(n_lines) + n_lines, n_lines)
                        + np.arange(int(n_lines.sum())))
        # Browsing: products by taste (now and then a launched device); the cart add repeats the
        # session's first viewed product.
        browse_view = np.flatnonzero((event_slot == S_VIEW_ITEM) & (ev_kind == SESSION_BROWSE))
        viewer = person[event_session[browse_view]]
        u = rng.random(len(browse_view))
        category = np.minimum((u[:, None] > pop.taste_cdf[viewer]).sum(axis=1), len(CATEGORIES) - 1)
        viewed = draw_products(cat, category, rng)
        launched = np.flatnonzero(day >= self.world.launch_day)
        device_view = rng.random(len(browse_view)) < DEVICE_PAGE_VIEW * np.exp(0.5 * pop.tech_affinity[viewer])
        if len(launched):
            viewed = np.where(device_view, cat.device_product[rng.choice(launched, len(browse_view))], viewed)
        browse_cart = np.flatnonzero((event_slot == S_ADD_TO_CART) & (ev_kind == SESSION_BROWSE))
        first_view_of_session = np.full(len(kind), -1, dtype=np.int64)
        first_rows = browse_view[rank_in_slot[browse_view] == 0]
        first_view_of_session[event_session[first_rows]] = viewed[rank_in_slot[browse_view] == 0]
        cart_product = first_view_of_session[event_session[browse_cart]]

        event = np.concatenate([one_line, basket_rows, browse_view, browse_cart])
        line = np.concatenate([line_of_one, basket_lines])
        product = np.concatenate([orders.line_product[line], viewed, cart_product])
        quantity = np.concatenate([orders.line_quantity[line], np.ones(len(browse_view) + len(browse_cart), np.int64)])
        price = np.concatenate([orders.line_unit_price[line], cat.price_cents[viewed], cat.price_cents[cart_product]])
        discount = np.concatenate([orders.line_discount[line], np.zeros(len(browse_view) + len(browse_cart), np.int64)])
        order = np.argsort(event, kind="stable")
        return event[order], product[order], quantity[order], price[order], discount[order]

    def _server_events(self, bills: np.ndarray, orders: DayOrders, order_time: np.ndarray) -> Events:
        """Subscription bills sent server-side with the member's web client id and user id."""
        clients, rng = self.clients, self.rng
        n = len(bills)
        person = orders.person[bills]
        slot = np.zeros(n, dtype=np.int64)
        consent = clients.consent[person, slot].astype(np.int64)
        denied = consent == CONSENT_DENIED
        lines = orders.line_start[bills]
        user = np.where(denied, -1, orders.member_number[bills])
        self._mark_user_ids(user)
        # A bill's client id exists even when that browser has not visited yet.
        unseen = clients.first_touch_us[person, slot] < 0
        clients.first_touch_us[person[unseen], slot[unseen]] = order_time[bills][unseen]
        revenue = orders.line_unit_price[lines] * orders.line_quantity[lines] - orders.line_discount[lines]
        return Events(
            timestamp_us=order_time[bills],
            name=np.full(n, NAME["purchase"]),
            person=person,
            slot=slot,
            profile=clients.profile[person, slot].astype(np.int64),
            consent=consent,
            source=clients.source[person, slot].astype(np.int64),
            client_high=clients.id_high[person, slot],
            client_low=clients.id_low[person, slot],
            first_touch_us=np.where(denied, -1, clients.first_touch_us[person, slot]),
            session_id=np.full(n, -2),  # absent: no session parameters at all
            session_number=np.full(n, -2),
            user_member=user,
            page=np.full(n, -1),
            engagement_ms=np.full(n, -1),
            value_cents=revenue,
            order=bills,
            login_method=np.full(n, -1),
            bundle=rng.integers(1_000_000_000, 4_000_000_000, n),
            server_offset=np.full(n, -1),
            item_count=np.ones(n, dtype=np.int64),
            item_event=np.arange(n),
            item_product=orders.line_product[lines],
            item_quantity=orders.line_quantity[lines],
            item_price=orders.line_unit_price[lines],
            item_discount=orders.line_discount[lines],
        )

    def _sort_and_duplicate(self, events: Events) -> Events:
        """Events in time order, with a few exact duplicate rows as real exports contain."""
        n = events.size
        order = np.argsort(events.timestamp_us, kind="stable")
        copies = 1 + (self.rng.random(n) < DUPLICATE_ROW_SHARE)
        take = np.repeat(order, copies[order])
        return _take_events(events, take, duplicates=int((copies - 1).sum()))

    def announcements(self, events: Events) -> tuple[np.ndarray, np.ndarray]:
        """(person, slot) of consenting clients seen for the first time today."""
        granted = events.consent != CONSENT_DENIED
        key = np.unique(events.person[granted] * SLOTS + events.slot[granted])
        people, slots = key // SLOTS, key % SLOTS
        new = ~self.clients.announced[people, slots]
        people, slots = people[new], slots[new]
        self.clients.announced[people, slots] = True
        return people, slots


_EVENT_COLUMNS = ("timestamp_us", "name", "person", "slot", "profile", "consent", "source", "client_high",
                  "client_low", "first_touch_us", "session_id", "session_number", "user_member", "page",
                  "engagement_ms", "value_cents", "order", "login_method", "bundle", "server_offset",
                  "item_count")
_ITEM_COLUMNS = ("item_product", "item_quantity", "item_price", "item_discount")


def _concatenate_events(a: Events, b: Events) -> Events:
    columns = {c: np.concatenate([getattr(a, c), getattr(b, c)]) for c in _EVENT_COLUMNS}
    items = {c: np.concatenate([getattr(a, c), getattr(b, c)]) for c in _ITEM_COLUMNS}
    items["item_event"] = np.concatenate([a.item_event, b.item_event + a.size])
    return Events(**columns, **items)


def _take_events(events: Events, take: np.ndarray, duplicates: int) -> Events:
    columns = {c: getattr(events, c)[take] for c in _EVENT_COLUMNS}
    # Item rows follow their events: gather each taken event's item rows in the new order.
    starts = (np.cumsum(events.item_count) - events.item_count).astype(np.int64)
    counts = events.item_count[take]
    rows = np.repeat(starts[take] - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    items = {c: getattr(events, c)[rows] for c in _ITEM_COLUMNS}
    items["item_event"] = np.repeat(np.arange(len(take)), counts)
    return Events(**columns, **items, duplicates=duplicates)


class PageIndex:
    """Pages of the web shop (and the matching app screens): home, checkout, categories, products."""

    HOME, CHECKOUT, COMPLETE, SIGN_IN = range(4)

    def __init__(self, catalog: Catalog):
        self.category_base = 4
        self.product_base = 4 + len(CATEGORIES)
        self.catalog = catalog

    def for_events(self, event_slot, item_event, item_product, n_events, event_person, pop, rng, event_kind):
        page = np.full(n_events, -1, dtype=np.int64)
        web_or_app = event_kind != SESSION_DEVICE
        page[web_or_app & HOME_SLOT[event_slot]] = self.HOME
        views = np.flatnonzero(web_or_app & (event_slot == S_PAGE_VIEW))
        u = rng.random(len(views))
        category = np.minimum((u[:, None] > pop.taste_cdf[event_person[views]]).sum(axis=1), len(CATEGORIES) - 1)
        page[views] = self.category_base + category
        page[web_or_app & ((event_slot == S_LOGIN_EARLY) | (event_slot == S_LOGIN_CHECKOUT))] = self.SIGN_IN
        page[web_or_app & (event_slot == S_BEGIN_CHECKOUT)] = self.CHECKOUT
        page[web_or_app & (event_slot == S_PURCHASE)] = self.COMPLETE
        product_events = np.flatnonzero(PRODUCT_SLOT[event_slot])
        if len(product_events) and len(item_event):
            first_item = np.searchsorted(item_event, product_events)
            page[product_events] = self.product_base + item_product[first_item]
        return page


__all__ = ["web_client_number", "Clients", "Events", "EVENT_NAMES", "PageIndex", "SessionBuilder", "SLOTS", "WEB_APP_SLOTS"]
