"""Benchmark: ``spillover synth`` against the floor of writing its GA4 lines, in one run.

Times, each in a fresh subprocess so that peak RSS is its own:
  (a) synth — ``generate()`` end to end (simulation, GA4 NDJSON, CSVs, truth);
  (b) floor — writing the same GA4 bytes, already serialised: each day's file is read into memory
      (untimed) and written to a new file, which then replaces it (untimed), so the disk and the page
      cache work as they did for (a).
Prints events/s, MB/s, CPU time per event (all threads, user + system: less sensitive than wall time
to other work on a shared machine), peak RSS and the ratios, then the true ATTs of the dataset.
Usage: python benchmarks/synth.py [--customers 20000] [--days 365] [--seed 0] [--start DATE] [--out DIR] [--keep]
Memory at scale: a few peak-season days of a large population, e.g.
  python benchmarks/synth.py --customers 1000000 --days 5 --start 2024-11-28
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
out, customers, days, seed, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
clock = time.perf_counter()
summary = generate(out, customers=customers, days=days, seed=seed, start=start)
seconds = time.perf_counter() - clock
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "summary": summary,
                  "peak_rss_mb": usage.ru_maxrss / 1024}))
"""

FLOOR = """
import json, os, resource, sys, time
from pathlib import Path
source = Path(sys.argv[1])
seconds, cpu, size = 0.0, 0.0, 0
for path in sorted(source.glob("events_*.json")):
    data = path.read_bytes()
    copy = path.with_suffix(".copy")
    clock, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    with copy.open("wb") as handle:
        handle.write(data)
    after = resource.getrusage(resource.RUSAGE_SELF)
    seconds += time.perf_counter() - clock
    cpu += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    size += len(data)
    copy.replace(path)
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "bytes": size,
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
    parser.add_argument("--start", default="2024-01-01", help="first day, YYYY-MM-DD")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated dataset")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="spillover-synth-bench-"))
    try:
        os.sync()
        synth = _run(SYNTH, out / "data", args.customers, args.days, args.seed, args.start)
        os.sync()
        floor = _run(FLOOR, out / "data" / "ga4")
        summary = synth["summary"]
        events = summary["ga4_events"]
        ga4_bytes = floor["bytes"]
        impact = json.loads((out / "data" / "truth" / "impact.json").read_text())
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)

    print(f"spillover synth benchmark — {args.customers:,} customers × {args.days} days from {args.start}, "
          f"seed {args.seed}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"GA4 events written: {events:,} ({ga4_bytes / 1e9:.2f} GB, {ga4_bytes / max(events, 1):,.0f} B/event); "
          f"orders: {summary['orders']:,}; order lines: {summary['order_items']:,}")
    print()
    header = (f"{'':34}{'seconds':>9}{'events/s':>11}{'MB/s':>7}{'CPU s':>8}{'CPU µs/event':>13}"
              f"{'peak RSS MB':>13}")
    print(header)
    print("-" * len(header))
    for label, run in (("synth (everything)", synth), ("floor (write pre-serialised GA4)", floor)):
        rate = events / run["seconds"]
        print(f"{label:34}{run['seconds']:>9.1f}{rate:>11,.0f}{ga4_bytes / run['seconds'] / 1e6:>7.0f}"
              f"{run['cpu_seconds']:>8.1f}{run['cpu_seconds'] / max(events, 1) * 1e6:>13.2f}{run['peak_rss_mb']:>13,.0f}")
    print(f"\nsynth / floor: {synth['seconds'] / floor['seconds']:.2f}× the wall time, "
          f"{synth['cpu_seconds'] / max(floor['cpu_seconds'], 1e-9):.2f}× the CPU time; "
          f"{events / synth['cpu_seconds']:,.0f} events per CPU-second "
          f"({2 * events / synth['cpu_seconds']:,.0f}/s if two idle cores were fully used)")
    print("\ntrue ATT on downstream margin (USD per adopter; se), and hardware margin per unit:")
    for key, device in impact["devices"].items():
        att = "  ".join(f"{h} d: {device['att'][h]['att']:8.2f} ({device['att'][h]['se']:.2f})" for h in ("90", "180", "365"))
        print(f"  {key:8} adopters {device['adopters']:>7,}  {att}  hardware {device['hardware_margin_per_unit']:7.2f}")
    started = time.strftime("%Y-%m-%d %H:%M")
    print(f"\n(run at {started}; shared machines are noisy: compare the ratio, not the seconds)")


if __name__ == "__main__":
    main()
