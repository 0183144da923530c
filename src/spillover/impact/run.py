"""The impact stage: per gateway product and horizon, the cohort design, the cross-fitted ATT with
customer-clustered standard errors, the naive figures and unit economics; the event study per
product; and the portfolio (each product's headline figures beside the effect of owning any gateway
product). Writes ``mart_impact__estimates``, ``mart_impact__event_study`` and ``mart_impact__portfolio``.

Control subsampling: when a design has more than ``max_control_rows`` control rows, controls are kept
at random with probability ``rate = max_control_rows / control rows`` (seeded; in the engine, before
outcomes and covariates are computed: :func:`spillover.impact.cohorts.sample_controls`) and weighted
``calendar_weight / rate``, so every weighted sum still estimates the full design's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from spillover.impact.diagnostics import as_plain
from spillover.impact.economics import INCONCLUSIVE

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config
    from spillover.impact.cohorts import DesignFrame
    from spillover.impact.facts import Facts
    from spillover.progress import Progress

ESTIMATES = "mart_impact__estimates"
EVENT_STUDY = "mart_impact__event_study"
PORTFOLIO = "mart_impact__portfolio"
#: product_id of the portfolio row: owning any gateway product.
ANY_PRODUCT = "(any gateway product)"
PRIMARY_HORIZON = 365
MAX_CONTROL_ROWS = 40_000
#: Customers who never adopted a product kept in its event-study panel (a random sample beyond).
MAX_NEVER_TREATED = 100_000


@dataclass
class ImpactRun:
    estimates: pd.DataFrame
    event_study: pd.DataFrame
    portfolio: pd.DataFrame

    def rows(self) -> list[dict[str, Any]]:
        """The estimates as JSON-ready rows (``diagnostics`` parsed back into a document)."""
        rows = []
        for row in self.estimates.to_dict(orient="records"):
            row = as_plain(row)
            row["diagnostics"] = json.loads(row["diagnostics"]) if row.get("diagnostics") else None
            rows.append(row)
        return rows


def _product_names(con: BaseBackend) -> dict[str, str]:
    from spillover.profiles.attribution import PRODUCTS

    products = con.table(PRODUCTS).select("product_id", "name").to_pandas()
    return dict(zip(products.product_id, products.name.fillna("")))


def _any_product_facts(facts: Facts) -> Facts:
    """Facts in which the only gateway product is "owning any": each customer's first adoption."""
    adoptions = facts.adoptions
    first = adoptions.group_by("customer_key").aggregate(adopted_day=adoptions.adopted_day.min())
    import ibis

    first = first.select("customer_key", product_id=ibis.literal(ANY_PRODUCT), adopted_day=first.adopted_day)
    return replace(facts, adoptions=first, gateway_products=(ANY_PRODUCT,))


def _any_product_spec(config: Config, gateways: Sequence[str], horizon: int):
    from spillover.impact.cohorts import CohortSpec

    settings = config.impact
    excluded = [*gateways, *(p for g in gateways for p in settings.exclude_products.get(g, ()))]
    categories = sorted({c for g in gateways for c in settings.exclude_categories.get(g, ())})
    return CohortSpec(
        ANY_PRODUCT, horizon, pre_period_days=settings.pre_period_days,
        exclude_products=tuple(dict.fromkeys(excluded)), exclude_categories=tuple(categories),
        registered_only=settings.registered_only,
    )


def _fit(design: DesignFrame, *, propensity_model: str, seed: int) -> tuple[Any, dict[str, Any]]:
    """DownstreamImpact on one design (weights ``design_weight``), clustered by customer; and a
    placebo fit on the rows whose before-window lies in the data."""
    from spillover.impact.estimators import DownstreamImpact

    weight = design.design_weight
    customers = design.keys.customer_key.to_numpy()
    model = DownstreamImpact(propensity_model=propensity_model, n_jobs=-1, random_state=seed).fit(
        design.X, design.treatment, design.outcome, sample_weight=weight, groups=customers,
    )
    controls = design.treatment == 0
    extra: dict[str, Any] = {"control_sampling_rate": float(design.sampling_rate[controls].min(initial=1.0))}
    placebo_rows = np.isfinite(design.placebo)
    d_placebo = design.treatment[placebo_rows]
    if min(int(d_placebo.sum()), int((1 - d_placebo).sum())) >= 30:
        placebo = DownstreamImpact(propensity_model=propensity_model, n_jobs=-1, random_state=seed).fit(
            design.X[placebo_rows], d_placebo, design.placebo[placebo_rows],
            sample_weight=weight[placebo_rows], groups=customers[placebo_rows],
        ).result_
        extra["placebo"] = {
            "estimate": placebo.estimate, "se": placebo.se, "ci_low": placebo.ci_low, "ci_high": placebo.ci_high,
            "p_value": placebo.p_value, "covers_zero": bool(placebo.ci_low <= 0 <= placebo.ci_high),
            "rows": int(placebo_rows.sum()),
        }
    else:
        extra["placebo"] = None
    return model.result_, extra


def _estimate_row(
    con: BaseBackend, config: Config, facts: Facts, spec: Any, name: str, hardware: dict[str, float],
    *, max_control_rows: int, seed: int, daily: Any = None,
) -> dict[str, Any]:
    from spillover.engine import to_float_pandas
    from spillover.errors import SpilloverInputError
    from spillover.impact.cohorts import cohort, design_counts, frame_of, index_rows, sample_controls
    from spillover.impact.economics import unit_economics_from_settings
    from spillover.impact.naive import naive_figures

    families = config.profiles.event_families
    row: dict[str, Any] = {"product_id": spec.product_id, "product_name": name, "horizon_days": spec.horizon_days}
    index = index_rows(facts, spec).cache()
    design = cohort(facts, spec, event_families=families, index=sample_controls(index, max_control_rows, seed),
                    daily=daily).cache()
    try:
        frame = to_float_pandas(design)
        if frame.empty or not frame.treated.any():
            return {**row, "verdict": INCONCLUSIVE, "estimator_verdict": None,
                    "reasons": f"no adopter has a complete {spec.horizon_days}-day window in the data; nothing estimated",
                    "warnings": ""}
        naive = naive_figures(facts, spec, event_families=families, design=design, daily=daily)
        try:
            result, extra = _fit(frame_of(frame), propensity_model=config.impact.propensity_model, seed=seed)
        except SpilloverInputError as exc:
            return {**row, "verdict": INCONCLUSIVE, "estimator_verdict": None,
                    "naive_post_purchase_margin": naive.post_purchase_margin.value,
                    "naive_owner_gap": naive.owner_vs_non_owner.value,
                    "reasons": f"nothing estimated: {exc}", "warnings": ""}
        counts = design_counts(facts, spec, index)
    finally:
        design.release()
        index.release()
    warnings = list(result.warnings)
    if counts["adopters_not_registered_before"]:
        warnings.append(
            f"{counts['adopters_not_registered_before']} buyers who registered with the purchase are left out "
            f"(registered_only; {counts['adopters']} compared): the estimate is about buyers known before buying."
        )
    placebo = extra["placebo"]
    verdict = result.verdict
    if placebo is not None and placebo["p_value"] is not None and placebo["p_value"] < 0.05:
        warnings.append(
            f"Placebo: an 'effect' of {placebo['estimate']:.2f} on the margin before buying (p = {placebo['p_value']:.3g}); "
            "buyers differ in ways the covariates miss."
        )
        verdict = "unreliable"
    failed = tuple(warnings) if verdict == "unreliable" else ()
    economics = unit_economics_from_settings(
        config.impact, product_id=spec.product_id, hardware_margin=hardware.get(spec.product_id, 0.0),
        att=result.estimate, att_se=result.se, horizon_days=spec.horizon_days, diagnostics_failed=failed,
    )
    extra["control_rows_in_design"] = counts["control_rows"]
    diagnostics = {**result.to_dict()["diagnostics"], **extra, "design": counts, "clustered_by": "customer_key"}
    return {
        **row,
        "estimate": result.estimate, "se": result.se, "ci_low": result.ci_low, "ci_high": result.ci_high,
        "n_treated": result.n_treated, "n_control": result.n_control,
        "naive_post_purchase_margin": naive.post_purchase_margin.value,
        "naive_owner_gap": naive.owner_vs_non_owner.value,
        "naive_before_after": naive.before_after.value,
        "naive_adopters_vs_controls": naive.adopters_vs_controls.value,
        "hardware_margin": hardware.get(spec.product_id),
        "downstream_pv": economics.downstream_pv,
        "net_value_per_unit": economics.net_value, "net_value_se": economics.net_value_se,
        "net_value_ci_low": economics.ci_low, "net_value_ci_high": economics.ci_high,
        "probability_positive": economics.probability_positive, "payback_month": economics.payback_month,
        "break_even_monthly_margin": economics.break_even_monthly_margin,
        "estimator_verdict": verdict, "verdict": economics.verdict,
        "reasons": "\n".join(economics.reasons), "warnings": "\n".join(warnings),
        "diagnostics": json.dumps(as_plain(diagnostics), sort_keys=True),
    }


ESTIMATE_COLUMNS = (
    "product_id", "product_name", "horizon_days", "estimate", "se", "ci_low", "ci_high", "n_treated", "n_control",
    "naive_post_purchase_margin", "naive_owner_gap", "naive_before_after", "naive_adopters_vs_controls",
    "hardware_margin", "downstream_pv", "net_value_per_unit", "net_value_se", "net_value_ci_low",
    "net_value_ci_high", "probability_positive", "payback_month", "break_even_monthly_margin",
    "estimator_verdict", "verdict", "reasons", "warnings", "diagnostics",
)
EVENT_COLUMNS = ("product_id", "event_month", "estimate", "se", "ci_low", "ci_high", "is_pre_period")
PORTFOLIO_COLUMNS = (
    "product_id", "product_name", "horizon_days", "naive_post_purchase_margin", "naive_owner_gap", "estimate",
    "ci_low", "ci_high", "n_treated", "total_incremental_margin", "net_value_per_unit", "net_value_ci_low",
    "net_value_ci_high", "verdict", "claims_exceed_portfolio", "note",
)


def _event_study(facts: Facts, spec: Any, daily: Any = None) -> pd.DataFrame:
    from spillover.engine import to_float_pandas
    from spillover.errors import SpilloverInputError
    from spillover.impact.event_study import StaggeredDiD
    from spillover.impact.panel import monthly_panel

    try:
        panel = to_float_pandas(monthly_panel(facts, spec, max_never_treated=MAX_NEVER_TREATED, daily=daily))
        fitted = StaggeredDiD(unit="customer_key", period="period", outcome="downstream_margin").fit(panel).result_
    except SpilloverInputError:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    study = fitted.event_study
    return pd.DataFrame({
        "product_id": spec.product_id, "event_month": study.event_time.astype("int64"), "estimate": study.att,
        "se": study.se, "ci_low": study.ci_low, "ci_high": study.ci_high, "is_pre_period": study.event_time < 0,
    })


def _portfolio(estimates: pd.DataFrame, any_row: dict[str, Any] | None, primary: int) -> pd.DataFrame:
    rows = []
    for product_id, rows_of in estimates.groupby("product_id", sort=True):
        done = rows_of[rows_of.estimate.notna()]
        if done.empty:
            continue
        at = done[done.horizon_days == primary]
        pick = (at if not at.empty else done.sort_values("horizon_days")).iloc[-1]
        rows.append({c: pick.get(c) for c in PORTFOLIO_COLUMNS if c in pick.index}
                    | {"total_incremental_margin": float(pick.estimate) * int(pick.n_treated)})
    table = pd.DataFrame(rows, columns=PORTFOLIO_COLUMNS)
    if any_row is not None and any_row.get("estimate") is not None:
        any_total = float(any_row["estimate"]) * int(any_row["n_treated"])
        same = table[table.horizon_days == any_row["horizon_days"]]
        claims = float(same.total_incremental_margin.sum())
        exceed = bool(claims > any_total)
        note = (
            f"The products' separate claims add up to {claims:,.0f}, more than the {any_total:,.0f} the joint "
            "estimate credits to owning any gateway product: part of each product's effect is shared, and the "
            "per-product figures must not be summed." if exceed else
            f"The products' separate claims ({claims:,.0f}) do not exceed the joint effect of owning any gateway "
            f"product ({any_total:,.0f})."
        )
        portfolio = {c: any_row.get(c) for c in PORTFOLIO_COLUMNS} | {
            "total_incremental_margin": any_total, "claims_exceed_portfolio": exceed, "note": note,
        }
        table = pd.DataFrame([*rows, portfolio], columns=PORTFOLIO_COLUMNS)
    table["claims_exceed_portfolio"] = table.claims_exceed_portfolio.astype(object)
    return table


def run_impact(
    con: BaseBackend,
    config: Config,
    *,
    product_ids: Sequence[str] | None = None,
    horizons: Sequence[int] | None = None,
    primary_horizon: int = PRIMARY_HORIZON,
    max_control_rows: int = MAX_CONTROL_ROWS,
    seed: int = 0,
    progress: Progress | None = None,
) -> ImpactRun:
    """Estimate every (requested) gateway product at every (requested) horizon; see the module
    docstring. The portfolio uses ``primary_horizon``, or the longest horizon estimated below it."""
    from spillover.errors import SpilloverInputError
    from spillover.impact.cohorts import CohortSpec
    from spillover.impact.covariates import daily_activity
    from spillover.impact.facts import hardware_margin_per_unit, load_facts
    from spillover.progress import NullProgress

    progress = progress or NullProgress()
    facts = load_facts(con, config.ga4.property_timezone).cached()
    try:
        products = list(product_ids) if product_ids else list(facts.gateway_products)
        unknown = [p for p in products if p not in facts.gateway_products]
        if unknown:
            raise SpilloverInputError(
                f"impact: {', '.join(unknown)} not gateway products (known: {', '.join(facts.gateway_products) or 'none'})"
            )
        wanted = sorted(set(horizons or config.impact.horizons_days))
        names = _product_names(con)
        hardware = {p: (hardware_margin_per_unit(con, p)[1] or 0.0) for p in products}
        task = progress.task("impact", total=len(products) * (len(wanted) + 1) + 1)
        estimates, studies = [], []
        for product in products:
            # The per-day margins depend on the product's exclusions, not on the horizon: built once.
            daily = daily_activity(facts, CohortSpec.from_settings(config.impact, product, wanted[0])).cache()
            try:
                for horizon in wanted:
                    progress.advance(task, 0, description=f"impact {product} {horizon}d")
                    spec = CohortSpec.from_settings(config.impact, product, horizon)
                    estimates.append(_estimate_row(con, config, facts, spec, names.get(product, ""), hardware,
                                                   max_control_rows=max_control_rows, seed=seed, daily=daily))
                    progress.advance(task)
                progress.advance(task, 0, description=f"impact {product} event study")
                studies.append(_event_study(facts, CohortSpec.from_settings(config.impact, product, wanted[0]), daily))
                progress.advance(task)
            finally:
                daily.release()
        estimates_table = pd.DataFrame(estimates, columns=ESTIMATE_COLUMNS)
        done = estimates_table[estimates_table.estimate.notna()]
        below = sorted(h for h in set(done.horizon_days) if h <= primary_horizon)
        primary = below[-1] if below else primary_horizon
        any_row = None
        if below and len(facts.gateway_products) > 1:
            any_facts = _any_product_facts(facts)
            spec = _any_product_spec(config, facts.gateway_products, primary)
            any_row = _estimate_row(con, config, any_facts, spec, "owning any gateway product", {},
                                    max_control_rows=max_control_rows, seed=seed)
        progress.advance(task)
        study = pd.concat(studies, ignore_index=True) if studies else pd.DataFrame(columns=EVENT_COLUMNS)
        return ImpactRun(estimates_table, study.reindex(columns=EVENT_COLUMNS), _portfolio(estimates_table, any_row, primary))
    finally:
        facts.release()


def _arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    data = {}
    for field in schema:
        values = frame[field.name].tolist() if field.name in frame else [None] * len(frame)
        values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
        if pa.types.is_boolean(field.type) or pa.types.is_integer(field.type):
            cast = bool if pa.types.is_boolean(field.type) else int
            values = [None if v is None else cast(v) for v in values]
        data[field.name] = pa.array(values, type=field.type)
    return pa.table(data, schema=schema)


_MONEY = pa.float64()
ESTIMATES_SCHEMA = pa.schema(
    [("product_id", pa.string()), ("product_name", pa.string()), ("horizon_days", pa.int64())]
    + [(c, _MONEY) for c in ("estimate", "se", "ci_low", "ci_high")]
    + [("n_treated", pa.int64()), ("n_control", pa.int64())]
    + [(c, _MONEY) for c in ESTIMATE_COLUMNS[9:20]]
    + [("payback_month", pa.int64()), ("break_even_monthly_margin", _MONEY)]
    + [(c, pa.string()) for c in ("estimator_verdict", "verdict", "reasons", "warnings", "diagnostics")]
)
EVENT_SCHEMA = pa.schema(
    [("product_id", pa.string()), ("event_month", pa.int64())]
    + [(c, _MONEY) for c in ("estimate", "se", "ci_low", "ci_high")] + [("is_pre_period", pa.bool_())]
)
PORTFOLIO_SCHEMA = pa.schema(
    [("product_id", pa.string()), ("product_name", pa.string()), ("horizon_days", pa.int64())]
    + [(c, _MONEY) for c in ("naive_post_purchase_margin", "naive_owner_gap", "estimate", "ci_low", "ci_high")]
    + [("n_treated", pa.int64())]
    + [(c, _MONEY) for c in ("total_incremental_margin", "net_value_per_unit", "net_value_ci_low", "net_value_ci_high")]
    + [("verdict", pa.string()), ("claims_exceed_portfolio", pa.bool_()), ("note", pa.string())]
)


def write_impact(con: BaseBackend, run: ImpactRun) -> dict[str, int]:
    """Replace the three impact marts with ``run``'s tables."""
    from spillover.engine import write_table

    tables = {
        ESTIMATES: _arrow(run.estimates, ESTIMATES_SCHEMA),
        EVENT_STUDY: _arrow(run.event_study, EVENT_SCHEMA),
        PORTFOLIO: _arrow(run.portfolio, PORTFOLIO_SCHEMA),
    }
    for name, table in tables.items():
        write_table(con, name, table)
    return {name: table.num_rows for name, table in tables.items()}


def build_impact(con: BaseBackend, config: Config, progress: Progress) -> dict[str, int]:
    """The ``impact`` pipeline stage."""
    return write_impact(con, run_impact(con, config, progress=progress))
