"""Coverage study of the impact stage on the synthetic ecosystem: for each of many seeds, synthesise
an ecosystem, load it, build, estimate every gateway product at 90 and 180 days, and score each 95%
interval against the true effect on the same adopters (spillover.synth.coverage). Prints, per
product and horizon and overall: intervals, coverage, mean true ATT, mean error of the estimate and
of the naive "all post-purchase margin", the first as a share of the second, and the mean width.

Targets (issue: downstream impact): coverage >= 85% and |mean error| < 10% of the naive error.
Usage: python benchmarks/impact_coverage.py [--seeds 20] [--customers 3000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time


def main() -> None:
    from spillover.synth.coverage import coverage_study, summarise

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--json", action="store_true", help="print the per-interval scores and summary as JSON")
    args = parser.parse_args()

    def report(seed: int, rows: list[dict]) -> None:
        covered = sum(row["covers"] for row in rows)
        print(f"seed {seed}: {covered} of {len(rows)} intervals cover; errors "
              + ", ".join(f"{r['product_id']} {r['horizon_days']}d {r['error']:+.2f}" for r in rows), file=sys.stderr, flush=True)

    clock = time.perf_counter()
    scores = coverage_study(range(args.first_seed, args.first_seed + args.seeds), customers=args.customers, on_seed=report)
    seconds = time.perf_counter() - clock
    summary = summarise(scores)
    if args.json:
        print(json.dumps({"scores": scores.to_dict(orient="records"), "summary": summary.to_dict(orient="records")}))
        return
    print(f"impact coverage study — {args.seeds} seeds ({args.first_seed}…), {args.customers:,} customers × 365 days, "
          f"GA4 first day only; {seconds / 60:.1f} min")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    print(f"\n(run at {time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
