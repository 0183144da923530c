"""Benchmark: ``spillover synth`` against the floor of writing its GA4 lines, in one run.

Times, each in a fresh subprocess so that peak RSS is its own:
  (a) synth — ``generate()`` end to end (simulation, GA4 NDJSON, CSVs, truth);
  (b) floor — writing the same GA4 bytes, already serialised: each day's file is read into memory
      (untimed) and written again in place, so the page cache fills up as it did for (a).
Prints events/s, MB/s, peak RSS and the ratio, then the true ATTs of the dataset.
Usage: python benchmarks/synth.py [--customers 20000] [--days 365] [--seed 0] [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYNTH = """
import json, resource, sys, time
from spillover.synth import generate
out, customers, days, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
clock = time.perf_counter()
summary = generate(out, customers=customers, days=days, seed=seed)
seconds = time.perf_counter() - clock
print(json.dumps({"seconds": seconds, "summary": summary,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOOR = """
import json, os, resource, sys, time
from pathlib import Path
source = Path(sys.argv[1])
seconds, size = 0.0, 0
for path in sorted(source.glob("events_*.json")):
    data = path.read_bytes()
    clock = time.perf_counter()
    with path.open("wb") as handle:
        handle.write(data)
    seconds += time.perf_counter() - clock
    size += len(data)
print(json.dumps({"seconds": seconds, "bytes": size,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(code: str, *args: object) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated dataset")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="spillover-synth-bench-"))
    try:
        os.sync()
        synth = _run(SYNTH, out / "data", args.customers, args.days, args.seed)
        os.sync()
        floor = _run(FLOOR, out / "data" / "ga4")
        summary = synth["summary"]
        events = summary["ga4_events"]
        ga4_bytes = floor["bytes"]
        impact = json.loads((out / "data" / "truth" / "impact.json").read_text())
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)

    print(f"spillover synth benchmark — {args.customers:,} customers × {args.days} days, seed {args.seed}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"GA4 events written: {events:,} ({ga4_bytes / 1e9:.2f} GB, {ga4_bytes / max(events, 1):,.0f} B/event); "
          f"orders: {summary['orders']:,}; order lines: {summary['order_items']:,}")
    print()
    header = f"{'':34}{'seconds':>10}{'events/s':>12}{'MB/s':>9}{'peak RSS MB':>13}"
    print(header)
    print("-" * len(header))
    for label, run in (("synth (everything)", synth), ("floor (write pre-serialised GA4)", floor)):
        rate = events / run["seconds"]
        print(f"{label:34}{run['seconds']:>10.1f}{rate:>12,.0f}{ga4_bytes / run['seconds'] / 1e6:>9.0f}"
              f"{run['peak_rss_mb']:>13,.0f}")
    print(f"\nsynth takes {synth['seconds'] / floor['seconds']:.2f}× the floor's time "
          f"(floor/synth throughput ratio {floor['seconds'] / synth['seconds']:.2f})")
    print("\ntrue ATT on downstream margin (USD per adopter; se), and hardware margin per unit:")
    for key, device in impact["devices"].items():
        att = "  ".join(f"{h} d: {device['att'][h]['att']:8.2f} ({device['att'][h]['se']:.2f})" for h in ("90", "180", "365"))
        print(f"  {key:8} adopters {device['adopters']:>7,}  {att}  hardware {device['hardware_margin_per_unit']:7.2f}")
    started = time.strftime("%Y-%m-%d %H:%M")
    print(f"\n(run at {started}; shared machines are noisy: compare the ratio, not the seconds)")


if __name__ == "__main__":
    main()
