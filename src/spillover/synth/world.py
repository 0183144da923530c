"""The daily simulation: who is active, what they buy, which devices they adopt, what owning one changes.

Every random draw of the shopping process is made whatever the device ownership, so the world
without a device is the same draws with the device's effects left out (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spillover.synth.clock import Calendar
from spillover.synth.catalog import CATEGORIES, CATEGORY_INDEX, DEVICES, SUBSCRIPTION, Catalog, draw_products
from spillover.synth.people import Population

NEVER = np.iinfo(np.int64).max // 4  # "day" of an event that has not happened
CHANNEL_ONLINE, CHANNEL_STORE, CHANNEL_CALL_CENTRE = 0, 1, 2
CHANNELS = ("online", "store", "call_centre")
#: Order causes: baseline shopping, one per device (orders the device induced), the subscription.
CAUSE_BASELINE = 0
CAUSE_SUBSCRIPTION = 1 + len(DEVICES)
CAUSES = ("baseline", *(d.key for d in DEVICES), "subscription")
SPEAKER = next(k for k, d in enumerate(DEVICES) if d.key == "speaker")

TENURE_RAMP_DEPTH, TENURE_RAMP_DAYS = 0.6, 120.0
PROMO_ORDER_LIFT = (0.3, 1.2)  # demand x (1 + a + b * price sensitivity) on promotion days
DISCOUNT_BASE, DISCOUNT_PRICE_SENSITIVITY, DISCOUNT_PROMO_LIFT = 0.04, 0.25, 2.5
ATTACH_PROMO = (2.0, 6.0)  # attach x (1 + a + b * price sensitivity) on promotion days
ATTACH_LAUNCH_DAYS, ATTACH_LAUNCH_LIFT = 60, 3.0
ATTACH_ACQUISITION = 3.0
LOGIN_ONLINE, MEMBER_CARD_STORE, MEMBER_CALL_CENTRE = 0.88, 0.7, 0.9
GUEST_EMAIL = (0.97, 0.08, 0.6)  # chance a guest leaves an email, by channel
SECONDARY_ID_SHARE = 0.5
_EXTRA_QUANTITY = np.array([c.extra_quantity for c in CATEGORIES])
_CANNIBALISED = [np.isin(np.arange(len(CATEGORIES)), [CATEGORY_INDEX[c] for c in d.cannibalised_categories])
                 for d in DEVICES]


def effect_profile(device_index: int, days_owned: np.ndarray) -> np.ndarray:
    """g(tau): the share of the full effect reached ``tau`` days after adoption (0 at tau <= 0)."""
    device = DEVICES[device_index]
    tau = np.asarray(days_owned, dtype=np.float64)
    build = 1.0 - np.exp(-tau / device.effect_build_days)
    decay = device.effect_floor + (1.0 - device.effect_floor) * np.exp(-tau / device.effect_decay_days)
    return np.where(tau > 0, build * decay, 0.0)


_DIURNAL_SHARE = np.cumsum([0.2, 0.25, 0.45, 0.10])
_DIURNAL_MEAN = np.array([8.5, 12.5, 20.0, 0.0])
_DIURNAL_SD = np.array([1.5, 1.5, 2.0, 0.0])


def diurnal_fraction(n: int, rng: np.random.Generator) -> np.ndarray:
    """Local time of day (fraction of the day) of online activity: morning, lunch and evening peaks
    (normal, hours 8.5±1.5, 12.5±1.5, 20±2) and a late-night tail (uniform 22–24 h)."""
    component = np.minimum(np.searchsorted(_DIURNAL_SHARE, rng.random(n), side="right"), 3)
    late = component == 3
    hours = _DIURNAL_MEAN[component] + _DIURNAL_SD[component] * rng.standard_normal(n)
    hours = np.where(late, 22.0 + 2.0 * rng.random(n), hours)
    return np.mod(hours, 24.0) / 24.0


@dataclass
class DayOrders:
    """The orders of one day as they happened (the factual world), with their lines."""

    person: np.ndarray
    cause: np.ndarray
    channel: np.ndarray
    time_fraction: np.ndarray
    member_number: np.ndarray  # -1: guest
    guest_email: np.ndarray
    store: np.ndarray  # -1: not a store order
    line_start: np.ndarray
    line_count: np.ndarray
    line_product: np.ndarray
    line_quantity: np.ndarray
    line_unit_price: np.ndarray
    line_discount: np.ndarray
    line_unit_cost: np.ndarray

    @property
    def size(self) -> int:
        return len(self.person)

    def line_order(self) -> np.ndarray:
        return np.repeat(np.arange(self.size), self.line_count)

    def line_margin(self) -> np.ndarray:
        return (self.line_unit_price - self.line_unit_cost) * self.line_quantity - self.line_discount

    def line_revenue(self) -> np.ndarray:
        return self.line_unit_price * self.line_quantity - self.line_discount


@dataclass
class Counterfactual:
    """What the day's factual orders leave out: margin per person that only the world without
    device k would have (cannibalised lines), and what only the world with it has (induced)."""

    induced_margin: list[np.ndarray]  # per device: margin of each order placed through it
    induced_person: list[np.ndarray]  # ... and who placed it
    cannibalised_margin: list[np.ndarray]  # per device: margin of each baseline line it replaced
    cannibalised_person: list[np.ndarray]
    subscription_margin: np.ndarray  # the speaker's voice-premium bills
    subscription_person: np.ndarray


class World:
    """Mutable per-person state and the step that advances it by one day."""

    def __init__(self, population: Population, catalog: Catalog, calendar: Calendar,
                 rng: np.random.Generator, effect_rngs: list[np.random.Generator],
                 without_effects_of: frozenset[str] = frozenset()):
        self.pop = population
        self.catalog = catalog
        self.calendar = calendar
        self.rng = rng
        self.effect_rngs = effect_rngs
        self.effects_on = [d.key not in without_effects_of for d in DEVICES]
        n = population.size
        self.active = population.existing & population.alive_at_start
        self.churn_day = np.where(population.existing & ~population.alive_at_start, -1, NEVER).astype(np.int64)
        self.adoption_day = np.full((n, len(DEVICES)), NEVER, dtype=np.int64)
        self.owners: list[np.ndarray] = [np.empty(0, dtype=np.int64) for _ in DEVICES]
        self.member_since = np.where(population.member_at_birth, population.birth_day, NEVER).astype(np.int64)
        self.member_number = np.full(n, -1, dtype=np.int64)
        self.secondary_number = np.full(n, -1, dtype=np.int64)
        self.secondary_day = np.where(
            population.duplicate_registration,
            self.member_since + rng.integers(30, 700, n),
            NEVER,
        ).astype(np.int64)
        self.subscribed = np.zeros(n, dtype=bool)
        self.next_bill_day = np.full(n, NEVER, dtype=np.int64)
        self.next_member_number = 1
        self.launch_day = np.array([round(d.launch_fraction * calendar.days) for d in DEVICES])
        order = np.argsort(population.birth_day, kind="stable")
        new = order[population.birth_day[order] >= 0]
        self._births_by_day = np.split(new, np.searchsorted(population.birth_day[new], np.arange(1, calendar.total_days)))
        self._register_before_start()

    # ---------------------------------------------------------------------------------------------
    # membership

    def _register(self, people: np.ndarray, secondary: bool) -> None:
        numbers = self.next_member_number + np.arange(len(people), dtype=np.int64)
        self.next_member_number += len(people)
        if secondary:
            self.secondary_number[people] = numbers
        else:
            self.member_number[people] = numbers

    def _register_before_start(self) -> None:
        """Member numbers of registrations before the period, in the order they happened."""
        primary = np.flatnonzero(self.member_since < 0)
        secondary = np.flatnonzero(self.secondary_day < 0)
        days = np.concatenate([self.member_since[primary], self.secondary_day[secondary]])
        people = np.concatenate([primary, secondary])
        kind = np.concatenate([np.zeros(len(primary), bool), np.ones(len(secondary), bool)])
        order = np.lexsort((people, days))
        numbers = self.next_member_number + np.arange(len(order), dtype=np.int64)
        self.next_member_number += len(order)
        first, second = order[~kind[order]], order[kind[order]]
        self.member_number[people[first]] = numbers[np.flatnonzero(~kind[order])]
        self.secondary_number[people[second]] = numbers[np.flatnonzero(kind[order])]

    def is_member(self, people: np.ndarray, day: int) -> np.ndarray:
        return self.member_since[people] <= day

    # ---------------------------------------------------------------------------------------------
    # the day

    def simulate_day(self, day: int) -> tuple[DayOrders, Counterfactual]:
        """Advance one day; return its factual orders and what the devices changed in them."""
        pop, rng, cat = self.pop, self.rng, self.catalog
        promo = bool(self.calendar.is_promotion[day])
        born = self._births_by_day[day] if day < len(self._births_by_day) else np.empty(0, np.int64)
        self.active[born] = True

        # Baseline shopping trips: a Poisson process per active person.
        people = np.flatnonzero(self.active)
        tenure = day - pop.birth_day[people]
        rate = (pop.order_rate[people] * (1.0 - TENURE_RAMP_DEPTH * np.exp(-tenure / TENURE_RAMP_DAYS))
                * self.calendar.demand[day])
        if promo:
            rate = rate * (1.0 + PROMO_ORDER_LIFT[0] + PROMO_ORDER_LIFT[1] * pop.price_sensitivity[people])
        trips = rng.poisson(rate)
        acquisition = pop.birth_day[people] == day
        trips[acquisition] = np.maximum(trips[acquisition], 1)
        order_person = np.repeat(people, trips)
        first_trip = np.zeros(len(order_person), dtype=bool)
        first_trip[np.cumsum(trips)[trips > 0] - trips[trips > 0]] = True
        order_acquisition = np.repeat(acquisition, trips) & first_trip
        n_orders = len(order_person)

        # Baskets: 1 + Poisson lines; category by taste, product by popularity.
        lines = 1 + rng.poisson(pop.extra_lines[order_person])
        line_order = np.repeat(np.arange(n_orders), lines)
        line_person = order_person[line_order]
        u = rng.random(len(line_order))
        category = (u[:, None] > pop.taste_cdf[line_person]).sum(axis=1)
        category = np.minimum(category, len(CATEGORIES) - 1)
        product = draw_products(cat, category, rng)
        quantity = 1 + rng.poisson(_EXTRA_QUANTITY[category])
        price = cat.price_cents[product]
        discount_chance = DISCOUNT_BASE + DISCOUNT_PRICE_SENSITIVITY * pop.price_sensitivity[line_person]
        if promo:
            discount_chance = np.minimum(discount_chance * DISCOUNT_PROMO_LIFT, 0.9)
        discounted = rng.random(len(line_order)) < discount_chance
        discount = np.where(discounted, np.round(rng.uniform(0.1, 0.3, len(line_order)) * price * quantity), 0)
        discount = discount.astype(np.int64)
        cannibal_draw = rng.random(len(line_order))  # drawn whether or not anyone owns a device

        # Channel and time of day.
        channel_draw = rng.random(n_orders)
        online = channel_draw < pop.online_share[order_person]
        call = ~online & (channel_draw < pop.online_share[order_person] + pop.call_centre_share[order_person])
        channel = np.where(online, CHANNEL_ONLINE, np.where(call, CHANNEL_CALL_CENTRE, CHANNEL_STORE))
        time_fraction = np.select(
            [channel == CHANNEL_ONLINE, channel == CHANNEL_STORE],
            [diurnal_fraction(n_orders, rng), rng.uniform(9 / 24, 21 / 24, n_orders)],
            rng.uniform(8 / 24, 20 / 24, n_orders),
        )
        away = rng.random(n_orders) < 0.1
        store = np.where(
            channel == CHANNEL_STORE,
            np.where(away, rng.integers(0, int(pop.home_store.max()) + 1, n_orders), pop.home_store[order_person]),
            -1,
        )

        # Adoption: a device is added to a shopping basket with a trait-driven probability.
        attach_draw = rng.random((n_orders, len(DEVICES)))
        adopters: list[np.ndarray] = []
        device_line_order, device_line_product, device_line_discount = [], [], []
        for k, device in enumerate(DEVICES):
            if day < self.launch_day[k]:
                adopters.append(np.empty(0, np.int64))
                continue
            chance = device.attach_base * pop.attach_score[order_person, k]
            if promo:
                chance = chance * (1.0 + ATTACH_PROMO[0] + ATTACH_PROMO[1] * pop.price_sensitivity[order_person])
            if day - self.launch_day[k] < ATTACH_LAUNCH_DAYS:
                early = 1.0 / (1.0 + np.exp(-2.0 * (pop.tech_affinity[order_person] - 0.5)))
                chance = chance * (1.0 + ATTACH_LAUNCH_LIFT * early)
            chance = np.where(order_acquisition, chance * ATTACH_ACQUISITION, chance)
            attach = (attach_draw[:, k] < np.minimum(chance, 0.9)) & (self.adoption_day[order_person, k] == NEVER)
            candidates = np.flatnonzero(attach)
            _, first = np.unique(order_person[candidates], return_index=True)
            chosen = candidates[first]
            who = order_person[chosen]
            self.adoption_day[who, k] = day
            self.owners[k] = np.concatenate([self.owners[k], who])
            adopters.append(who)
            device_line_order.append(chosen)
            device_line_product.append(np.full(len(chosen), cat.device_product[k]))
            device_line_discount.append(
                np.full(len(chosen), device.price_cents - device.promo_price_cents if promo else 0)
            )
        adopted_any = np.unique(np.concatenate(adopters)) if adopters else np.empty(0, np.int64)
        signups = adopted_any[self.member_since[adopted_any] > day]
        self.member_since[signups] = day

        # Cannibalisation: owners drop some baseline lines the device replaces.
        kept = np.ones(len(line_order), dtype=bool)
        line_margin = (price - cat.unit_cost_cents[product]) * quantity - discount
        cannibalised_person, cannibalised_margin = [], []
        for k, device in enumerate(DEVICES):
            affected = _CANNIBALISED[k][category]
            owned = self.adoption_day[line_person, k] < day
            drop = affected & owned & (cannibal_draw < device.cannibalisation) & self.effects_on[k]
            kept &= ~drop
            cannibalised_person.append(line_person[drop])
            cannibalised_margin.append(line_margin[drop])

        # Dropout after a shopping trip (BG/NBD-like), whether or not the basket survived.
        lapse = rng.random(n_orders) < pop.dropout_probability[order_person]
        lapsed = np.unique(order_person[lapse])
        self.active[lapsed] = False
        self.churn_day[lapsed] = day

        # Orders the devices induce, and the speaker's subscription bills.
        induced = [self._induced_orders(day, k) for k in range(len(DEVICES))]
        bills = self._subscription_bills(day)
        # Registrations that happen today (new members, adopters signing up, duplicate accounts).
        new_primary = np.unique(np.concatenate([born[self.member_since[born] == day], signups]))
        self._register(new_primary[self.member_number[new_primary] < 0], secondary=False)
        due = np.flatnonzero(self.secondary_day == day)
        self._register(due[self.secondary_number[due] < 0], secondary=True)

        # Bookings are drawn for every trip, kept or not, so the draws never depend on the devices.
        adopted_today = np.isin(order_person, adopted_any)
        member_number, guest_email = self._book(day, order_person, channel, rng, adopted_today)

        # Assemble the factual orders: baseline baskets (with device lines) that kept a line,
        # then the induced orders, then the bills.
        all_line_order = np.concatenate([line_order[kept], *device_line_order]).astype(np.int64)
        all_product = np.concatenate([product[kept], *device_line_product]).astype(np.int64)
        all_quantity = np.concatenate([quantity[kept], np.ones(sum(len(x) for x in device_line_order), np.int64)])
        all_discount = np.concatenate([discount[kept], *device_line_discount]).astype(np.int64)
        sort = np.argsort(all_line_order, kind="stable")
        all_line_order, all_product = all_line_order[sort], all_product[sort]
        all_quantity, all_discount = all_quantity[sort], all_discount[sort]
        count = np.bincount(all_line_order, minlength=n_orders)
        surviving = count > 0
        baseline = self._orders(
            order_person[surviving], CAUSE_BASELINE, channel[surviving], time_fraction[surviving],
            store[surviving], member_number[surviving], guest_email[surviving], count[surviving],
            all_product, all_quantity, all_discount,
        )
        parts = [baseline, *induced, bills]
        orders = _concatenate_orders(parts, cat)
        counterfactual = Counterfactual(
            induced_margin=[_margin_by_order(p, cat) for p in induced],
            induced_person=[p.person for p in induced],
            cannibalised_margin=cannibalised_margin,
            cannibalised_person=cannibalised_person,
            subscription_margin=_margin_by_order(bills, cat),
            subscription_person=bills.person,
        )
        return orders, counterfactual

    def _book(self, day: int, person: np.ndarray, channel: np.ndarray, rng: np.random.Generator,
              always_identified: np.ndarray | bool) -> tuple[np.ndarray, np.ndarray]:
        """Who each order is booked to: a member number when a member identifies, else a guest
        (who may leave an email). Returns (member number or -1, guest left an email)."""
        n = len(person)
        identifies = np.select(
            [channel == CHANNEL_ONLINE, channel == CHANNEL_STORE],
            [rng.random(n) < LOGIN_ONLINE, rng.random(n) < MEMBER_CARD_STORE],
            rng.random(n) < MEMBER_CALL_CENTRE,
        )
        numbers = self.member_number[person].copy()
        has_second = (self.secondary_number[person] >= 0) & (self.secondary_day[person] <= day)
        use_second = has_second & (rng.random(n) < SECONDARY_ID_SHARE)
        numbers[use_second] = self.secondary_number[person][use_second]
        member_order = self.is_member(person, day) & (identifies | always_identified)
        guest_email = ~member_order & (rng.random(n) < np.array(GUEST_EMAIL)[channel])
        return np.where(member_order, numbers, -1), guest_email

    def _orders(self, person: np.ndarray, cause: int, channel: np.ndarray, time_fraction: np.ndarray,
                store: np.ndarray, member_number: np.ndarray, guest_email: np.ndarray,
                line_count: np.ndarray, product: np.ndarray, quantity: np.ndarray,
                discount: np.ndarray) -> DayOrders:
        n = len(person)
        cat = self.catalog
        return DayOrders(
            person=person.astype(np.int64),
            cause=np.full(n, cause, dtype=np.int64),
            channel=channel.astype(np.int64),
            time_fraction=time_fraction,
            member_number=member_number.astype(np.int64),
            guest_email=guest_email.astype(bool),
            store=store.astype(np.int64),
            line_start=_starts(line_count),
            line_count=line_count.astype(np.int64),
            line_product=product.astype(np.int64),
            line_quantity=quantity.astype(np.int64),
            line_unit_price=cat.price_cents[product],
            line_discount=discount.astype(np.int64),
            line_unit_cost=cat.unit_cost_cents[product],
        )

    def _no_orders(self, cause: int) -> DayOrders:
        empty = np.empty(0, dtype=np.int64)
        return self._orders(empty, cause, empty, np.empty(0), empty, empty, np.empty(0, bool), empty,
                            empty, empty, empty)

    def _induced_orders(self, day: int, k: int) -> DayOrders:
        """Orders device k causes its owners to place through it (from the day after adoption)."""
        device, pop, rng = DEVICES[k], self.pop, self.effect_rngs[k]
        owners = self.owners[k] if self.effects_on[k] else np.empty(0, np.int64)
        tau = day - self.adoption_day[owners, k]
        rate = pop.effect_scale[owners, k] * effect_profile(k, tau)
        count = rng.poisson(rate)
        person = np.repeat(owners, count)
        n = len(person)
        if n == 0:
            return self._no_orders(1 + k)
        lines = 1 + rng.poisson(device.induced_extra_lines, n)
        line_person = np.repeat(person, lines)
        choices = np.array([CATEGORY_INDEX[c] for c in device.induced_categories])
        if len(choices) == 1:
            category = np.full(len(line_person), choices[0])
        else:
            weights = pop.taste[line_person][:, choices]
            cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
            category = choices[np.minimum((rng.random(len(line_person))[:, None] > cdf).sum(axis=1), len(choices) - 1)]
        product = draw_products(self.catalog, category, rng)
        quantity = 1 + rng.poisson(_EXTRA_QUANTITY[category])
        channel = np.full(n, CHANNEL_ONLINE)
        member_number, _ = self._book(day, person, channel, rng, True)
        return self._orders(
            person, 1 + k, channel, diurnal_fraction(n, rng), np.full(n, -1), member_number,
            np.zeros(n, dtype=bool), lines, product, quantity, np.zeros(len(line_person), dtype=np.int64),
        )

    def _subscription_bills(self, day: int) -> DayOrders:
        """Speaker owners take up voice premium; each bill is an order, cancelled after some bills."""
        rng, sub = self.effect_rngs[SPEAKER], SUBSCRIPTION
        owners = self.owners[SPEAKER] if self.effects_on[SPEAKER] else np.empty(0, np.int64)
        tau = day - self.adoption_day[owners, SPEAKER]
        eligible = owners[(tau > 0) & ~self.subscribed[owners]]
        tau_eligible = day - self.adoption_day[eligible, SPEAKER]
        hazard = sub.uptake_per_day + sub.uptake_bump_per_day * np.exp(-tau_eligible / sub.uptake_bump_days)
        starting = eligible[rng.random(len(eligible)) < hazard]
        self.subscribed[starting] = True
        self.next_bill_day[starting] = day
        billed = owners[self.next_bill_day[owners] == day]
        cancel = rng.random(len(billed)) < sub.cancel_after_bill
        self.subscribed[billed[cancel]] = False
        self.next_bill_day[billed[cancel]] = NEVER
        self.next_bill_day[billed[~cancel]] = day + sub.billing_days
        n = len(billed)
        product = np.full(n, self.catalog.subscription_product, dtype=np.int64)
        channel = np.full(n, CHANNEL_ONLINE)
        member_number, _ = self._book(day, billed, channel, rng, True)
        return self._orders(
            billed, CAUSE_SUBSCRIPTION, channel, rng.uniform(0.1, 0.15, n), np.full(n, -1), member_number,
            np.zeros(n, dtype=bool), np.ones(n, dtype=np.int64), product, np.ones(n, dtype=np.int64),
            np.zeros(n, dtype=np.int64),
        )


def _starts(counts: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        starts[1:] = np.cumsum(counts)[:-1]
    return starts


def _margin_by_order(orders: DayOrders, catalog: Catalog) -> np.ndarray:
    margin = orders.line_margin()
    if orders.size == 0:
        return np.empty(0, dtype=np.int64)
    return np.add.reduceat(margin, orders.line_start) if len(margin) else np.zeros(orders.size, np.int64)


def _concatenate_orders(parts: list[DayOrders], catalog: Catalog) -> DayOrders:
    counts = np.concatenate([p.line_count for p in parts])
    return DayOrders(
        person=np.concatenate([p.person for p in parts]),
        cause=np.concatenate([p.cause for p in parts]),
        channel=np.concatenate([p.channel for p in parts]),
        time_fraction=np.concatenate([p.time_fraction for p in parts]),
        member_number=np.concatenate([p.member_number for p in parts]),
        guest_email=np.concatenate([p.guest_email for p in parts]),
        store=np.concatenate([p.store for p in parts]),
        line_start=_starts(counts),
        line_count=counts,
        line_product=np.concatenate([p.line_product for p in parts]),
        line_quantity=np.concatenate([p.line_quantity for p in parts]),
        line_unit_price=np.concatenate([p.line_unit_price for p in parts]),
        line_discount=np.concatenate([p.line_discount for p in parts]),
        line_unit_cost=np.concatenate([p.line_unit_cost for p in parts]),
    )
