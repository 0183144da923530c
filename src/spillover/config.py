"""Project configuration: ``spillover.toml`` as frozen pydantic models, and the project key.

Configuration is declarative and engine-free. ``spillover init`` writes a commented file; every field
has a default, so a project without a file still runs on the embedded DuckDB.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spillover.errors import SpilloverConfigError

CONFIG_FILE = "spillover.toml"
DEFAULT_DB_URL = "duckdb:///spillover.duckdb"
DEFAULT_KEY_FILE = ".spillover/key"
KEY_ENV = "SPILLOVER_KEY"

SourceName = Literal["crm", "orders", "order_items", "products"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PrivacyConfig(_Frozen):
    """How direct identifiers are normalised before they are pseudonymised."""

    phone_default_region: str = Field(
        "US", description="ISO region used to read phone numbers written without a country code"
    )
    allowed_attributes: tuple[str, ...] = Field(
        (), description="CRM columns (besides ours) that may be kept as plain attributes"
    )


class GA4Config(_Frozen):
    """How GA4 BigQuery-export files are read and validated."""

    property_timezone: str = Field("UTC", description="the GA4 property's reporting time zone")
    max_timestamp_skew_hours: float = Field(
        14.0,
        ge=0,
        description="how far event_timestamp (UTC) may fall outside the UTC day of event_date",
    )


    @field_validator("property_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'America/New_York'") from exc
        return value


#: Identifier types the identity graph links.
IDENTITY_ID_TYPES = ("client_key", "member_id", "email_pid", "phone_pid")

DEFAULT_BLOCKED_VALUES = (
    "", "0", "-1", "null", "none", "nil", "nan", "undefined", "anonymous", "unknown", "guest",
    "test", "n/a", "na", "(not set)", "(none)", "not set", "default",
    "<redacted:email>",  # a GA4 user_id that was an email address, redacted at ingest
)

#: CRM ingest keeps fuzzy matches from this probability on, so the threshold can move without re-loading.
FUZZY_MATCH_FLOOR = 0.5

#: "id_type->other_type": the most distinct ``other_type`` ids one ``id_type`` id may link to.
DEFAULT_MAX_LINKS = {
    "client_key->member_id": 3,  # more: a shared or kiosk device
    "client_key->email_pid": 3,
    "email_pid->member_id": 3,  # more: a shared or placeholder address
    "phone_pid->member_id": 3,  # more: a switchboard or placeholder number
    "member_id->client_key": 50,  # more: a test or staff account used on many devices
}


class IdentitySettings(_Frozen):
    """How identifiers are linked into customers (the ``[identity]`` config section)."""

    blocked_values: tuple[str, ...] = Field(
        DEFAULT_BLOCKED_VALUES, description="identifier values (compared trimmed, lower-case) never used to link"
    )
    max_links: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_LINKS),
        description='"id_type->other_type" = the most distinct other ids one id may link to',
    )
    max_iterations: int = Field(50, ge=1, description="cap on connected-components rounds")
    fuzzy_matching: bool = Field(
        True, description="match CRM members registered twice (Splink, on the raw file, in memory) at CRM ingest"
    )
    fuzzy_match_threshold: float = Field(
        0.99,
        ge=FUZZY_MATCH_FLOOR,
        le=1.0,
        description="link two CRM members as one customer when their match probability reaches this",
    )

    @field_validator("max_links")
    @classmethod
    def _known_types(cls, value: dict[str, int]) -> dict[str, int]:
        for pair, limit in value.items():
            one, sep, other = pair.partition("->")
            if not sep or one not in IDENTITY_ID_TYPES or other not in IDENTITY_ID_TYPES:
                raise ValueError(
                    f"max_links key {pair!r} is not 'id_type->other_type' with types among {', '.join(IDENTITY_ID_TYPES)}"
                )
            if limit < 1:
                raise ValueError(f"max_links[{pair!r}] = {limit}; a limit must be at least 1")
        return value


#: Families of GA4 events counted in each customer profile (``<family>_events`` columns).
DEFAULT_EVENT_FAMILIES = {
    "browse": ("page_view", "screen_view", "view_item"),
    "cart": ("add_to_cart", "begin_checkout"),
    "purchase": ("purchase",),
    "device_use": ("voice_timer", "voice_weather", "voice_music", "ebook_open", "video_play"),
    "device_shop": ("voice_shop",),
}


class ProfilesSettings(_Frozen):
    """What customer profiles count (the ``[profiles]`` config section)."""

    event_families: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_EVENT_FAMILIES),
        description="family = [GA4 event names]; each family becomes a <family>_events profile column",
    )

    @field_validator("event_families")
    @classmethod
    def _column_names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for family, names in value.items():
            if re.fullmatch(r"[a-z][a-z0-9_]{0,40}", family) is None:
                raise ValueError(
                    f"event family {family!r} must be lower-case letters, digits and '_' (it names a column)"
                )
            if not names:
                raise ValueError(f"event family {family!r} lists no event names")
        return value


class PredictSettings(_Frozen):
    """How propensity and lifetime-value models are trained and scored (the ``[predict]`` section).

    The defaults are GA4's predictive metrics: purchase probability of customers active in the last
    28 days over the next 7, churn probability of customers active in the last 7 over the next 7, and
    revenue over the next 28 days. Windows are whole 24-hour days counted back from the latest event
    or order in the warehouse.
    """

    purchase_lookback_days: int = Field(28, ge=1, description="purchase_probability: active in this many days before the cutoff")
    purchase_horizon_days: int = Field(7, ge=1, description="purchase_probability: purchase within this many days after it")
    churn_lookback_days: int = Field(7, ge=1, description="churn_probability: active in this many days before the cutoff")
    churn_horizon_days: int = Field(7, ge=1, description="churn_probability: not active in this many days after it")
    revenue_lookback_days: int = Field(28, ge=1, description="predicted_revenue: active in this many days before the cutoff")
    revenue_horizon_days: int = Field(28, ge=1, description="predicted_revenue: revenue within this many days after it")
    training_windows: int = Field(4, ge=1, description="training cutoffs stacked per model, one every window_step_days")
    window_step_days: int = Field(7, ge=1, description="days between consecutive training cutoffs")
    evaluation_windows: int = Field(
        1, ge=1, description="out-of-time backtests pooled in the metrics, one every window_step_days back"
    )
    min_history_days: int = Field(14, ge=0, description="days of data a training cutoff needs before it")
    min_positives: int = Field(
        200, ge=1, description="fewest positive training examples (customer x cutoff) a model may be trained on"
    )
    min_negatives: int = Field(200, ge=1, description="fewest negative training examples")
    min_evaluation_positives: int = Field(
        25, ge=1, description="fewest positives (and negatives) in the out-of-time evaluation window"
    )
    clv_horizon_months: int = Field(12, ge=1, description="months of future contribution margin in clv")
    clv_discount_rate: float = Field(0.01, gt=-1, lt=1, description="monthly discount rate of clv")
    clv_holdout_days: int = Field(
        90, ge=1, description="days held out to check the CLV model (at most a third of the data's span)"
    )
    models_dir: str = Field("models", description="folder (relative to spillover.toml) for trained model files")


#: What each gateway product's owners do with it: GA4 events that are free use and that make money,
#: counted on the product's own clients (those that sent one of its free events). The defaults suit
#: the synthetic ecosystem: e-reader G001, smart speaker G002, streaming stick G003.
DEFAULT_DEVICE_EVENTS = {
    "G001": {"free": ("ebook_open",), "monetisable": ("purchase",)},
    "G002": {"free": ("voice_timer", "voice_weather", "voice_music"), "monetisable": ("voice_shop",)},
    "G003": {"free": ("video_play",), "monetisable": ("purchase",)},
}


class ImpactSettings(_Frozen):
    """How downstream impact is designed and valued (the ``[impact]`` config section)."""

    horizons_days: tuple[int, ...] = Field(
        (90, 180, 365), description="outcome windows after the index day, in days"
    )
    pre_period_days: int = Field(365, ge=1, description="days before the index day that covariates describe")
    exclude_products: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="gateway product_id = [product_ids] also left out of its downstream margin (accessories); "
        "the product itself always is",
    )
    exclude_categories: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="gateway product_id = [categories] left out of its downstream margin"
    )
    registered_only: bool = Field(
        True,
        description="compare only customers registered in the CRM before the index day (registering with the "
        "purchase makes later purchases identifiable, which would look like an effect)",
    )
    propensity_model: Literal["logistic", "boosting"] = Field(
        "logistic",
        description="model of the chance to buy: 'logistic' (regularised, on log-scaled covariates) or "
        "'boosting' (gradient-boosted trees)",
    )
    device_events: dict[str, dict[str, tuple[str, ...]]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_DEVICE_EVENTS.items()},
        description='gateway product_id = {free = [GA4 events], monetisable = [GA4 events]} for the engagement mix',
    )
    discount_rate: float = Field(0.10, ge=0, lt=1, description="annual discount rate for present values")
    life_months: int = Field(24, ge=1, le=240, description="months an owner keeps the product")
    monthly_persistence: float = Field(
        0.9, ge=0, le=1, description="share of the monthly effect that remains each month after the measured horizon"
    )
    service_cost_per_month: dict[str, float] = Field(
        default_factory=dict, description="gateway product_id = cost of serving one owner per month (free requests)"
    )
    confidence_level: float = Field(0.95, gt=0, lt=1, description="level of every confidence interval")

    @field_validator("horizons_days")
    @classmethod
    def _positive_horizons(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(h < 1 for h in value):
            raise ValueError(f"horizons_days {list(value)} must list at least one horizon of 1 day or more")
        return tuple(sorted(set(value)))

    @field_validator("device_events")
    @classmethod
    def _two_kinds(cls, value: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, dict[str, tuple[str, ...]]]:
        for product, kinds in value.items():
            if set(kinds) != {"free", "monetisable"} or not kinds["free"]:
                raise ValueError(
                    f"device_events[{product!r}] must have 'free' (at least one event) and 'monetisable' lists"
                )
        return value


class ColumnsConfig(_Frozen):
    """Maps spillover's column names (keys) to the user's column names (values), per source."""

    crm: dict[str, str] = Field(default_factory=dict)
    orders: dict[str, str] = Field(default_factory=dict)
    order_items: dict[str, str] = Field(default_factory=dict)
    products: dict[str, str] = Field(default_factory=dict)


class Config(_Frozen):
    """A spillover project's configuration (``spillover.toml``)."""

    db: str = Field(DEFAULT_DB_URL, description="engine URL of the warehouse")
    key_file: str = Field(DEFAULT_KEY_FILE, description="file holding the project key")
    privacy: PrivacyConfig = PrivacyConfig()
    ga4: GA4Config = GA4Config()
    columns: ColumnsConfig = ColumnsConfig()
    identity: IdentitySettings = IdentitySettings()
    profiles: ProfilesSettings = ProfilesSettings()
    predict: PredictSettings = PredictSettings()
    impact: ImpactSettings = ImpactSettings()
    project_dir: Path = Field(Path("."), exclude=True)

    @field_validator("db")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"engine URL {value!r} has no scheme; e.g. duckdb:///spillover.duckdb")
        return value

    def key_path(self) -> Path:
        path = Path(self.key_file)
        return path if path.is_absolute() else self.project_dir / path


def load_config(project_dir: Path | str = ".") -> Config:
    """Read ``spillover.toml`` from ``project_dir``; defaults when the file does not exist."""
    project_dir = Path(project_dir)
    path = project_dir / CONFIG_FILE
    if not path.exists():
        return Config(project_dir=project_dir)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpilloverConfigError(f"{path}: not valid TOML ({exc}); fix the file or re-run `spillover init`") from exc
    try:
        return Config(**data, project_dir=project_dir)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SpilloverConfigError(f"{path}: {problems}") from exc


def project_key(config: Config) -> bytes:
    """The secret key for keyed pseudonyms: ``$SPILLOVER_KEY`` if set, else the key file."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return from_env.encode("utf-8")
    path = config.key_path()
    if not path.exists():
        raise SpilloverConfigError(
            f"no project key: {path} does not exist and ${KEY_ENV} is not set; "
            "run `spillover init` in the project folder"
        )
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise SpilloverConfigError(f"{path}: the project key is shorter than 32 characters")
    return key.encode("utf-8")


CONFIG_TEMPLATE = """\
# spillover project configuration — see docs/configuration.md
# Engine URL: duckdb:///FILE (default), pyspark://local[2], or another Ibis URL.
db = "{db}"
# The project key used to pseudonymise identifiers (HMAC-SHA256). Keep it secret and backed up:
# losing it means new pseudonyms no longer match old ones. $SPILLOVER_KEY overrides the file.
key_file = "{key_file}"

[privacy]
phone_default_region = "US"
# CRM columns to keep as plain attributes (never direct identifiers such as names or addresses)
allowed_attributes = []

[ga4]
# The GA4 property's reporting time zone (Admin > Property details), e.g. "America/New_York"
property_timezone = "{timezone}"
max_timestamp_skew_hours = 14.0

[identity]
# max_iterations = 50
# Identifier values never used to link customers (compared trimmed, lower-case); defaults in docs/identity.md
# blocked_values = ["", "0", "null", "anonymous", "(not set)"]

# "id_type->other_type" = the most distinct other ids one id may link to; above it, its links are refused
[identity.max_links]
"client_key->member_id" = 3
"client_key->email_pid" = 3
"email_pid->member_id" = 3
"phone_pid->member_id" = 3
"member_id->client_key" = 50

[profiles]
# GA4 events counted in each customer profile: family = [event names] gives a <family>_events column
# [profiles.event_families]
# browse = ["page_view", "screen_view", "view_item"]
# cart = ["add_to_cart", "begin_checkout"]
# purchase = ["purchase"]
# device_use = ["voice_timer", "voice_weather", "voice_music", "ebook_open", "video_play"]
# device_shop = ["voice_shop"]

[predict]
# GA4's predictive metrics (see docs/methods.md); windows are days counted back from the latest data
# purchase_lookback_days = 28   # purchase_probability: customers active in the last 28 days ...
# purchase_horizon_days = 7     # ... purchase in the next 7
# churn_lookback_days = 7       # churn_probability: active in the last 7 days, not active in the next 7
# churn_horizon_days = 7
# revenue_lookback_days = 28    # predicted_revenue: revenue in the next 28 days
# revenue_horizon_days = 28
# training_windows = 4          # weekly training cutoffs stacked per model
# min_positives = 200           # refuse to train below this many positive (and negative) examples
# min_negatives = 200
# clv_horizon_months = 12
# models_dir = "models"

[impact]
# Downstream impact of gateway products (see docs/impact.md and docs/methods.md)
# horizons_days = [90, 180, 365]   # outcome windows after adoption
# pre_period_days = 365            # covariates describe this many days before the index day
# discount_rate = 0.10             # annual, for present values in the unit economics
# life_months = 24                 # months an owner keeps the product
# registered_only = true           # compare customers registered before the index day only
# propensity_model = "logistic"    # or "boosting"
# [impact.service_cost_per_month]  # cost of serving one owner a month
# G002 = 0.90
# [impact.exclude_categories]      # left out of the downstream margin besides the product itself
# G001 = ["accessories"]

# Map spillover's column names (left) to yours (right) when your files name them differently, e.g.
# [columns.crm]
# member_id = "CustomerNumber"
# email = "E-mail"
[columns.crm]
[columns.orders]
[columns.order_items]
[columns.products]
"""


def init_project(
    project_dir: Path | str = ".", db: str | None = None, timezone: str = "UTC"
) -> dict[str, object]:
    """Write ``spillover.toml`` and a project key unless they exist; safe to re-run.

    Returns what was done, for the CLI to print.
    """
    project_dir = Path(project_dir)
    project_dir.mkdir(parents=True, exist_ok=True)
    config_path = project_dir / CONFIG_FILE
    wrote_config = False
    if not config_path.exists():
        config_path.write_text(
            CONFIG_TEMPLATE.format(db=db or DEFAULT_DB_URL, key_file=DEFAULT_KEY_FILE, timezone=timezone), encoding="utf-8"
        )
        wrote_config = True
    config = load_config(project_dir)
    key_path = config.key_path()
    key_source = "file"
    wrote_key = False
    if os.environ.get(KEY_ENV):
        key_source = "environment"
    elif not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        wrote_key = True
    elif stat.S_IMODE(key_path.stat().st_mode) & 0o077:
        os.chmod(key_path, 0o600)
    return {
        "config_file": str(config_path),
        "config_written": wrote_config,
        "key_file": str(key_path),
        "key_written": wrote_key,
        "key_source": key_source,
        "db": config.db,
    }
