"""The synthetic population: latent traits that drive everything, and who each person is on paper.

Traits are drawn once per person; identity details are small integer choices rendered to text only
when written. Every name, email (example.com/org/net) and phone number (555 exchange) is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spillover.synth.catalog import CATEGORIES, CATEGORY_INDEX, DEVICES

FIRST_NAMES = (
    "Avery", "Blake", "Carmen", "Dana", "Elliot", "Farah", "Gale", "Harper", "Imani", "Jordan", "Kai",
    "Logan", "Marisol", "Noel", "Oakley", "Priya", "Quinn", "Rowan", "Sasha", "Tatum", "Uma", "Vera",
    "Wren", "Ximena", "Yusuf", "Zara", "Alden", "Bria", "Cyrus", "Delia", "Emory", "Finley", "Greer",
    "Hollis", "Ines", "Jules", "Kendall", "Lennox", "Mika", "Nadia", "Orion", "Paz", "Remy", "Sloane",
    "Teodor", "Ulla", "Vaughn", "Willa", "Xavi", "Yara", "Zeke", "Anneke", "Bodhi", "Cleo", "Dario",
    "Esme", "Florian", "Gemma", "Hugo", "Iris", "Jasper", "Kira", "Linus", "Mabel",
)
LAST_NAMES = (
    "Abernathy", "Bellweather", "Castellano", "Dunmore", "Eastwick", "Fairbanks", "Galloway",
    "Hartley", "Ingram", "Jessup", "Kincaid", "Lockwood", "Merriweather", "Northcott", "Okafor",
    "Pemberton", "Quigley", "Ravensworth", "Sorensen", "Thistlewood", "Underhill", "Vandermeer",
    "Whitlock", "Yarborough", "Zimmerly", "Ashdown", "Blackmore", "Cobblestone", "Davenport",
    "Elsworth", "Fennimore", "Greystone", "Holloway", "Ivanova", "Juniper", "Kettering", "Larkspur",
    "Mossbank", "Nightingale", "Oakridge", "Pennington", "Quarrington", "Rosewood", "Stonebridge",
    "Tanaka", "Umberfield", "Valdivia", "Wexford", "Yellowley", "Zabrowski", "Alvarado", "Brannigan",
    "Cheswick", "Delacroix", "Ellery", "Fitzgerald", "Goldberg", "Hawthorne", "Iverson", "Jovanovic",
    "Kowalczyk", "Lindqvist", "Montague", "Nakamura",
)
STREETS = ("Maple", "Cedar", "Willow", "Harbor", "Orchard", "Juniper", "Meadow", "Chestnut", "Birch",
           "Lakeview", "Sunset", "Hillcrest", "Riverside", "Foxglove", "Magnolia", "Sycamore")
STREET_SUFFIXES = ("Street", "Avenue", "Road", "Lane", "Drive", "Court", "Way")
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

#: (city, state code, state name, ZIP prefix, metro) for the people's home towns.
CITIES = (
    ("New York", "NY", "New York", "100", "New York, NY"),
    ("Brooklyn", "NY", "New York", "112", "New York, NY"),
    ("Buffalo", "NY", "New York", "142", "Buffalo NY"),
    ("Boston", "MA", "Massachusetts", "021", "Boston MA-Manchester NH"),
    ("Philadelphia", "PA", "Pennsylvania", "191", "Philadelphia PA"),
    ("Pittsburgh", "PA", "Pennsylvania", "152", "Pittsburgh PA"),
    ("Newark", "NJ", "New Jersey", "071", "New York, NY"),
    ("Baltimore", "MD", "Maryland", "212", "Baltimore MD"),
    ("Washington", "DC", "District of Columbia", "200", "Washington DC (Hagerstown MD)"),
    ("Atlanta", "GA", "Georgia", "303", "Atlanta GA"),
    ("Miami", "FL", "Florida", "331", "Miami-Ft. Lauderdale FL"),
    ("Orlando", "FL", "Florida", "328", "Orlando-Daytona Beach-Melbourne FL"),
    ("Charlotte", "NC", "North Carolina", "282", "Charlotte NC"),
    ("Chicago", "IL", "Illinois", "606", "Chicago IL"),
    ("Detroit", "MI", "Michigan", "482", "Detroit MI"),
    ("Columbus", "OH", "Ohio", "432", "Columbus OH"),
    ("Minneapolis", "MN", "Minnesota", "554", "Minneapolis-St. Paul MN"),
    ("Houston", "TX", "Texas", "770", "Houston TX"),
    ("Dallas", "TX", "Texas", "752", "Dallas-Ft. Worth TX"),
    ("Austin", "TX", "Texas", "787", "Austin TX"),
    ("Denver", "CO", "Colorado", "802", "Denver CO"),
    ("Phoenix", "AZ", "Arizona", "850", "Phoenix AZ"),
    ("Seattle", "WA", "Washington", "981", "Seattle-Tacoma WA"),
    ("Portland", "OR", "Oregon", "972", "Portland OR"),
    ("San Francisco", "CA", "California", "941", "San Francisco-Oakland-San Jose CA"),
    ("Los Angeles", "CA", "California", "900", "Los Angeles CA"),
    ("San Diego", "CA", "California", "921", "San Diego CA"),
)
CITY_WEIGHTS = np.array([9, 5, 2, 5, 5, 2, 3, 3, 3, 5, 4, 3, 3, 7, 3, 2, 3, 5, 5, 3, 3, 4, 4, 2, 4, 7, 3],
                        dtype=float)
STORES_PER_CITY = 2

#: US geographic area codes that phone libraries accept with a 555 exchange.
AREA_CODES = np.array([int(a) for a in """
201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 220 223 224 225 227 228 229
231 234 235 239 240 248 251 252 253 254 256 260 262 267 269 270 272 274 276 279 281 283 301 302
303 304 305 307 308 309 310 312 313 314 315 316 317 318 319 320 321 323 324 325 326 327 329 330
331 332 334 336 337 339 341 346 347 350 351 352 353 360 361 363 364 369 380 385 386 401 402 404
405 406 407 408 409 410 412 413 414 415 417 419 423 424 425 430 432 434 435 440 442 443 445 447
448 458 463 464 469 470 472 475 478 479 480 484 501 502 503 504 505 507 508 509 510 512 513 515
516 517 518 520 530 531 534 539 540 541 551 557 559 561 562 563 564 567 570 571 572 573 574 575
580 582 585 586 601 602 603 605 606 607 608 609 610 612 614 615 616 617 618 619 620 623 626 628
629 630 631 636 640 641 645 646 650 651 656 657 659 660 661 662 667 669 678 680 681 682 686 689
701 702 703 704 706 707 708 712 713 714 715 716 717 718 719 720 724 725 726 727 728 730 731 732
734 737 738 740 743 747 748 754 757 760 762 763 765 769 770 771 772 773 774 775 779 781 785 786
801 802 803 804 805 806 808 810 812 813 814 815 816 817 818 820 821 826 828 830 831 832 835 838
839 840 843 845 847 848 850 854 856 857 858 859""".split()], dtype=np.int64)

# Traits (see docs/synthetic.md, "People").
ORDER_RATE_PER_YEAR = 9.0
ORDER_RATE_SHAPE = 0.9
ORDER_RATE_TECH = 0.25
DROPOUT_BETA = (1.0, 14.0)
EXTRA_LINES_SHAPE, EXTRA_LINES_MEAN = 2.0, 0.9
PRICE_SENSITIVITY_BETA = (2.0, 5.0)
TASTE_CONCENTRATION = 3.0
EXISTING_SHARE = 0.6
EXISTING_ALIVE = 0.8
MEMBER_SHARE_EXISTING, MEMBER_SHARE_NEW = 0.8, 0.55
DUPLICATE_REGISTRATION = 0.04  # of members registered at first: about 2% of all people
PRIVACY_CONSCIOUS = 0.1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _bijection(index: np.ndarray, modulus: int, multiplier: int, offset: int) -> np.ndarray:
    """A scrambled but collision-free number per index (modulus prime and larger than the index)."""
    return (index * multiplier + offset) % modulus


@dataclass
class Population:
    """Per-person arrays (length ``size``); ``taste`` is size × categories."""

    size: int
    tech_affinity: np.ndarray
    order_rate: np.ndarray  # baseline orders per day while active
    dropout_probability: np.ndarray  # chance of lapsing after each order (BG/NBD-like)
    extra_lines: np.ndarray  # basket size is 1 + Poisson(extra_lines)
    price_sensitivity: np.ndarray
    taste: np.ndarray
    taste_cdf: np.ndarray
    online_share: np.ndarray
    call_centre_share: np.ndarray
    browse_rate: np.ndarray  # browsing sessions per day while active
    existing: np.ndarray  # a customer before the period started
    birth_day: np.ndarray  # first day as a customer (negative: before the period)
    alive_at_start: np.ndarray
    member_at_birth: np.ndarray
    duplicate_registration: np.ndarray
    privacy_conscious: np.ndarray
    attach_score: np.ndarray  # size × devices, mean 1 over the population
    effect_scale: np.ndarray  # size × devices: kappa, extra orders per day at full effect
    usage_rate: np.ndarray  # size × devices: device-usage events per day
    city: np.ndarray
    home_store: np.ndarray
    first_name: np.ndarray
    last_name: np.ndarray
    email_style: np.ndarray
    email_domain: np.ndarray
    email_number: np.ndarray
    phone_area: np.ndarray
    phone_line: np.ndarray
    phone_style: np.ndarray  # 0..4 formats; 5 = no phone given
    house_number: np.ndarray
    street: np.ndarray
    street_suffix: np.ndarray
    postcode_suffix: np.ndarray
    consent_analytics: np.ndarray
    consent_ads: np.ndarray
    tier_noise: np.ndarray


def taste_ratio(taste: np.ndarray, categories: tuple[str, ...]) -> np.ndarray:
    """A person's taste for some categories relative to the population mean (mean ≈ 1)."""
    share = taste[:, [CATEGORY_INDEX[c] for c in categories]].sum(axis=1)
    return share / share.mean()


def draw_population(size: int, days: int, rng: np.random.Generator) -> Population:
    """Draw ``size`` people whose new customers arrive uniformly over ``days``."""
    n = size
    tech = rng.standard_normal(n)
    mean_rate = ORDER_RATE_PER_YEAR / 365.0
    order_rate = rng.gamma(ORDER_RATE_SHAPE, mean_rate / ORDER_RATE_SHAPE, n) * np.exp(
        ORDER_RATE_TECH * tech - ORDER_RATE_TECH**2 / 2
    )
    dropout = rng.beta(*DROPOUT_BETA, n)
    extra_lines = rng.gamma(EXTRA_LINES_SHAPE, EXTRA_LINES_MEAN / EXTRA_LINES_SHAPE, n)
    price_sensitivity = rng.beta(*PRICE_SENSITIVITY_BETA, n)
    base = np.array([c.base_share for c in CATEGORIES])
    taste = rng.dirichlet(TASTE_CONCENTRATION * base / base.sum() * len(base), n)
    taste_cdf = np.cumsum(taste, axis=1)
    taste_cdf[:, -1] = 1.0
    online_share = _sigmoid(0.2 + 0.9 * tech + rng.normal(0.0, 0.6, n))
    call_centre_share = 0.12 * _sigmoid(-1.2 * tech - 1.0)
    browse_rate = order_rate * (1.0 + 2.5 * online_share) * np.exp(0.3 * tech)

    existing = rng.random(n) < EXISTING_SHARE
    birth_day = np.where(
        existing, -rng.integers(30, 1800, n), rng.integers(0, max(days, 1), n)
    ).astype(np.int64)
    alive_at_start = np.where(existing, rng.random(n) < EXISTING_ALIVE, True)
    member_at_birth = rng.random(n) < np.where(existing, MEMBER_SHARE_EXISTING, MEMBER_SHARE_NEW)
    duplicate = rng.random(n) < DUPLICATE_REGISTRATION
    privacy = rng.random(n) < PRIVACY_CONSCIOUS

    n_devices = len(DEVICES)
    attach = np.empty((n, n_devices))
    effect = np.empty((n, n_devices))
    usage = np.empty((n, n_devices))
    basket = np.log(extra_lines / extra_lines.mean())
    for k, device in enumerate(DEVICES):
        ratio = taste_ratio(taste, device.taste_categories)
        score = np.exp(device.attach_tech * tech + device.attach_taste * np.log(ratio)
                       + device.attach_basket * basket)
        attach[:, k] = score / score.mean()
        weight = ratio**device.effect_taste_power * rng.gamma(2.0, 0.5, n)
        effect[:, k] = device.effect_rate * weight / weight.mean()
        usage[:, k] = rng.gamma(2.0, device.usage_per_day / 2.0, n) * np.sqrt(ratio)

    city = rng.choice(len(CITIES), n, p=CITY_WEIGHTS / CITY_WEIGHTS.sum())
    home_store = city * STORES_PER_CITY + rng.integers(0, STORES_PER_CITY, n)
    index = np.arange(n, dtype=np.int64)
    phone_space = len(AREA_CODES) * 10_000
    phone_number = _bijection(index, 2_999_999, 1_299_709, int(rng.integers(0, 2_999_999)))
    phone_number = phone_number % phone_space
    consent_analytics = np.where(privacy, rng.random(n) < 0.1, rng.random(n) < 0.95)
    return Population(
        size=n,
        tech_affinity=tech,
        order_rate=order_rate,
        dropout_probability=dropout,
        extra_lines=extra_lines,
        price_sensitivity=price_sensitivity,
        taste=taste.astype(np.float64),
        taste_cdf=taste_cdf,
        online_share=online_share,
        call_centre_share=call_centre_share,
        browse_rate=browse_rate,
        existing=existing,
        birth_day=birth_day,
        alive_at_start=alive_at_start,
        member_at_birth=member_at_birth,
        duplicate_registration=duplicate & member_at_birth,
        privacy_conscious=privacy,
        attach_score=attach,
        effect_scale=effect,
        usage_rate=usage,
        city=city,
        home_store=home_store,
        first_name=rng.integers(0, len(FIRST_NAMES), n),
        last_name=rng.integers(0, len(LAST_NAMES), n),
        email_style=rng.integers(0, 4, n),
        email_domain=rng.choice(len(EMAIL_DOMAINS), n, p=[0.6, 0.25, 0.15]),
        email_number=10 + _bijection(index, 9_999_991, 7_919, int(rng.integers(0, 9_999_991))),
        phone_area=AREA_CODES[phone_number // 10_000],
        phone_line=phone_number % 10_000,
        phone_style=rng.choice(6, n, p=[0.3, 0.25, 0.15, 0.12, 0.08, 0.10]),
        house_number=rng.integers(1, 9_999, n),
        street=rng.integers(0, len(STREETS), n),
        street_suffix=rng.integers(0, len(STREET_SUFFIXES), n),
        postcode_suffix=rng.integers(0, 100, n),
        consent_analytics=consent_analytics,
        consent_ads=consent_analytics & (rng.random(n) < 0.8),
        tier_noise=rng.normal(0.0, 0.3, n),
    )
