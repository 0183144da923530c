"""The downstream-impact report: one self-contained HTML file from the ``mart_impact__*`` tables.

Per gateway product: the naive figures beside the incremental effect with its interval, the event
study with its pre-adoption placebo months, unit economics, the engagement mix (what owners do with
the device) and every diagnostic warning. Charts are Plotly with its JavaScript embedded once, so the
file opens offline and can be mailed as it is.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from spillover.engine import table_exists
from spillover.errors import SpilloverInputError

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config

__all__ = ["write_impact_report"]

ESTIMATES = "mart_impact__estimates"
EVENT_STUDY = "mart_impact__event_study"
PORTFOLIO = "mart_impact__portfolio"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
.verdict-value-creator { color: #1a7f37; font-weight: 600; }
.verdict-value-destroyer { color: #b42318; font-weight: 600; }
.verdict-inconclusive { color: #8a6d00; font-weight: 600; }
.note { color: #555; font-size: 0.9rem; } ul.warnings { color: #8a6d00; }
"""


def _money(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    return f"{float(value):,.2f}"


def _count(value: Any) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{int(value):,}"


def _interval(row: pd.Series, low: str, high: str) -> str:
    return f"[{_money(row.get(low))}, {_money(row.get(high))}]"


def _verdict(value: Any) -> str:
    text = str(value or "inconclusive")
    return f'<span class="verdict-{html.escape(text.replace(" ", "-"))}">{html.escape(text)}</span>'


def _table(headers: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    head = "".join(f'<th class="{"text" if i < text_columns else ""}">{html.escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"text" if i < text_columns else ""}">{cell}</td>' for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Charts:
    """Plotly figures as HTML fragments; the first one carries plotly.js, the rest reuse it."""

    def __init__(self) -> None:
        self._first = True

    def __call__(self, figure: Any) -> str:
        fragment = figure.to_html(full_html=False, include_plotlyjs=self._first, config={"displaylogo": False})
        self._first = False
        return fragment


def _naive_vs_incremental(go: Any, product: pd.DataFrame) -> Any:
    """Bars per horizon: the naive attribution, the owner gap, and the incremental ATT with its CI."""
    horizons = [f"{int(h)} days" for h in product.horizon_days]
    figure = go.Figure()
    figure.add_bar(name="naive: all post-purchase downstream margin", x=horizons, y=product.naive_post_purchase_margin)
    figure.add_bar(name="naive: owners minus non-owners", x=horizons, y=product.naive_owner_gap)
    estimate = product.estimate.astype(float)
    figure.add_bar(
        name="incremental (ATT, 95% CI)",
        x=horizons,
        y=estimate,
        error_y={
            "type": "data",
            "array": (product.ci_high.astype(float) - estimate).tolist(),
            "arrayminus": (estimate - product.ci_low.astype(float)).tolist(),
        },
    )
    figure.update_layout(
        barmode="group", height=360, margin={"t": 40}, yaxis_title="downstream margin per buyer",
        title="What the naive attribution claims, and what the product causes",
    )
    return figure


def _event_study_chart(go: Any, events: pd.DataFrame) -> Any:
    events = events.sort_values("event_month")
    figure = go.Figure()
    for pre, name, colour in ((True, "before adoption (placebo: should be 0)", "#999"), (False, "after adoption", "#1f77b4")):
        part = events[events.is_pre_period == pre]
        if part.empty:
            continue
        figure.add_scatter(
            x=part.event_month, y=part.estimate, mode="markers+lines", name=name, line={"color": colour},
            error_y={"type": "data", "array": (part.ci_high - part.estimate).tolist(),
                     "arrayminus": (part.estimate - part.ci_low).tolist()},
        )
    figure.add_hline(y=0, line_dash="dot", line_color="#666")
    figure.update_layout(
        height=340, margin={"t": 40}, xaxis_title="months since adoption", yaxis_title="effect on monthly margin",
        title="Event study (staggered difference-in-differences)",
    )
    return figure


def _engagement_chart(go: Any, mix: pd.DataFrame) -> Any:
    mix = mix.sort_values("months_since_adoption")
    figure = go.Figure()
    figure.add_bar(name="free interactions per owner", x=mix.months_since_adoption, y=mix.free_per_owner)
    figure.add_bar(name="monetisable interactions per owner", x=mix.months_since_adoption, y=mix.monetisable_per_owner)
    figure.update_layout(
        barmode="stack", height=320, margin={"t": 40}, xaxis_title="months since adoption",
        yaxis_title="interactions per owner", title="What owners do with it",
    )
    return figure


def _engagement(con: BaseBackend, config: Config) -> pd.DataFrame:
    """The engagement mix per device, or an empty frame where the warehouse cannot give it."""
    from spillover.impact.engagement import engagement_mix
    from spillover.impact.facts import load_facts

    mix = engagement_mix(load_facts(con, config.ga4.property_timezone), config.impact.device_events)
    return pd.DataFrame() if mix is None else mix.to_pandas()


def _product_section(go: Any, charts: _Charts, product: pd.DataFrame, events: pd.DataFrame, mix: pd.DataFrame) -> str:
    first = product.iloc[0]
    name = html.escape(f"{first.product_name} ({first.product_id})")
    parts = [f"<h2>{name}</h2>", charts(_naive_vs_incremental(go, product))]
    rows = []
    for _, row in product.iterrows():
        rows.append([
            f"{int(row.horizon_days)} days",
            _money(row.naive_post_purchase_margin),
            _money(row.naive_owner_gap),
            f"{_money(row.estimate)} {_interval(row, 'ci_low', 'ci_high')}",
            f"{_count(row.n_treated)} / {_count(row.n_control)}",
            _money(row.hardware_margin),
            f"{_money(row.net_value_per_unit)} {_interval(row, 'net_value_ci_low', 'net_value_ci_high')}",
            "n/a" if pd.isna(row.probability_positive) else f"{float(row.probability_positive):.0%}",
            "never" if pd.isna(row.payback_month) else f"month {int(row.payback_month)}",
            _money(row.break_even_monthly_margin),
            html.escape(str(row.estimator_verdict or "")),
            _verdict(row.verdict),
        ])
    parts.append(_table(
        ["horizon", "naive post-purchase", "naive owner gap", "incremental ATT [95% CI]", "adopters / controls",
         "hardware margin", "net value per unit [95% CI]", "P(net > 0)", "payback", "break-even margin / month",
         "estimator", "verdict"],
        rows,
    ))
    reasons = sorted({line for text in product.reasons.dropna() for line in str(text).splitlines() if line.strip()})
    warnings = sorted({line for text in product.warnings.dropna() for line in str(text).splitlines() if line.strip()})
    if reasons:
        parts.append("<p><b>Why this verdict</b></p><ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in reasons) + "</ul>")
    if warnings:
        parts.append('<p><b>Diagnostics</b></p><ul class="warnings">' + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>")
    if not events.empty:
        parts.append(charts(_event_study_chart(go, events)))
    if not mix.empty:
        parts.append(charts(_engagement_chart(go, mix)))
        shares = mix.free_share.dropna()
        if not shares.empty:
            parts.append(f'<p class="note">Free interactions are {shares.mean():.0%} of owners\' device use on average '
                         "over the months observed.</p>")
    return "\n".join(parts)


def _portfolio_section(portfolio: pd.DataFrame) -> str:
    rows = [
        [
            html.escape(str(row.product_name)),
            f"{int(row.horizon_days)} days",
            _money(row.naive_post_purchase_margin),
            _money(row.naive_owner_gap),
            f"{_money(row.estimate)} {_interval(row, 'ci_low', 'ci_high')}",
            f"{_money(row.net_value_per_unit)} {_interval(row, 'net_value_ci_low', 'net_value_ci_high')}",
            _verdict(row.verdict),
        ]
        for _, row in portfolio.iterrows()
    ]
    notes = [html.escape(str(n)) for n in portfolio.get("note", pd.Series(dtype=str)).dropna() if str(n).strip()]
    table = _table(["product", "horizon", "naive post-purchase", "naive owner gap", "incremental ATT [95% CI]",
                    "net value per unit [95% CI]", "verdict"], rows)
    return "<h2>Portfolio</h2>" + table + "".join(f'<p class="note">{n}</p>' for n in notes)


def write_impact_report(con: BaseBackend, config: Config, output: Path) -> Path:
    """Write the HTML report of the latest ``spillover impact run`` to ``output``; return its path."""
    missing = [name for name in (ESTIMATES, EVENT_STUDY, PORTFOLIO) if not table_exists(con, name)]
    if missing:
        raise SpilloverInputError(
            f"the impact report needs {', '.join(missing)}; run `spillover impact run` (or `spillover build`) first"
        )
    import plotly.graph_objects as go

    estimates = con.table(ESTIMATES).to_pandas()
    events = con.table(EVENT_STUDY).to_pandas()
    portfolio = con.table(PORTFOLIO).to_pandas()
    try:
        mix = _engagement(con, config)
    except SpilloverInputError:
        mix = pd.DataFrame()
    charts = _Charts()
    sections = [_portfolio_section(portfolio)]
    for product_id, product in estimates.sort_values(["product_id", "horizon_days"]).groupby("product_id", sort=True):
        sections.append(_product_section(
            go,
            charts,
            product,
            events[events.product_id == product_id],
            mix[mix.product_id == product_id] if not mix.empty else mix,
        ))
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spillover — downstream impact</title>
<style>{_STYLE}</style></head><body>
<h1>Downstream impact</h1>
<p class="note">Generated {generated} by spillover. Incremental figures are average effects on the
customers who bought (ATT) with 95% confidence intervals; naive figures are shown beside them, labelled
as such. Methods: docs/methods.md and docs/impact.md.</p>
{"".join(sections)}
<script type="application/json" id="spillover-portfolio">{html.escape(json.dumps(portfolio.astype(object).where(portfolio.notna(), None).to_dict(orient="records"), default=str))}</script>
</body></html>
"""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document, encoding="utf-8")
    return output
