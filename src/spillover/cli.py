"""The ``spillover`` command line: a thin Typer layer over the library.

Commands parse arguments, call library functions and print their results (a Rich rendering, or JSON
with ``--json``). Only ``main`` turns :class:`~spillover.errors.SpilloverError` into an exit code
(2 for bad input, 1 otherwise) and a one-line message; ``--debug`` shows the traceback. Heavy
libraries are imported inside the commands so that ``spillover --help`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config

app = typer.Typer(
    name="spillover",
    add_completion=False,
    help="spillover: a warehouse-native customer data platform.\n\n"
    "Load GA4 exports, CRM and shop data into your warehouse (DuckDB by default), resolve customers, "
    "and measure what each product really causes downstream.\n\n"
    "Example: spillover init && spillover ingest ga4 export/ && spillover sql 'select count(*) from stg_ga4__events'",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
ingest_app = typer.Typer(
    help="Load files into the warehouse; bad rows go to ops_quarantine, nothing is lost.\n\n"
    "Example: spillover ingest ga4 export/ --json",
    no_args_is_help=True,
)
app.add_typer(ingest_app, name="ingest")
clv_app = typer.Typer(
    help="Customer lifetime value: BG/NBD purchases, Gamma-Gamma spend, discounted CLV.\n\n"
    "Example: spillover clv fit --summary rfm.csv --json",
    no_args_is_help=True,
)
app.add_typer(clv_app, name="clv")
predict_app = typer.Typer(
    help="Purchase and churn probabilities, predicted revenue and lifetime value, trained on the warehouse.\n\n"
    "Example: spillover predict train --json && spillover predict score",
    no_args_is_help=True,
)
app.add_typer(predict_app, name="predict")
impact_app = typer.Typer(
    help="Downstream impact: what a gateway product causes elsewhere, with confidence intervals, "
    "diagnostics and a verdict, beside the naive attribution.\n\n"
    "Example: spillover impact estimate customers.parquet --treatment bought_speaker --outcome margin_after --json",
    no_args_is_help=True,
)
app.add_typer(impact_app, name="impact")

_state: dict[str, Any] = {"debug": False}

DB_HELP = "Warehouse URL (default: `db` in spillover.toml, else duckdb:///spillover.duckdb)."
JSON_HELP = "Print the result as JSON on stdout."


def _db_option() -> Any:
    return typer.Option(None, "--db", metavar="URL", help=DB_HELP, envvar="SPILLOVER_DB", show_envvar=True)


def _json_option() -> Any:
    return typer.Option(False, "--json", help=JSON_HELP)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        from spillover import __version__

        typer.echo(f"spillover {__version__}")
        raise typer.Exit()
    _state["debug"] = debug


# --------------------------------------------------------------------------------------------------
# helpers


def _config() -> Config:
    from spillover.config import load_config

    return load_config(Path.cwd())


def _connect(db: str | None, config: Config | None = None, *, read_only: bool = False) -> BaseBackend:
    from spillover.engine import connect

    config = config or _config()
    return connect(db or config.db, read_only=read_only)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, allow_nan=False))


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def _progress(enabled: bool = True) -> Any:
    from spillover.progress import RichProgress

    return RichProgress(transient=True, enabled=enabled and sys.stderr.isatty())


def _show_load(result: Any, as_json: bool) -> None:
    data = result.to_dict()
    if as_json:
        _print_json(
            {k: data[k] for k in ("source", "load_id", "files", "rows_read", "rows_loaded",
                                  "rows_quarantined", "duplicates_dropped", "partitions",
                                  "file_errors", "ignored_columns", "tables")}
        )
        return
    from rich.table import Table

    console = _console()
    table = Table(title=f"{result.source} load {result.load_id[:8]}", show_header=False)
    for label, key in [
        ("files", None), ("rows read", "rows_read"), ("rows loaded", "rows_loaded"),
        ("rows quarantined", "rows_quarantined"), ("duplicates dropped", "duplicates_dropped"),
    ]:
        value = len(data["files"]) if key is None else data[key]
        table.add_row(label, f"{value:,}")
    if data["partitions"]:
        parts = data["partitions"]
        shown = ", ".join(parts[:6]) + (f" … (+{len(parts) - 6})" if len(parts) > 6 else "")
        table.add_row("partitions", shown)
    for name, rows in data["tables"].items():
        table.add_row(f"table {name}", f"{rows:,} rows")
    console.print(table)
    if data.get("ignored_columns"):
        console.print(f"ignored columns (not loaded): {', '.join(data['ignored_columns'])}")
    for problem in data["file_errors"]:
        _console(stderr=True).print(f"[yellow]skipped[/] {problem['file']}: {problem['reason']}")
    if data["rows_quarantined"]:
        console.print(
            f"{data['rows_quarantined']:,} rows quarantined; see them with: spillover sql "
            f"\"select source_file, source_line, reason, message from ops_quarantine where load_id = "
            f"'{result.load_id}'\""
        )


# --------------------------------------------------------------------------------------------------
# init


@app.command()
def init(
    directory: Path = typer.Argument(Path("."), metavar="DIR", help="Project folder (created if missing)."),
    db: Optional[str] = typer.Option(None, "--db", metavar="URL", help="Warehouse URL to write into spillover.toml."),
    timezone: str = typer.Option("UTC", "--timezone", metavar="TZ", help="The GA4 property's reporting time zone."),
    as_json: bool = _json_option(),
) -> None:
    """Create spillover.toml and the project key; safe to re-run (never replaces a key).

    The key (in .spillover/key, permissions 0600, or $SPILLOVER_KEY) pseudonymises identifiers.

    Example: spillover init my-project --db duckdb:///warehouse.duckdb --timezone Europe/Berlin
    """
    from spillover.config import init_project

    done = init_project(directory, db=db, timezone=timezone)
    if as_json:
        _print_json(done)
        return
    console = _console()
    console.print(f"{'wrote' if done['config_written'] else 'kept'} {done['config_file']}")
    if done["key_source"] == "environment":
        console.print("project key: taken from $SPILLOVER_KEY")
    else:
        console.print(f"{'created' if done['key_written'] else 'kept'} project key {done['key_file']} (0600)")
    console.print(f"warehouse: {done['db']}")


# --------------------------------------------------------------------------------------------------
# ingest


@ingest_app.command("ga4")
def ingest_ga4_command(
    paths: list[Path] = typer.Argument(..., metavar="PATH...", help="Export files or folders (events_YYYYMMDD*, events_intraday_YYYYMMDD*; .json/.jsonl[.gz], .parquet)."),
    db: Optional[str] = _db_option(),
    as_json: bool = _json_option(),
) -> None:
    """Load GA4 BigQuery-export files into base_ga4__events and stage them.

    Re-loading a date replaces it; a daily table replaces the intraday table of the same date; exact
    duplicate events are dropped and counted; bad rows go to ops_quarantine.

    Example: spillover ingest ga4 export/ga4/ --json
    """
    from spillover.ingest.ga4 import ingest_ga4

    config = _config()
    con = _connect(db, config)
    with _progress(not as_json) as progress:
        result = ingest_ga4(con, paths, config=config, progress=progress)
    _show_load(result, as_json)


def _ingest_table_command(source: str, doc: str) -> None:
    """Register ``spillover ingest <source> FILE`` for a tabular source."""

    def command(
        path: Path = typer.Argument(..., metavar="FILE", help="CSV or Parquet file."),
        db: Optional[str] = _db_option(),
        as_json: bool = _json_option(),
    ) -> None:
        from spillover.ingest.tabular import ingest_source

        config = _config()
        con = _connect(db, config)
        with _progress(not as_json) as progress:
            result = ingest_source(con, source, path, config=config, progress=progress)
        _show_load(result, as_json)

    command.__doc__ = doc
    ingest_app.command(source.replace("_", "-"))(command)


_ingest_table_command(
    "crm",
    """Load CRM members into stg_crm__members; emails and phones become keyed pseudonyms.

    Names and addresses are dropped; map your column names in [columns.crm] of spillover.toml.

    Example: spillover ingest crm crm/members.csv --json
    """,
)
_ingest_table_command(
    "products",
    """Load the product catalog into stg_shop__products (price, unit cost, gateway flag).

    Example: spillover ingest products shop/products.csv
    """,
)
_ingest_table_command(
    "orders",
    """Load back-office orders into stg_shop__orders (store, call-centre and online orders).

    Example: spillover ingest orders shop/orders.csv
    """,
)
_ingest_table_command(
    "order_items",
    """Load order lines into stg_shop__order_items; unknown products or orders are quarantined.

    Load products and orders first. Example: spillover ingest order-items shop/order_items.csv
    """,
)


# --------------------------------------------------------------------------------------------------
# build, sql, tables


@app.command()
def build(
    stage: Optional[list[str]] = typer.Option(None, "--stage", metavar="STAGE", help="Run only these stages (repeatable)."),
    db: Optional[str] = _db_option(),
    as_json: bool = _json_option(),
) -> None:
    """Run the pipeline stages over loaded data, in order, recording each run in ops_runs.

    Example: spillover build --stage stage --json
    """
    from spillover.pipeline import run_pipeline

    config = _config()
    con = _connect(db, config)
    with _progress(not as_json) as progress:
        runs = run_pipeline(con, config, stages=stage, progress=progress)
    if as_json:
        _print_json(runs)
        return
    from rich.table import Table

    table = Table("stage", "table", "rows", "seconds")
    for run in runs:
        for name, rows in run["tables"].items():
            table.add_row(run["stage"], name, f"{rows:,}", f"{run['seconds']:.1f}")
    _console().print(table)


@app.command()
def sql(
    query: str = typer.Argument(..., metavar="QUERY", help="One read-only SQL query (SELECT / WITH / DESCRIBE ...)."),
    db: Optional[str] = _db_option(),
    limit: int = typer.Option(100, "--limit", min=0, metavar="N", help="Show at most this many rows (0: all)."),
    as_json: bool = _json_option(),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV on stdout."),
) -> None:
    """Run a read-only query against the warehouse and print the rows.

    Example: spillover sql "select reason, count(*) from ops_quarantine group by 1" --json
    """
    from spillover.query import run_query

    config = _config()
    con = _connect(db, config, read_only=True)
    frame, total = run_query(con, query, limit=limit)
    if as_json:
        _print_json(json.loads(frame.to_json(orient="records", date_format="iso")))
        return
    if as_csv:
        typer.echo(frame.to_csv(index=False), nl=False)
        return
    from rich.table import Table

    table = Table(*[str(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        table.add_row(*["" if v is None else str(v) for v in row])
    console = _console()
    console.print(table)
    if total is not None and total > len(frame):
        console.print(f"showing {len(frame):,} of {total:,} rows; use --limit 0 for all")


@app.command()
def tables(db: Optional[str] = _db_option(), as_json: bool = _json_option()) -> None:
    """List the warehouse's spillover tables with their row counts.

    Example: spillover tables --json
    """
    from spillover.query import table_counts

    config = _config()
    con = _connect(db, config, read_only=True)
    counts = table_counts(con)
    if as_json:
        _print_json(counts)
        return
    from rich.table import Table

    table = Table("table", "rows")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    _console().print(table)


# --------------------------------------------------------------------------------------------------
# profile


def _format_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_format_value(v)}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _show_card(card: dict[str, Any], matched_as: tuple[str, ...]) -> None:
    from rich.panel import Panel
    from rich.table import Table

    console = _console()
    fields = Table(show_header=False, box=None, pad_edge=False)
    for name, value in card["profile"].items():
        if name != "customer_key" and value is not None:
            fields.add_row(name, _format_value(value))
    console.print(Panel(fields, title=f"customer {card['customer_key']}", subtitle=f"found as {', '.join(matched_as)}"))
    identifiers = Table("id_type", "id_value", title="identifiers (pseudonymised)")
    for row in card["identifiers"]:
        identifiers.add_row(row["id_type"], row["id_value"])
    console.print(identifiers)
    if card["adoptions"]:
        adoptions = Table("product_id", "product", "adopted_at", "channel", "order_id", title="gateway products")
        for row in card["adoptions"]:
            adoptions.add_row(row["product_id"], row["product_name"] or "", row["adopted_at"], row["channel"], row["order_id"])
        console.print(adoptions)
    else:
        console.print("no gateway products")


@app.command()
def profile(
    identifier: str = typer.Argument(..., metavar="ID", help="Any identifier of the customer."),
    id_type: Optional[str] = typer.Option(
        None, "--id-type", metavar="TYPE",
        help="What ID is: customer_key, member_id, user_id, client_key, user_pseudo_id, email, phone, "
        "email_pid, phone_pid, order_id or transaction_id (default: try every type ID may be).",
    ),
    db: Optional[str] = _db_option(),
    as_json: bool = _json_option(),
) -> None:
    """Show one customer's profile, identifiers and gateway products, found by any identifier.

    An email or phone number is normalised and pseudonymised with the project key, as at ingest,
    before the lookup; only pseudonyms are printed. Exits with 2 when nothing matches, or when ID
    matches several customers (say which kind of identifier it is with --id-type).

    Example: spillover profile M00000042 --json
    """
    from spillover.config import project_key
    from spillover.profiles.lookup import customer_card, find_customer

    config = _config()
    con = _connect(db, config, read_only=True)
    match = find_customer(
        con, identifier, id_type=id_type, key=lambda: project_key(config),
        phone_region=config.privacy.phone_default_region,
    )
    card = customer_card(con, match.customer_key)
    if as_json:
        _print_json({**card, "matched_as": list(match.matched_as)})
        return
    _show_card(card, match.matched_as)


# --------------------------------------------------------------------------------------------------
# clv


@clv_app.command("fit")
def clv_fit(
    summary: Optional[Path] = typer.Option(None, "--summary", metavar="FILE", help="RFM summary, CSV or Parquet: frequency, recency, T [, monetary_value] [, an id column]."),
    transactions: Optional[Path] = typer.Option(None, "--transactions", metavar="FILE", help="Transactions, CSV or Parquet: one row per purchase (summarised per customer first)."),
    customer_id: Optional[str] = typer.Option(None, "--customer-id", metavar="COLUMN", help="Customer id column (required with --transactions; with --summary default customer_id, ID or id if present)."),
    datetime_column: Optional[str] = typer.Option(None, "--datetime", metavar="COLUMN", help="Purchase date/time column (with --transactions)."),
    monetary: Optional[str] = typer.Option(None, "--monetary", metavar="COLUMN", help="Spend column (with --transactions); enables the Gamma-Gamma spend model and CLV."),
    model: str = typer.Option("bgnbd", "--model", metavar="MODEL", help="Purchase model: bgnbd (BG/NBD) or pareto-nbd (Pareto/NBD)."),
    freq: str = typer.Option("W", "--freq", metavar="D|W", help="Period: D (days) or W (weeks); with --summary, the unit of recency and T."),
    calibration_end: Optional[str] = typer.Option(None, "--calibration-end", metavar="DATE", help="Fit on purchases up to DATE; later ones form a holdout that the fit is checked against."),
    observation_end: Optional[str] = typer.Option(None, "--observation-end", metavar="DATE", help="Ignore purchases after DATE (default: the last purchase)."),
    horizon: int = typer.Option(12, "--horizon", min=1, metavar="MONTHS", help="Months ahead for --output predictions."),
    discount_rate: float = typer.Option(0.01, "--discount-rate", metavar="RATE", help="Monthly discount rate of the CLV."),
    margin: float = typer.Option(1.0, "--margin", metavar="SHARE", help="Share of spend that is contribution margin (1 values revenue)."),
    output: Optional[Path] = typer.Option(None, "--output", metavar="FILE", help="Write per-customer predictions (expected_purchases, p_alive, expected_spend, clv) as CSV or Parquet."),
    as_json: bool = _json_option(),
) -> None:
    """Fit BG/NBD or Pareto/NBD (and Gamma-Gamma when spend is known); print estimates and standard errors.

    Give an RFM summary (--summary) or a transactions file (--transactions with --customer-id and
    --datetime). With --calibration-end the fit is checked against the purchases after that date.

    Example: spillover clv fit --transactions orders.csv --customer-id customer_key --datetime ordered_at --monetary margin --freq W --calibration-end 2024-09-30 --output clv.parquet --json
    """
    import warnings

    from spillover.errors import SpilloverInputError
    from spillover.predict.clv_fit import fit_clv, summary_from_file, summary_from_transactions, write_table

    if (summary is None) == (transactions is None):
        raise SpilloverInputError("give exactly one of --summary FILE or --transactions FILE")
    if freq not in ("D", "W"):
        raise SpilloverInputError(f"--freq {freq!r} is not supported; use D (days) or W (weeks)")
    if model not in ("bgnbd", "pareto-nbd"):
        raise SpilloverInputError(f"--model {model!r} is not supported; use bgnbd or pareto-nbd")
    if not 0 < margin <= 1:
        raise SpilloverInputError(f"--margin {margin} must be a share of spend in (0, 1]")
    if summary is not None:
        extra = [flag for flag, value in (("--datetime", datetime_column), ("--monetary", monetary),
                 ("--calibration-end", calibration_end), ("--observation-end", observation_end)) if value]
        if extra:
            raise SpilloverInputError(f"{', '.join(extra)} only apply to --transactions; a summary is already per customer")
        frame, id_column = summary_from_file(summary, id_column=customer_id)
        source = str(summary)
    else:
        if not customer_id or not datetime_column:
            raise SpilloverInputError("--transactions needs --customer-id COLUMN and --datetime COLUMN")
        frame = summary_from_transactions(
            transactions, customer_id=customer_id, datetime=datetime_column, monetary=monetary, freq=freq,
            calibration_end=calibration_end, observation_end=observation_end,
        )
        id_column, source = customer_id, str(transactions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fit_clv(frame, time_unit=freq, purchase_model=model.replace("-", "_"), id_column=id_column, source=source)
    result = fitted.to_dict()
    if output is not None:
        predictions = fitted.predictions(horizon=horizon, discount_rate=discount_rate, margin=margin)
        result["output"] = {"file": str(write_table(predictions, output)), "rows": len(predictions),
                            "horizon_months": horizon}
    if as_json:
        _print_json(result)
        return
    from rich.table import Table

    console = _console()
    table = Table("model", "parameter", "estimate", "std. error", title=f"CLV models fitted on {source}")
    purchase = [(label, key) for label, key in (("BG/NBD", "bgnbd"), ("Pareto/NBD", "pareto_nbd")) if key in result]
    models = purchase + ([("Gamma-Gamma", "gamma_gamma")] if "gamma_gamma" in result else [])
    for label, key in models:
        for name, value in result[key].items():
            error = result[f"{key}_standard_errors"][name]
            table.add_row(label, name, f"{value:.4g}", "n/a" if error is None else f"{error:.3g}")
    console.print(table)
    unit = {"D": "days", "W": "weeks"}[freq]
    console.print(f"{result['n_customers']:,} customers (periods: {unit}); {purchase[0][0]} log-likelihood {result['log_likelihood']:,.2f}")
    if "gamma_gamma" in result:
        console.print(f"{result['n_repeat_customers']:,} repeat customers in the spend model; "
                      f"correlation of frequency and spend {result['frequency_spend_correlation'] or float('nan'):.3f} "
                      "(the model assumes it is near 0)")
    if "holdout" in result:
        check = result["holdout"]
        console.print(f"holdout ({check['periods']:g} {unit}): {check['actual_purchases']:,.0f} repeat purchases, "
                      f"{check['predicted_purchases']:,.1f} predicted")
    for message in result["warnings"]:
        _console(stderr=True).print(f"[yellow]warning[/] {message}")
    if "output" in result:
        console.print(f"wrote {result['output']['rows']:,} predictions to {result['output']['file']}")


# --------------------------------------------------------------------------------------------------
# predict


def _metric(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@predict_app.command("train")
def predict_train(
    model: Optional[list[str]] = typer.Option(
        None, "--model", metavar="MODEL",
        help="Train only these (repeatable): purchase_probability, churn_probability, predicted_revenue, clv.",
    ),
    db: Optional[str] = _db_option(),
    as_json: bool = _json_option(),
) -> None:
    """Train the models on the warehouse, judge them out of time, and record them in ops_models.

    Propensity models learn from weekly cutoffs in the past and are evaluated on the latest window
    (ROC-AUC, PR-AUC, top-decile lift, Brier score, reliability); CLV (BG/NBD + Gamma-Gamma) is
    checked on a holdout period (mart_clv__holdout). Fitted models go to models/ beside
    spillover.toml. A model with too few positive or negative examples is refused, not fitted: its
    ops_models row says why; with --model naming it, the command exits with 2.

    Example: spillover predict train --json
    """
    from spillover.errors import SpilloverIneligibleError
    from spillover.predict.build import train_models

    config = _config()
    con = _connect(db, config)
    with _progress(not as_json) as progress:
        training = train_models(con, config, models=tuple(model) if model else None, progress=progress)
    rows = training.summary()
    if as_json:
        _print_json({"as_of": training.as_of.isoformat(), "models": rows, "clv_holdout": training.holdout})
    else:
        _show_training(rows, training.holdout)
    refused = [row for row in rows if row["status"] != "trained"]
    if model and refused:
        raise SpilloverIneligibleError(refused[0]["message"])


def _show_training(rows: list[dict[str, Any]], holdout: list[dict[str, Any]]) -> None:
    from rich.table import Table

    console = _console()
    table = Table("model", "version", "evaluated on", "customers", "positives", "ROC-AUC", "PR-AUC",
                  "top-decile lift", "Brier", title="models (out-of-time metrics)")
    for row in rows:
        if row["status"] != "trained":
            table.add_row(row["model"], "-", "refused", "", "", "", "", "", "")
            continue
        m = row["metrics"]
        window = f"{row['evaluation_window_start'][:10]} to {row['evaluation_window_end'][:10]}"
        if row["model"] == "clv":
            check = m["holdout"]
            table.add_row("clv", str(row["version"]), window, f"{check['customers']:,}",
                          f"{check['actual_purchases']:,.0f} purchases", "", "", "",
                          f"predicted {check['predicted_purchases']:,.0f}")
        elif row["model"] == "predicted_revenue":
            table.add_row(row["model"], str(row["version"]), window, f"{m['customers']:,}", f"{m['buyers']:,}",
                          _metric(m["buyer_roc_auc"]), "", _metric(m["top_decile_lift"], 2),
                          f"total {_metric(m['total_ratio'], 2)}x")
        else:
            table.add_row(row["model"], str(row["version"]), window, f"{m['customers']:,}", f"{m['positives']:,}",
                          _metric(m["roc_auc"]), _metric(m["pr_auc"]), _metric(m["top_decile_lift"], 2),
                          _metric(m["brier"]))
    console.print(table)
    for row in rows:
        if row["status"] != "trained":
            _console(stderr=True).print(f"[yellow]refused[/] {row['message']}")
    if holdout:
        check = Table("calibration frequency", "customers", "actual", "predicted", title="CLV holdout: repeat purchases")
        for line in holdout:
            check.add_row(line["frequency_label"], f"{line['customers']:,}", f"{line['actual_purchases']:,.0f}",
                          f"{line['predicted_purchases']:,.1f}")
        console.print(check)


@predict_app.command("score")
def predict_score(
    db: Optional[str] = _db_option(),
    as_json: bool = _json_option(),
) -> None:
    """Score today's customers with the trained models and replace mart_predictions.

    One row per customer and score: purchase_probability and predicted_revenue for customers active
    in the last 28 days, churn_probability for those active in the last 7, clv and p_alive for every
    customer with an order. Train first (spillover predict train or spillover build).

    Example: spillover predict score --json
    """
    from spillover.predict.build import score_models

    config = _config()
    con = _connect(db, config)
    with _progress(not as_json) as progress:
        counts = score_models(con, config, progress=progress)
    if as_json:
        _print_json({"table": "mart_predictions", "rows": counts})
        return
    from rich.table import Table

    table = Table("score", "customers", title="mart_predictions")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    _console().print(table)


# --------------------------------------------------------------------------------------------------
# impact


def _num(value: Any, spec: str) -> str:
    """A number formatted by ``spec``, or "n/a" where JSON has null (not finite)."""
    return "n/a" if value is None else format(value, spec)


def _show_impact(data: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    estimand = data["estimand"].upper()
    diagnostics = data["diagnostics"]
    overlap, balance = diagnostics["overlap"], diagnostics["balance"]
    placebo, sensitivity = diagnostics["placebo"], diagnostics["sensitivity"]
    rows = [
        (f"{estimand} (doubly robust)", _num(data["estimate"], ",.4g")),
        ("standard error", _num(data["se"], ",.4g")),
        ("95% CI", f"{_num(data['ci_low'], ',.4g')} to {_num(data['ci_high'], ',.4g')}"),
        ("naive difference (attribution)", _num(data["naive_difference"], ",.4g")),
        ("treated / control", f"{data['n_treated']:,} / {data['n_control']:,}"),
        ("propensity AUC", _num(overlap["propensity_auc"], ".3f")),
        ("treated beyond trimming bound",
         f"{_num(overlap['share_treated_above_bound'], '.1%')} (propensities clipped: {overlap['n_clipped']:,})"),
        ("max |SMD| before / after weighting",
         f"{_num(balance['max_abs_smd_before'], '.3f')} / {_num(balance['max_abs_smd_after'], '.3f')}"),
        ("effective weighted controls", _num(diagnostics["control_effective_sample_size"], ",.0f")),
        ("E-value (estimate / CI limit)", f"{_num(sensitivity['e_value'], '.2f')} / {_num(sensitivity['e_value_ci'], '.2f')}"),
    ]
    if placebo is not None:
        rows.append((
            "placebo effect (95% CI)",
            f"{_num(placebo['estimate'], ',.4g')} ({_num(placebo['ci_low'], ',.4g')} to {_num(placebo['ci_high'], ',.4g')})",
        ))
    table = Table(show_header=False, title=f"{estimand} of {data['treatment']} on {data['outcome']} ({data['source']})")
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    colour = "green" if data["verdict"] == "reliable" else "red"
    console.print(f"verdict: [{colour}]{data['verdict']}[/]")
    for warning in data["warnings"]:
        console.print(f"- {warning}")


@impact_app.command("estimate")
def impact_estimate(
    data: Path = typer.Argument(..., metavar="DATA", help="Flat table, one row per customer: .csv, .csv.gz or .parquet."),
    treatment: str = typer.Option(..., "--treatment", metavar="COL", help="0/1 column: 1 = bought the product."),
    outcome: str = typer.Option(..., "--outcome", metavar="COL", help="Numeric outcome, e.g. downstream margin after adoption."),
    covariates: Optional[str] = typer.Option(
        None, "--covariates", metavar="A,B,...",
        help="Comma-separated covariate columns (default: every other column, identifiers and dates left out).",
    ),
    estimand: str = typer.Option("att", "--estimand", metavar="att|ate", help="att: effect on those who bought (default); ate: on everyone."),
    placebo_outcome: Optional[str] = typer.Option(
        None, "--placebo-outcome", metavar="COL", help="An outcome the product cannot have moved (e.g. margin before adoption); must come out ≈ 0.",
    ),
    folds: int = typer.Option(5, "--folds", min=2, metavar="K", help="Cross-fitting folds."),
    repeats: int = typer.Option(
        1, "--repeats", min=1, metavar="N",
        help="Cross-fit on N random fold splits and report the median (steadier on small tables; N times slower).",
    ),
    propensity_model: str = typer.Option(
        "boosting", "--propensity-model", metavar="boosting|logistic",
        help="Model of the chance to buy: gradient-boosted trees (default) or regularised logistic regression "
        "(steadier weights when buyers are rare).",
    ),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Random seed for folds and models."),
    as_json: bool = _json_option(),
) -> None:
    """Estimate a product's downstream impact from a flat table (cross-fitted doubly-robust AIPW).

    Prints the estimate with its 95% CI beside the naive difference, the diagnostics (overlap,
    balance, effective sample size, placebo, E-value) and a verdict: "unreliable" when a
    diagnostic fails. Categorical covariates are one-hot encoded; missing covariate values are kept.

    Example: spillover impact estimate customers.csv --treatment bought_speaker --outcome margin_90d --placebo-outcome margin_pre_90d --json
    """
    from spillover.errors import SpilloverInputError
    from spillover.impact.flat_table import estimate_from_table

    if estimand not in ("att", "ate"):
        raise SpilloverInputError(f"--estimand must be att or ate, not {estimand!r}")
    names = None if covariates is None else [c.strip() for c in covariates.split(",") if c.strip()]
    found = estimate_from_table(
        data, treatment=treatment, outcome=outcome, covariates=names, estimand=estimand,
        placebo_outcome=placebo_outcome, n_folds=folds, n_repeats=repeats, random_state=seed,
        propensity_model=propensity_model,
    )
    if as_json:
        _print_json(found.to_dict())
        return
    _show_impact(found.to_dict())


@impact_app.command("run")
def impact_run(
    product: Optional[str] = typer.Option(None, "--product", metavar="ID", help="One gateway product_id (default: every gateway product)."),
    horizon: Optional[str] = typer.Option(
        None, "--horizon", metavar="DAYS,...", help="Comma-separated horizons in days (default: [impact] horizons_days)."
    ),
    db: Optional[str] = _db_option(),
    as_json: bool = _json_option(),
) -> None:
    """Estimate every gateway product's downstream impact on the warehouse and write the impact marts.

    Per product and horizon: the incremental downstream margin per buyer (ATT, cross-fitted AIPW,
    standard errors clustered by customer) beside the naive figures, and the unit economics (net
    value per unit with its interval and a verdict: value creator, value destroyer or
    inconclusive). Writes mart_impact__estimates, mart_impact__event_study and mart_impact__portfolio.

    Example: spillover impact run --product G002 --horizon 90,180 --json
    """
    from spillover.errors import SpilloverInputError
    from spillover.impact.run import run_impact, write_impact

    try:
        horizons = None if horizon is None else [int(h) for h in horizon.split(",") if h.strip()]
    except ValueError:
        raise SpilloverInputError(f"--horizon must be comma-separated whole days, e.g. 90,180,365; got {horizon!r}") from None
    config = _config()
    con = _connect(db, config)
    with _progress(not as_json) as progress:
        run = run_impact(con, config, product_ids=[product] if product else None, horizons=horizons, progress=progress)
        write_impact(con, run)
    if as_json:
        from spillover.impact.diagnostics import as_plain

        _print_json({"estimates": run.rows(), "portfolio": as_plain(run.portfolio.to_dict(orient="records"))})
        return
    _show_portfolio(run.estimates.to_dict(orient="records"), title="mart_impact__estimates")


@impact_app.command("report")
def impact_report(
    output: Path = typer.Option(Path("impact_report.html"), "--output", "-o", metavar="FILE", help="Where to write the HTML file."),
    db: Optional[str] = _db_option(),
    as_json: bool = _json_option(),
) -> None:
    """Write the downstream-impact report of the latest `impact run` as one self-contained HTML file.

    Per gateway product: naive figures beside the incremental effect with its interval, the event
    study with its pre-adoption placebo months, unit economics, what owners do with the device, and
    the diagnostics behind the verdict. Opens offline (the charts' JavaScript is embedded).

    Example: spillover impact run && spillover impact report -o impact.html
    """
    from spillover.report.impact_report import write_impact_report

    config = _config()
    con = _connect(db, config, read_only=True)
    written = write_impact_report(con, config, output)
    if as_json:
        _print_json({"report": str(written), "bytes": written.stat().st_size})
        return
    _console().print(f"wrote {written} ({written.stat().st_size / 2**20:.1f} MiB)")


def _show_portfolio(rows: list[dict[str, Any]], *, title: str) -> None:
    """Naive figures beside the incremental ATT and the unit economics, one line per row."""
    from rich.table import Table

    def money(value: Any) -> str:
        return "n/a" if value is None or value != value else f"{value:,.2f}"

    table = Table("product", "days", "naive: all post-purchase", "naive: owner gap", "incremental ATT (95% CI)",
                  "net value per unit (CI)", "verdict", title=title)
    for row in rows:
        table.add_row(
            f"{row['product_id']} {row.get('product_name') or ''}".strip(), str(row["horizon_days"]),
            money(row.get("naive_post_purchase_margin")), money(row.get("naive_owner_gap")),
            f"{money(row.get('estimate'))} ({money(row.get('ci_low'))} to {money(row.get('ci_high'))})",
            f"{money(row.get('net_value_per_unit'))} ({money(row.get('net_value_ci_low'))} to {money(row.get('net_value_ci_high'))})",
            str(row.get("verdict")),
        )
    _console().print(table)


# --------------------------------------------------------------------------------------------------
# synthetic data


@app.command()
def synth(
    out_dir: Path = typer.Argument(..., metavar="OUT_DIR", help="Folder to write ga4/, crm/, shop/ and truth/ into."),
    customers: int = typer.Option(20_000, "--customers", min=1, metavar="N", help="Number of people."),
    days: int = typer.Option(365, "--days", min=1, metavar="N", help="Number of days of activity."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Random seed; the same seed writes the same files."),
    start: Optional[str] = typer.Option(None, "--start", metavar="DATE", help="First day, YYYY-MM-DD (default 2024-01-01)."),
    ga4_days: Optional[int] = typer.Option(
        None, "--ga4-days", min=0, metavar="N",
        help="Write the GA4 export of the first N days only (0: none); CRM, shop and truth files are unchanged.",
    ),
    as_json: bool = _json_option(),
) -> None:
    """Write a synthetic retail ecosystem with known ground truth (GA4, CRM, shop, truth/).

    Example: spillover synth demo-data --customers 5000 --days 180 --seed 7

    Example (a large orders-first dataset): spillover synth big --customers 1000000 --days 500 --ga4-days 7
    """
    from spillover.synth import generate

    with _progress(not as_json) as progress:
        summary = generate(out_dir, customers=customers, days=days, seed=seed, start=start, ga4_days=ga4_days,
                           progress=progress)
    if as_json:
        _print_json(summary)
        return
    console = _console()
    for key, value in summary.items():
        console.print(f"{key}: {value:,}" if isinstance(value, int) else f"{key}: {value}")


@app.command()
def demo(
    directory: Path = typer.Option(Path("spillover-demo"), "--dir", metavar="DIR", help="Folder for the demo project, its data and warehouse."),
    customers: int = typer.Option(20_000, "--customers", min=100, metavar="N", help="Number of synthetic people."),
    days: int = typer.Option(365, "--days", min=30, metavar="N", help="Days of activity."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Random seed."),
    db: Optional[str] = typer.Option(None, "--db", metavar="URL", help="Warehouse URL (default: DuckDB in the demo folder)."),
    as_json: bool = _json_option(),
) -> None:
    """Run the whole pipeline on a synthetic ecosystem and print a summary.

    Synthesises customers (with known ground truth), loads them, builds every stage and prints the
    tables and figures. Explore afterwards with `spillover sql` inside the demo folder.

    Example: spillover demo --customers 5000 --days 180 --dir /tmp/demo
    """
    from spillover.demo import run_demo

    with _progress(not as_json) as progress:
        summary = run_demo(directory, customers=customers, days=days, seed=seed, db=db, progress=progress)
    if as_json:
        _print_json(summary)
        return
    from rich.table import Table

    console = _console()
    loads = Table("source", "read", "loaded", "quarantined", "duplicates", title="loads")
    for load in summary["loads"]:
        loads.add_row(load["source"], *(f"{load[k]:,}" for k in ("rows_read", "rows_loaded", "rows_quarantined", "duplicates_dropped")))
    console.print(loads)
    tables_view = Table("table", "rows", title="warehouse tables")
    for name, rows in summary["tables"].items():
        tables_view.add_row(name, f"{rows:,}")
    console.print(tables_view)
    identity = summary["identity"]
    if identity:
        console.print(
            f"identity: {identity['customers']:,} customers resolved from {identity['people']:,} synthetic people; "
            f"pairwise precision {identity['precision']:.3f}, recall {identity['recall']:.3f} against the truth "
            "(browsers that never logged in or bought leave no link and stay customers of their own)"
        )
    profiles = summary["profiles"]
    if profiles:
        adoptions = profiles["adoptions"]
        console.print(
            f"profiles: {profiles['profiles']:,} customer profiles as of {profiles['as_of'][:10]}; "
            f"{adoptions['matched']:,} of {adoptions['true_adopters']:,} true device adoptions found with the right "
            f"product and date (precision {adoptions['precision']:.3f})"
        )
    _show_predictions(summary.get("predictions") or {})
    impact = summary.get("impact") or {}
    if impact.get("portfolio"):
        _show_portfolio(impact["portfolio"], title="downstream impact (mart_impact__portfolio)")
        for row in impact["portfolio"]:
            if row.get("note"):
                _console().print(row["note"])
    scores = impact.get("truth") or []
    if scores:
        covered = sum(score["covers"] for score in scores)
        console.print(
            f"impact: {covered} of {len(scores)} 95% intervals cover the true effect on the same buyers ("
            + "; ".join(f"{s['product_id']} {s['horizon_days']}d {s['estimate']:.2f} vs {s['true_att']:.2f}" for s in scores)
            + ")"
        )
    if impact.get("report"):
        console.print(f"impact report: {impact['report']}")
    seconds = summary["seconds"]
    console.print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))
    console.print(f"next: cd {summary['directory']} && spillover sql \"select * from stg_ga4__events limit 5\"")


def _show_predictions(predictions: dict[str, Any]) -> None:
    if not predictions:
        return
    console = _console()
    for name, model in predictions["models"].items():
        if model["status"] != "trained":
            console.print(f"predictions: {name} refused: {model['message']}")
        elif name == "clv":
            console.print(
                f"predictions: clv holdout ({model['holdout_days']} days, {model['customers']:,} customers): "
                f"{model['actual_purchases']:,.0f} repeat purchases, {model['predicted_purchases']:,.0f} predicted"
            )
        elif name == "predicted_revenue":
            console.print(
                f"predictions: {name} out of time: {model['customers']:,} customers, buyers ROC-AUC "
                f"{_metric(model['buyer_roc_auc'])}, rank correlation {_metric(model['spearman'])}, top-decile lift "
                f"{_metric(model['top_decile_lift'], 2)}, predicted/actual total {_metric(model['total_ratio'], 2)}"
            )
        else:
            console.print(
                f"predictions: {name} out of time: {model['customers']:,} customers, ROC-AUC {_metric(model['roc_auc'])}, "
                f"PR-AUC {_metric(model['pr_auc'])}, top-decile lift {_metric(model['top_decile_lift'], 2)}, "
                f"Brier {_metric(model['brier'])}"
            )
    if predictions["top_customers"]:
        from rich.table import Table

        names = [n for n in ("clv", "p_alive", "purchase_probability", "churn_probability", "predicted_revenue")
                 if any(n in row for row in predictions["top_customers"])]
        table = Table("customer_key", *names, title="top customers by predicted lifetime value (12-month margin)")
        for row in predictions["top_customers"]:
            table.add_row(row["customer_key"][:12], *(_metric(row.get(n), 2) for n in names))
        console.print(table)


# --------------------------------------------------------------------------------------------------
# entry point


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turning SpilloverError into a clean exit."""
    from spillover.errors import SpilloverError

    try:
        app(args=argv, standalone_mode=True)
    except SpilloverError as exc:
        if _state["debug"] or os.environ.get("SPILLOVER_DEBUG"):
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
