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
    )
    if as_json:
        _print_json(found.to_dict())
        return
    _show_impact(found.to_dict())


# --------------------------------------------------------------------------------------------------
# synthetic data


@app.command()
def synth(
    out_dir: Path = typer.Argument(..., metavar="OUT_DIR", help="Folder to write ga4/, crm/, shop/ and truth/ into."),
    customers: int = typer.Option(20_000, "--customers", min=1, metavar="N", help="Number of people."),
    days: int = typer.Option(365, "--days", min=1, metavar="N", help="Number of days of activity."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Random seed; the same seed writes the same files."),
    start: Optional[str] = typer.Option(None, "--start", metavar="DATE", help="First day, YYYY-MM-DD (default 2024-01-01)."),
    as_json: bool = _json_option(),
) -> None:
    """Write a synthetic retail ecosystem with known ground truth (GA4, CRM, shop, truth/).

    Example: spillover synth demo-data --customers 5000 --days 180 --seed 7
    """
    from spillover.synth import generate

    with _progress(not as_json) as progress:
        summary = generate(out_dir, customers=customers, days=days, seed=seed, start=start, progress=progress)
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
            "(exact links only: never-logged-in browsers and people registered twice stay apart)"
        )
    profiles = summary["profiles"]
    if profiles:
        adoptions = profiles["adoptions"]
        console.print(
            f"profiles: {profiles['profiles']:,} customer profiles as of {profiles['as_of'][:10]}; "
            f"{adoptions['matched']:,} of {adoptions['true_adopters']:,} true device adoptions found with the right "
            f"product and date (precision {adoptions['precision']:.3f})"
        )
    seconds = summary["seconds"]
    console.print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))
    console.print(f"next: cd {summary['directory']} && spillover sql \"select * from stg_ga4__events limit 5\"")


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
