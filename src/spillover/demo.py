"""The demo: synthesise an ecosystem, load it, build every stage, and summarise what came out.

``spillover demo`` is the first thing a newcomer runs; it uses only public library functions, in the
same order a real project would (init → ingest → build), on the embedded DuckDB by default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from spillover.config import CONFIG_FILE, init_project, load_config
from spillover.engine import connect
from spillover.progress import NullProgress, Progress
from spillover.query import table_counts

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config
    from spillover.ingest.quarantine import LoadResult

#: Tabular sources in load order: order lines are checked against products and orders.
TABULAR_SOURCES = (
    ("products", "shop/products.csv"),
    ("crm", "crm/members.csv"),
    ("orders", "shop/orders.csv"),
    ("order_items", "shop/order_items.csv"),
)


@dataclass
class SyntheticProject:
    """A synthetic ecosystem generated and loaded into a fresh project's warehouse."""

    directory: Path
    data_dir: Path
    con: BaseBackend
    config: Config
    url: str
    summary: dict[str, object]
    loads: list[LoadResult]
    seconds: dict[str, float] = field(default_factory=dict)


def synthesise_and_load(
    directory: Path | str,
    *,
    customers: int,
    days: int,
    seed: int = 0,
    db: str | None = None,
    ga4_days: int | None = None,
    max_file_rows: int | None = None,
    progress: Progress | None = None,
) -> SyntheticProject:
    """Generate the synthetic ecosystem under ``directory/data``, write the project's spillover.toml
    (with the business's serving costs) and load every source. ``ga4_days``: write and load only the
    first that many days of GA4 export (the impact design reads orders; tests, studies and
    benchmarks save minutes). ``max_file_rows``: load orders and order lines in files of at most
    that many rows, cut between orders (a tabular load checks one file's rows in memory, about 3 KB
    a row; a million customers' order lines would not fit at once)."""
    from spillover.ingest.ga4 import ingest_ga4
    from spillover.ingest.tabular import ingest_source
    from spillover.synth import generate

    progress = progress or NullProgress()
    directory = Path(directory)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    data_dir = directory / "data"
    summary = generate(data_dir, customers=customers, days=days, seed=seed, ga4_days=ga4_days, progress=progress)
    if init_project(directory, db=db, timezone=str(summary["property_timezone"]))["config_written"]:
        write_business_costs(directory / CONFIG_FILE)
    config = load_config(directory)
    seconds["synth"] = time.perf_counter() - clock

    clock = time.perf_counter()
    url = db or config.db
    if url.startswith("duckdb:///") and not url.startswith("duckdb:////"):
        # A relative DuckDB path in spillover.toml is relative to the project folder.
        url = f"duckdb:///{(directory / url.removeprefix('duckdb:///')).resolve()}"
    con = connect(url)
    loads: list[LoadResult] = [ingest_ga4(con, [data_dir / "ga4"], config=config, progress=progress)]
    for source, relative in TABULAR_SOURCES:
        paths = [data_dir / relative]
        if max_file_rows is not None and source in ("orders", "order_items"):
            paths = split_csv_by_first_column(data_dir / relative, max_file_rows)
        for path in paths:
            loads.append(ingest_source(con, source, path, config=config, progress=progress))
    seconds["ingest"] = time.perf_counter() - clock
    return SyntheticProject(directory, data_dir, con, config, url, summary, loads, seconds)


def run_demo(
    directory: Path | str,
    *,
    customers: int = 20_000,
    days: int = 365,
    seed: int = 0,
    db: str | None = None,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Run the whole demo in ``directory``; return the summary the CLI prints."""
    from spillover.pipeline import run_pipeline

    progress = progress or NullProgress()
    project = synthesise_and_load(directory, customers=customers, days=days, seed=seed, db=db, progress=progress)
    directory, data_dir, con, config = project.directory, project.data_dir, project.con, project.config
    timings = project.seconds

    clock = time.perf_counter()
    runs = run_pipeline(con, config, progress=progress)
    timings["build"] = time.perf_counter() - clock

    identity: dict[str, object] = {}
    profiles: dict[str, object] = {}
    stages_run = [run["stage"] for run in runs]
    if "identity" in stages_run:
        from spillover.config import project_key
        from spillover.synth.scoring import identity_scores

        identity = identity_scores(con, data_dir / "truth", project_key(config))
    if "profiles" in stages_run:
        from spillover.config import project_key
        from spillover.profiles.build import PROFILES, as_of_instant
        from spillover.synth.scoring import adoption_scores

        profiles = {
            "profiles": int(con.table(PROFILES).count().execute()),
            "as_of": as_of_instant(con).isoformat(),
            "adoptions": adoption_scores(con, data_dir / "truth", project_key(config)),
        }

    predictions: dict[str, object] = {}
    if "predict" in stages_run:
        from spillover.predict.summary import prediction_summary

        predictions = prediction_summary(con)

    impact: dict[str, object] = {}
    if "impact" in stages_run:
        from spillover.impact.diagnostics import as_plain
        from spillover.impact.run import PORTFOLIO

        from spillover.report.impact_report import write_impact_report

        from spillover.config import project_key
        from spillover.impact.run import ESTIMATES
        from spillover.synth.scoring import impact_scores

        scores = impact_scores(con, config, data_dir / "truth", project_key(config), con.table(ESTIMATES).to_pandas())
        impact = {
            "portfolio": as_plain(con.table(PORTFOLIO).to_pandas().to_dict(orient="records")),
            "truth": as_plain(scores),
            "report": str(write_impact_report(con, config, directory / "impact_report.html")),
        }

    return {
        "directory": str(directory),
        "db": project.url,
        "synthetic": project.summary,
        "loads": [
            {k: load.to_dict()[k] for k in ("source", "rows_read", "rows_loaded", "rows_quarantined", "duplicates_dropped")}
            for load in project.loads
        ],
        "stages": [run["stage"] for run in runs],
        "identity": identity,
        "profiles": profiles,
        "predictions": predictions,
        "impact": impact,
        "tables": table_counts(con),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }


def split_csv_by_first_column(path: Path, max_rows: int) -> list[Path]:
    """``path`` (a CSV without line breaks inside values, as synth writes) cut into
    ``<stem>.parts/<stem>-NNN.csv`` files of at most ``max_rows`` rows (more only
    when one value of the first column has more rows), each with the header, cut only where the first
    column (the order) changes, so that no order's rows are split between files."""
    folder = path.with_suffix(".parts")
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    parts: list[Path] = []
    with path.open(encoding="utf-8", newline="") as source:
        header = source.readline()
        out = None
        rows, previous = 0, None
        for line in source:
            key = line.split(",", 1)[0]
            if out is None or (rows >= max_rows and key != previous):
                if out is not None:
                    out.close()
                parts.append(folder / f"{path.stem}-{len(parts):03d}.csv")
                out = parts[-1].open("w", encoding="utf-8", newline="")
                out.write(header)
                rows = 0
            out.write(line)
            rows += 1
            previous = key
        if out is not None:
            out.close()
    return parts or [path]


def write_business_costs(config_file: Path) -> None:
    """Append what the synthetic business knows about its own costs: serving a device's owner."""
    from spillover.synth.catalog import DEVICES

    costs = [f"{d.product_id} = {d.service_cost_per_month_cents / 100:.2f}" for d in DEVICES if d.service_cost_per_month_cents]
    if costs:
        with config_file.open("a", encoding="utf-8") as handle:
            handle.write(
                "\n# The synthetic business's cost of serving one device owner a month (voice requests)\n"
                "[impact.service_cost_per_month]\n" + "\n".join(costs) + "\n"
            )
