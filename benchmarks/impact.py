"""Benchmark: the impact stage on a large synthetic warehouse (default 1M customers, three gateway
devices), and the cross-fitted ATT beside DoubleML on one of its designs.

1. Builds the warehouse once (kept in --dir and reused): `spillover synth` with the GA4 export of the
   first --ga4-days days only (the impact design reads orders; a full year of GA4 export for a
   million customers would be hundreds of gigabytes), ingest, and the stages the impact stage reads
   (stage, identity, profiles). Their times are printed, not benchmarked.
2. Times `spillover impact run --horizon 90,180,365 --json` in a fresh process: wall and CPU seconds
   and peak RSS (the process and its DuckDB), and scores every estimate against the truth (the true
   effect on the same buyers).
3. Exports one design (--product, --horizon; controls sampled as the stage samples them) as a flat
   table and fits spillover's DownstreamImpact and DoubleML's DoubleMLIRM(score="ATTE") on it, each
   in its own process, with the impact stage's nuisance learners (LogisticPropensity, early-stopped
   HistGradientBoosting), 5 folds, one split, no weights: time ratio and the two estimates.
   spillover runs as the impact stage runs it (folds in parallel processes, one per core, `n_jobs=-1`);
   DoubleML with its defaults (folds one after another, the learners' own threads on every core),
   and again with its learners limited to one thread (on small fits OpenMP's synchronisation can
   cost more than it saves; this row keeps that from flattering spillover). CPU seconds include
   spillover's worker processes; peak RSS is the largest single process.

Targets (issue: downstream impact): the whole impact run under 10 minutes on 2 cores, and the ATT
>= 2x faster than DoubleML at equal estimates.
Usage: python benchmarks/impact.py [--customers 1000000] [--days 548] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from impact_estimator import DOUBLEML, SPILLOVER, _run  # noqa: E402

HORIZONS = "90,180,365"
SETUP_DONE = "benchmark-setup.json"
#: Orders and order lines are loaded in files of at most this many rows (see synthesise_and_load).
FILE_ROWS = 1_000_000


def build_warehouse(directory: Path, *, customers: int, days: int, ga4_days: int, seed: int) -> dict:
    """Synthesise, load and build the stages the impact stage reads; reuse an earlier build."""
    marker = directory / SETUP_DONE
    if marker.exists():
        setup = json.loads(marker.read_text())
        wanted = {"customers": customers, "days": days, "ga4_days": ga4_days, "seed": seed}
        if {k: setup.get(k) for k in wanted} == wanted:
            return setup | {"reused": True}
        raise SystemExit(f"{directory} holds a different warehouse ({setup}); pick another --dir")
    from spillover.demo import synthesise_and_load
    from spillover.pipeline import run_pipeline
    from spillover.progress import NullProgress

    print(f"building the warehouse in {directory} (once; later runs reuse it)…", file=sys.stderr, flush=True)
    project = synthesise_and_load(directory, customers=customers, days=days, seed=seed, ga4_days=ga4_days,
                                  max_file_rows=FILE_ROWS)
    seconds = dict(project.seconds)
    clock = time.perf_counter()
    run_pipeline(project.con, project.config, stages=["stage", "identity", "profiles"], progress=NullProgress())
    seconds["stages"] = time.perf_counter() - clock
    project.con.disconnect()
    setup = {"customers": customers, "days": days, "ga4_days": ga4_days, "seed": seed, "seconds": seconds,
             "orders": project.summary["orders"], "order_items": project.summary["order_items"],
             "crm_members": project.summary["crm_members"], "ga4_events": project.summary["ga4_events"]}
    marker.write_text(json.dumps(setup, indent=2))
    return setup | {"reused": False}


def time_impact_run(directory: Path) -> dict:
    """`spillover impact run` in a fresh process: wall, CPU and peak RSS, and its JSON."""
    command = [sys.executable, "-m", "spillover.cli", "impact", "run", "--horizon", HORIZONS, "--json"]
    clock = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, cwd=directory, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - clock
        out.seek(0)
        err.seek(0)
        if status != 0:
            raise SystemExit(f"impact run failed ({status}):\n{err.read().decode()[-4000:]}")
        document = json.loads(out.read())
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "estimates": document["estimates"]}


def score(directory: Path, estimates: list[dict]) -> list[dict]:
    """Each estimate against the true effect on the same buyers."""
    import pandas as pd

    from spillover.config import load_config, project_key
    from spillover.engine import connect
    from spillover.synth.scoring import impact_scores

    config = load_config(directory)
    con = connect(f"duckdb:///{directory / 'spillover.duckdb'}", read_only=True)
    try:
        return impact_scores(con, config, directory / "data" / "truth", project_key(config), pd.DataFrame(estimates))
    finally:
        con.disconnect()


def flat_design(directory: Path, product: str, horizon: int, path: Path) -> dict:
    """One design of the warehouse, controls sampled as the impact stage samples them, saved as
    ``x, d, y`` for the estimator comparison."""
    import numpy as np

    from spillover.config import load_config
    from spillover.engine import connect, to_float_pandas
    from spillover.impact.cohorts import CohortSpec, cohort, frame_of, index_rows, sample_controls
    from spillover.impact.facts import load_facts
    from spillover.impact.run import MAX_CONTROL_ROWS

    config = load_config(directory)
    con = connect(f"duckdb:///{directory / 'spillover.duckdb'}", read_only=True)
    try:
        facts = load_facts(con, config.ga4.property_timezone)
        spec = CohortSpec.from_settings(config.impact, product, horizon)
        index = sample_controls(index_rows(facts, spec), MAX_CONTROL_ROWS, seed=0)
        design = frame_of(to_float_pandas(cohort(facts, spec, event_families=config.profiles.event_families, index=index)))
    finally:
        con.disconnect()
    np.savez(path, x=design.X.to_numpy(dtype=float), d=design.treatment, y=design.outcome)
    return {"rows": len(design.treatment), "treated": int(design.treatment.sum()), "covariates": design.X.shape[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=548, help="days of data (over 365 so the 365-day horizon has buyers)")
    parser.add_argument("--ga4-days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="warehouse folder (default: a folder under the temp dir)")
    parser.add_argument("--product", default="G002", help="design of the estimator comparison")
    parser.add_argument("--horizon", type=int, default=180, help="design of the estimator comparison")
    parser.add_argument("--skip-run", action="store_true", help="only the estimator comparison")
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON document")
    args = parser.parse_args()

    directory = args.dir or Path(tempfile.gettempdir()) / f"spillover-impact-bench-{args.customers}x{args.days}-s{args.seed}"
    directory.mkdir(parents=True, exist_ok=True)
    setup = build_warehouse(directory, customers=args.customers, days=args.days, ga4_days=args.ga4_days, seed=args.seed)
    report: dict = {"setup": setup}
    if not args.skip_run:
        print("timing spillover impact run…", file=sys.stderr, flush=True)
        run = time_impact_run(directory)
        report["impact_run"] = {k: v for k, v in run.items() if k != "estimates"}
        report["scores"] = score(directory, run["estimates"])
    print("exporting the flat design and fitting both estimators…", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="spillover-impact-bench-") as folder:
        path = Path(folder) / "design.npz"
        report["flat_table"] = flat_design(directory, args.product, args.horizon, path) | {
            "product_id": args.product, "horizon_days": args.horizon}
        report["estimators"] = {
            "spillover DownstreamImpact": _run(SPILLOVER, path, "logistic", -1),
            "DoubleML DoubleMLIRM(ATTE)": _run(DOUBLEML, path, "logistic"),
            "DoubleML, learners 1 thread": _run(DOUBLEML, path, "logistic", 1),
        }
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    report["run_at"] = time.strftime("%Y-%m-%d %H:%M")
    report["benchmark_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps(report, default=str))
        return
    _print(report, args)


def _print(report: dict, args: argparse.Namespace) -> None:
    setup = report["setup"]
    print(f"impact benchmark — {setup['customers']:,} customers × {setup['days']} days (seed {setup['seed']}), "
          f"{setup['orders']:,} orders, {setup['order_items']:,} order lines, GA4 export of the first "
          f"{setup['ga4_days']} days ({setup['ga4_events']:,} events)")
    print(f"machine: {report['machine']}; run at {report['run_at']}")
    built = ", ".join(f"{k} {v:,.0f} s" for k, v in setup["seconds"].items())
    print(f"warehouse {'reused' if setup['reused'] else 'built'} ({built})\n")
    if "impact_run" in report:
        run = report["impact_run"]
        print(f"spillover impact run --horizon {HORIZONS}: {run['seconds']:,.0f} s wall ({run['seconds'] / 60:.1f} min), "
              f"{run['cpu_seconds']:,.0f} s CPU, peak RSS {run['peak_rss_mb'] / 1024:.2f} GB; target < 10 min")
        scores = report["scores"]
        print(f"{sum(s['covers'] for s in scores)} of {len(scores)} 95% intervals cover the true effect on the same buyers:")
        for s in scores:
            print(f"  {s['product_id']} {s['horizon_days']:>3}d  ATT {s['estimate']:8.2f} [{s['ci_low']:8.2f}, {s['ci_high']:8.2f}]"
                  f"  truth {s['true_att']:8.2f}  naive {s['true_att'] + s['naive_error']:8.2f}  {s['verdict']}")
        print()
    flat = report["flat_table"]
    print(f"flat table: {flat['product_id']} at {flat['horizon_days']} days, {flat['rows']:,} rows "
          f"({flat['treated']:,} buyers) × {flat['covariates']} covariates; 5 folds, LogisticPropensity + "
          "HistGradientBoosting outcome for both")
    header = f"{'':30}{'seconds':>9}{'CPU s':>8}{'peak RSS MB':>13}{'ATT':>10}{'se':>8}{'DoubleML/spillover':>20}"
    print(header)
    print("-" * len(header))
    runs = report["estimators"]
    ours = runs["spillover DownstreamImpact"]
    for label, run in runs.items():
        ratio = "" if run is ours else f"{run['seconds'] / ours['seconds']:.2f}× wall"
        print(f"{label:30}{run['seconds']:>9.1f}{run['cpu_seconds']:>8.1f}{run['peak_rss_mb']:>13,.0f}"
              f"{run['estimate']:>10.4f}{run['se']:>8.4f}{ratio:>20}")
    gaps = [abs(run["estimate"] - ours["estimate"]) / ours["se"] for run in runs.values() if run is not ours]
    print(f"\nThe estimates differ by at most {max(gaps):.2f} standard errors; target >= 2× DoubleML's speed "
          "at equal estimates")


if __name__ == "__main__":
    main()
