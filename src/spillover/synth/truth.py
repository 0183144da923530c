"""The ground truth: each adopter's downstream margin with and without the device, and the future.

Margins are integer cents, accumulated day by day from the factual orders and from what the device
changed (induced orders, cannibalised lines), so the world without the device shares every draw.
"""

from __future__ import annotations

import math

import numpy as np

from spillover.synth.catalog import DEVICES, Catalog
from spillover.synth.world import SPEAKER, Counterfactual, DayOrders

HORIZONS = (90, 180, 365)
HOLDOUT_WINDOWS = (180, 365)


def _sums(codes: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Integer sums of ``values`` by code (0 .. size - 1)."""
    if len(codes) == 0:
        return np.zeros(size, dtype=np.int64)
    return np.rint(np.bincount(codes, weights=values, minlength=size)).astype(np.int64)


def _sums_by_key(keys: np.ndarray, people: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """Per key (sorted, distinct people), the integer sum of ``values`` over rows of that person, or
    the number of rows when ``values`` is None; rows of people not among the keys are left out."""
    if len(keys) == 0 or len(people) == 0:
        return np.zeros(len(keys), dtype=np.int64)
    position = np.minimum(np.searchsorted(keys, people), len(keys) - 1)
    found = keys[position] == people
    if values is None:
        return np.bincount(position[found], minlength=len(keys)).astype(np.int64)
    return _sums(position[found], values[found], len(keys))


class Ledger:
    """Accumulates margins per person and per adopter; all money in integer cents."""

    def __init__(self, size: int, days: int, catalog: Catalog):
        self.size = size
        self.days = days
        self.catalog = catalog
        n_devices, n_horizons = len(DEVICES), len(HORIZONS)
        self.margin_with = np.zeros((n_devices, n_horizons, size), dtype=np.int64)
        self.effect = np.zeros((n_devices, n_horizons, size), dtype=np.int64)  # with - without
        self.induced_orders = np.zeros((n_devices, n_horizons, size), dtype=np.int64)
        self.period_margin = np.zeros(size, dtype=np.int64)
        self.period_revenue = np.zeros(size, dtype=np.int64)
        self.period_orders = np.zeros(size, dtype=np.int64)
        self.period_device_margin = np.zeros((n_devices, size), dtype=np.int64)
        self.future_orders = np.zeros((len(HOLDOUT_WINDOWS), size), dtype=np.int64)
        self.future_revenue = np.zeros((len(HOLDOUT_WINDOWS), size), dtype=np.int64)
        self.future_margin = np.zeros((len(HOLDOUT_WINDOWS), size), dtype=np.int64)
        self.units_sold = np.zeros(n_devices, dtype=np.int64)
        self.hardware_margin = np.zeros(n_devices, dtype=np.int64)

    def record(self, day: int, orders: DayOrders, counterfactual: Counterfactual,
               adoption_day: np.ndarray, owners: list[np.ndarray]) -> None:
        # Only the people with a line today, or an order a device induced or cannibalised, change:
        # sums are formed for them alone, so a day costs its orders, not the population.
        line_person = orders.person[orders.line_order()]
        line_margin = orders.line_margin()
        people, line_code = np.unique(line_person, return_inverse=True)
        line_code = line_code.ravel()
        m = len(people)
        margin = _sums(line_code, line_margin, m)
        device_margin = []
        for k in range(len(DEVICES)):
            is_device = orders.line_product == self.catalog.device_product[k]
            device_margin.append(_sums(line_code[is_device], line_margin[is_device], m))
            if day < self.days:
                self.units_sold[k] += int(is_device.sum())
                self.hardware_margin[k] += int(line_margin[is_device].sum())
        revenue = _sums(line_code, orders.line_revenue(), m)
        count = _sums_by_key(people, orders.person, None)  # every order has a line
        if day < self.days:
            self.period_margin[people] += margin
            self.period_revenue[people] += revenue
            self.period_orders[people] += count
            for k in range(len(DEVICES)):
                self.period_device_margin[k, people] += device_margin[k]
        else:
            for w, window in enumerate(HOLDOUT_WINDOWS):
                if day < self.days + window:
                    self.future_orders[w, people] += count
                    self.future_revenue[w, people] += revenue
                    self.future_margin[w, people] += margin
        for k in range(len(DEVICES)):
            if len(owners[k]) == 0:
                continue
            induced = [(counterfactual.induced_person[k], counterfactual.induced_margin[k])]
            if k == SPEAKER:  # voice premium exists only because of the speaker
                induced.append((counterfactual.subscription_person, counterfactual.subscription_margin))
            cannibalised_person = counterfactual.cannibalised_person[k]
            touched = np.unique(np.concatenate([people, *(p for p, _ in induced), cannibalised_person]))
            elapsed = day - adoption_day[touched, k]
            inside_any = (adoption_day[touched, k] < self.days) & (elapsed >= 1) & (elapsed <= max(HORIZONS))
            touched, elapsed = touched[inside_any], elapsed[inside_any]
            if len(touched) == 0:
                continue
            # margin without the device's own lines; effect = induced - cannibalised
            without_device = _sums_by_key(touched, people, margin - device_margin[k])
            effect = sum(_sums_by_key(touched, p, v) for p, v in induced)
            effect = effect - _sums_by_key(touched, cannibalised_person, counterfactual.cannibalised_margin[k])
            induced_count = _sums_by_key(touched, counterfactual.induced_person[k], None)
            for h, horizon in enumerate(HORIZONS):
                inside = elapsed <= horizon
                who = touched[inside]
                self.margin_with[k, h, who] += without_device[inside]
                self.effect[k, h, who] += effect[inside]
                self.induced_orders[k, h, who] += induced_count[inside]

    # ---------------------------------------------------------------------------------------------

    def impact(self, adoption_day: np.ndarray) -> dict[str, object]:
        """The true ATT per device and horizon, the hardware margin, and the naive figures beside."""
        out: dict[str, object] = {}
        customers = self.period_orders > 0
        for k, device in enumerate(DEVICES):
            adopted = adoption_day[:, k] < self.days
            adopters = np.flatnonzero(adopted)
            att: dict[str, object] = {}
            post: dict[str, float | None] = {}
            for h, horizon in enumerate(HORIZONS):
                effect = self.effect[k, h, adopters] / 100.0
                observed = adoption_day[adopters, k] + horizon <= self.days - 1
                att[str(horizon)] = {
                    "att": _mean(effect),
                    "se": _se(effect),
                    "adopters": int(len(adopters)),
                    "att_fully_observed": _mean(effect[observed]),
                    "adopters_fully_observed": int(observed.sum()),
                    "mean_margin_with": _mean(self.margin_with[k, h, adopters] / 100.0),
                    "mean_margin_without": _mean((self.margin_with[k, h, adopters] - self.effect[k, h, adopters]) / 100.0),
                }
                post[str(horizon)] = _mean(self.margin_with[k, h, adopters] / 100.0)
            owners = adopted & customers
            others = ~adopted & customers
            owner_margin = (self.period_margin - self.period_device_margin[k])[owners] / 100.0
            other_margin = self.period_margin[others] / 100.0
            units = int(self.units_sold[k])
            out[device.key] = {
                "product_id": device.product_id,
                "name": device.name,
                "price": device.price_cents / 100.0,
                "promo_price": device.promo_price_cents / 100.0,
                "unit_cost": device.unit_cost_cents / 100.0,
                "list_hardware_margin_per_unit": (device.price_cents - device.unit_cost_cents) / 100.0,
                "hardware_margin_per_unit": round(self.hardware_margin[k] / units / 100.0, 4) if units else None,
                "service_cost_per_month": device.service_cost_per_month_cents / 100.0,
                "net_value_per_unit": _net_values(device.product_id, att, self.hardware_margin[k] / units / 100.0,
                                                  device.service_cost_per_month_cents / 100.0) if units else None,
                "units_sold": units,
                "adopters": int(len(adopters)),
                "att": att,
                "naive": {
                    "post_adoption_margin": post,
                    "owners_mean_period_margin": _mean(owner_margin),
                    "non_owners_mean_period_margin": _mean(other_margin),
                    "owner_vs_non_owner_gap": _difference(owner_margin, other_margin),
                },
            }
        return out


def _net_values(product_id: str, att: dict[str, object], hardware_margin: float, service_cost: float) -> dict[str, float | None]:
    """The true net value per unit from each horizon's true ATT, valued as spillover's unit economics
    does with the default ``[impact]`` settings (life, discount rate, persistence) and this serving cost."""
    from spillover.config import ImpactSettings
    from spillover.impact.economics import unit_economics_from_settings

    settings = ImpactSettings(service_cost_per_month={product_id: service_cost})
    values: dict[str, float | None] = {}
    for horizon, figures in att.items():
        effect = figures["att"]  # type: ignore[index]
        values[horizon] = None if effect is None else round(unit_economics_from_settings(
            settings, product_id=product_id, hardware_margin=hardware_margin, att=float(effect), att_se=0.0,
            horizon_days=int(horizon),
        ).net_value, 4)
    return values


def _mean(values: np.ndarray) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None


def _se(values: np.ndarray) -> float | None:
    if len(values) < 2:
        return None
    return round(float(np.std(values, ddof=1) / math.sqrt(len(values))), 4)


def _difference(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) == 0 or len(b) == 0:
        return None
    return round(float(np.mean(a) - np.mean(b)), 4)


__all__ = ["HORIZONS", "HOLDOUT_WINDOWS", "Ledger"]
