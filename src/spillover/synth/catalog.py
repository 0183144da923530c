"""The product catalog: everyday categories, three gateway devices and a voice-premium subscription.

The catalog is the same for every seed, so product ids and prices are stable across datasets. Money
is kept in integer cents throughout the generator; margins are therefore exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Category:
    slug: str
    products: int
    median_price_cents: int
    price_spread: float  # sigma of log price
    margin_rate: float  # (price - unit cost) / price, on average
    extra_quantity: float  # quantity per line is 1 + Poisson(extra_quantity)
    base_share: float  # population share of shopping lines in this category
    brand: str
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("groceries", 60, 449, 0.5, 0.12, 0.6, 0.22, "Harvest Lane",
             ("Coffee Beans", "Oat Milk", "Pasta", "Olive Oil", "Granola", "Rice", "Tea", "Tomatoes")),
    Category("household", 40, 999, 0.5, 0.22, 0.3, 0.14, "Homestead",
             ("Detergent", "Paper Towels", "Sponges", "Trash Bags", "Light Bulbs", "Dish Soap")),
    Category("books", 50, 1499, 0.35, 0.28, 0.05, 0.08, "Northfield Press",
             ("Harbor", "Garden", "Winter", "Compass", "River", "Lantern", "Orchard", "Summit")),
    Category("ebooks", 50, 799, 0.45, 0.55, 0.0, 0.04, "Northfield Digital",
             ("Harbor", "Garden", "Winter", "Compass", "River", "Lantern", "Orchard", "Summit")),
    Category("fashion", 40, 2999, 0.6, 0.45, 0.1, 0.12, "Fieldcraft",
             ("T-Shirt", "Jeans", "Sneakers", "Scarf", "Jacket", "Socks")),
    Category("electronics", 30, 5999, 0.8, 0.10, 0.0, 0.06, "Voltline",
             ("Headphones", "Charger", "Keyboard", "Webcam", "Power Bank", "Speaker Cable")),
    Category("video", 40, 599, 0.7, 0.40, 0.0, 0.06, "Brightframe",
             ("Rental", "Film", "Series Pass", "Documentary", "Blu-ray")),
    Category("music", 30, 129, 1.0, 0.35, 0.1, 0.05, "Soundfold",
             ("Single", "Album", "Vinyl", "Live Set")),
    Category("toys", 30, 1999, 0.6, 0.30, 0.05, 0.08, "Playwright",
             ("Puzzle", "Blocks", "Board Game", "Plush", "Kite")),
    Category("beauty", 30, 1299, 0.5, 0.40, 0.2, 0.10, "Clearwell",
             ("Shampoo", "Lotion", "Lip Balm", "Sunscreen", "Soap")),
)
CATEGORY_INDEX = {c.slug: k for k, c in enumerate(CATEGORIES)}

ADJECTIVES = ("Classic", "Everyday", "Premium", "Organic", "Compact", "Silent", "Bright", "Golden",
              "Little", "Grand", "Simple", "Northern", "Quiet", "Wild", "Modern")


@dataclass(frozen=True)
class GatewayDevice:
    """A gateway device and the causal model of what owning it does (see docs/synthetic.md)."""

    key: str  # ereader | speaker | stick
    product_id: str
    name: str
    price_cents: int
    unit_cost_cents: int
    promo_price_cents: int
    launch_fraction: float  # launched at this fraction of the written period
    # adoption: probability of adding the device to a shopping basket (before multipliers)
    attach_base: float
    attach_tech: float
    attach_taste: float
    attach_basket: float
    taste_categories: tuple[str, ...]
    # effect: extra orders per day kappa * g(tau), g = (1 - exp(-tau/build)) (floor + (1-floor) exp(-tau/decay))
    effect_rate: float
    effect_build_days: float
    effect_floor: float
    effect_decay_days: float
    effect_taste_power: float
    induced_categories: tuple[str, ...]
    induced_extra_lines: float
    cannibalised_categories: tuple[str, ...]
    cannibalisation: float
    # usage events (GA4 only, no shopping): mean per day and the mix of event names
    usage_per_day: float
    usage_events: tuple[tuple[str, float], ...]
    # what serving one owner costs the business a month (cloud requests, content); not in any order
    service_cost_per_month_cents: int = 0


DEVICES: tuple[GatewayDevice, ...] = (
    GatewayDevice(
        key="ereader", product_id="G001", name="Leaf e-Reader", price_cents=9999, unit_cost_cents=10460,
        promo_price_cents=7999, launch_fraction=0.0,
        attach_base=0.008, attach_tech=0.4, attach_taste=1.2, attach_basket=0.3,
        taste_categories=("books", "ebooks"),
        effect_rate=0.035, effect_build_days=7.0, effect_floor=0.45, effect_decay_days=120.0,
        effect_taste_power=1.0, induced_categories=("ebooks",), induced_extra_lines=0.0,
        cannibalised_categories=("books",), cannibalisation=0.35,
        usage_per_day=0.6, usage_events=(("ebook_open", 1.0),),
    ),
    GatewayDevice(
        key="speaker", product_id="G002", name="Orbit Smart Speaker", price_cents=3499,
        unit_cost_cents=3890, promo_price_cents=2499, launch_fraction=0.15,
        attach_base=0.019, attach_tech=0.9, attach_taste=0.5, attach_basket=0.5,
        taste_categories=("music",),
        effect_rate=0.003, effect_build_days=3.0, effect_floor=0.5, effect_decay_days=45.0,
        effect_taste_power=0.5, induced_categories=("groceries", "household"), induced_extra_lines=0.7,
        cannibalised_categories=("groceries", "household"), cannibalisation=0.05,
        usage_per_day=1.0,
        usage_events=(("voice_timer", 0.38), ("voice_weather", 0.30), ("voice_music", 0.30),
                      ("voice_shop", 0.02)),
        service_cost_per_month_cents=90,
    ),
    GatewayDevice(
        key="stick", product_id="G003", name="Beam Streaming Stick", price_cents=3999,
        unit_cost_cents=3890, promo_price_cents=2999, launch_fraction=0.35,
        attach_base=0.0105, attach_tech=0.6, attach_taste=1.2, attach_basket=0.3,
        taste_categories=("video",),
        effect_rate=0.02, effect_build_days=3.0, effect_floor=0.3, effect_decay_days=60.0,
        effect_taste_power=1.0, induced_categories=("video",), induced_extra_lines=0.0,
        cannibalised_categories=("video",), cannibalisation=0.15,
        usage_per_day=0.6, usage_events=(("video_play", 1.0),),
    ),
)


@dataclass(frozen=True)
class Subscription:
    """Voice premium: a monthly subscription only speaker owners take up."""

    product_id: str = "S001"
    name: str = "Orbit Voice Premium (monthly)"
    price_cents: int = 499
    unit_cost_cents: int = 140
    billing_days: int = 30
    uptake_per_day: float = 0.0001  # hazard per day of ownership, plus a launch bump
    uptake_bump_per_day: float = 0.0008
    uptake_bump_days: float = 30.0
    cancel_after_bill: float = 0.15


SUBSCRIPTION = Subscription()


@dataclass(frozen=True)
class Catalog:
    """Flat arrays indexed by product number; gateway devices and the subscription come last."""

    product_id: list[str]
    name: list[str]
    category: list[str]
    category_index: np.ndarray  # -1 for devices and the subscription
    price_cents: np.ndarray
    unit_cost_cents: np.ndarray
    is_gateway: np.ndarray
    subscription_price_cents: np.ndarray  # -1 when not a subscription
    category_products: list[np.ndarray]  # product numbers per category, by popularity rank
    category_popularity: list[np.ndarray]  # cumulative choice probabilities per category
    device_product: np.ndarray  # product number of each device
    subscription_product: int

    @property
    def size(self) -> int:
        return len(self.product_id)


def build_catalog() -> Catalog:
    """The fixed catalog (its own random stream, independent of the dataset seed)."""
    rng = np.random.default_rng(20240101)
    ids, names, cats, cat_idx, prices, costs = [], [], [], [], [], []
    by_category: list[np.ndarray] = []
    popularity: list[np.ndarray] = []
    for k, cat in enumerate(CATEGORIES):
        start = len(ids)
        raw = cat.median_price_cents * np.exp(rng.normal(0.0, cat.price_spread, cat.products))
        # Shelf prices end in .99 (or .49 below five dollars).
        dollars = np.maximum(np.floor(raw / 100.0), 0)
        price = np.where(raw < 500, dollars * 100 + 49, dollars * 100 + 99).astype(np.int64)
        price = np.maximum(price, 49)
        margin = np.clip(cat.margin_rate * rng.uniform(0.7, 1.3, cat.products), 0.02, 0.9)
        cost = np.round(price * (1.0 - margin)).astype(np.int64)
        for j in range(cat.products):
            ids.append(f"P{len(ids) + 1:05d}")
            adjective = ADJECTIVES[rng.integers(len(ADJECTIVES))]
            noun = cat.nouns[rng.integers(len(cat.nouns))]
            suffix = {"ebooks": " (e-book)", "books": " (paperback)"}.get(cat.slug, "")
            names.append(f"{cat.brand} {adjective} {noun} No. {j + 1}{suffix}")
            cats.append(cat.slug)
            cat_idx.append(k)
        prices.extend(price.tolist())
        costs.extend(cost.tolist())
        ranks = start + rng.permutation(cat.products)
        weights = 1.0 / np.arange(1, cat.products + 1) ** 0.8
        by_category.append(ranks.astype(np.int64))
        popularity.append(np.cumsum(weights / weights.sum()))
    device_product = []
    for device in DEVICES:
        device_product.append(len(ids))
        ids.append(device.product_id)
        names.append(device.name)
        cats.append("devices")
        cat_idx.append(-1)
        prices.append(device.price_cents)
        costs.append(device.unit_cost_cents)
    subscription_product = len(ids)
    ids.append(SUBSCRIPTION.product_id)
    names.append(SUBSCRIPTION.name)
    cats.append("subscriptions")
    cat_idx.append(-1)
    prices.append(SUBSCRIPTION.price_cents)
    costs.append(SUBSCRIPTION.unit_cost_cents)
    n = len(ids)
    is_gateway = np.zeros(n, dtype=bool)
    is_gateway[device_product] = True
    subscription_price = np.full(n, -1, dtype=np.int64)
    subscription_price[subscription_product] = SUBSCRIPTION.price_cents
    return Catalog(
        product_id=ids,
        name=names,
        category=cats,
        category_index=np.array(cat_idx, dtype=np.int64),
        price_cents=np.array(prices, dtype=np.int64),
        unit_cost_cents=np.array(costs, dtype=np.int64),
        is_gateway=is_gateway,
        subscription_price_cents=subscription_price,
        category_products=by_category,
        category_popularity=popularity,
        device_product=np.array(device_product, dtype=np.int64),
        subscription_product=subscription_product,
    )


def draw_products(catalog: Catalog, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One product per requested category, by within-category popularity (a Zipf-like law)."""
    products = np.empty(len(categories), dtype=np.int64)
    uniforms = rng.random(len(categories))
    for k in range(len(CATEGORIES)):
        rows = np.flatnonzero(categories == k)
        if rows.size:
            cdf = catalog.category_popularity[k]
            rank = np.minimum(np.searchsorted(cdf, uniforms[rows], side="right"), len(cdf) - 1)
            products[rows] = catalog.category_products[k][rank]
    return products
