"""Benchmark: GA4 export ingestion against the floor and a pandas baseline, in one run.

Generates N events in BigQuery-export NDJSON (INT64 as strings, as ``bq extract`` writes them), then
times, each in a fresh subprocess so that peak RSS is its own:
  (a) floor    — one raw DuckDB ``read_json`` + UNNEST of event_params into a table;
  (b) spillover — ``spillover ingest ga4`` end to end (validate, quarantine, dedupe, base + staging);
  (c) pandas   — ``json.loads`` per line + ``pandas.json_normalize`` of event_params (on at most
                 --pandas-events events, as it does not scale; its rate is per event all the same).
Prints events/s, CPU seconds, peak RSS and the ratios. With --repeat N the floor and spillover run
N times each (into a fresh warehouse) and the fastest run counts, which tames a shared machine.
Usage: python benchmarks/ingest_ga4.py [--events 2000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

EVENT_NAMES = ["page_view", "view_item", "session_start", "add_to_cart", "user_engagement", "scroll"]
PAGES = [f"https://shop.example.com/p/{i}" for i in range(500)]

TEMPLATE = (
    '{{"event_date":"{date}","event_timestamp":"{ts}","event_name":"{name}",'
    '"event_params":[{{"key":"ga_session_id","value":{{"string_value":null,"int_value":"{sid}","float_value":null,"double_value":null}}}},'
    '{{"key":"ga_session_number","value":{{"string_value":null,"int_value":"{snum}","float_value":null,"double_value":null}}}},'
    '{{"key":"page_location","value":{{"string_value":"{page}","int_value":null,"float_value":null,"double_value":null}}}},'
    '{{"key":"page_title","value":{{"string_value":"Product {pid}","int_value":null,"float_value":null,"double_value":null}}}},'
    '{{"key":"engagement_time_msec","value":{{"string_value":null,"int_value":"{eng}","float_value":null,"double_value":null}}}},'
    '{{"key":"session_engaged","value":{{"string_value":"1","int_value":null,"float_value":null,"double_value":null}}}}],'
    '"event_previous_timestamp":null,"event_value_in_usd":null,"event_bundle_sequence_id":"{bundle}",'
    '"event_server_timestamp_offset":null,"user_id":null,"user_pseudo_id":"{upid}",'
    '"privacy_info":{{"analytics_storage":"Yes","ads_storage":"Yes","uses_transient_token":"No"}},'
    '"user_properties":[],"user_first_touch_timestamp":"{ts}","user_ltv":null,'
    '"device":{{"category":"desktop","mobile_brand_name":null,"mobile_model_name":null,"mobile_marketing_name":null,'
    '"mobile_os_hardware_model":null,"operating_system":"Windows","operating_system_version":"Windows 10","vendor_id":null,'
    '"advertising_id":null,"language":"en-us","is_limited_ad_tracking":"No","time_zone_offset_seconds":null,'
    '"browser":null,"browser_version":null,"web_info":{{"browser":"Chrome","browser_version":"123.0","hostname":"shop.example.com"}}}},'
    '"geo":{{"continent":"Americas","sub_continent":"Northern America","country":"United States","region":"Ohio","city":"Columbus","metro":"(not set)"}},'
    '"app_info":null,"traffic_source":{{"name":"(direct)","medium":"(none)","source":"(direct)"}},'
    '"stream_id":"1966637064","platform":"WEB","event_dimensions":null,"ecommerce":null,"items":[]}}'
)


def generate(out_dir: Path, events: int, days: int, seed: int = 0) -> list[Path]:
    """Write ``events`` synthetic export rows over ``days`` daily files."""
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_day = events // days
    files = []
    base_day = 1_704_067_200  # 2024-01-01T00:00:00Z
    for day in range(days):
        count = per_day + (events - per_day * days if day == days - 1 else 0)
        date = time.strftime("%Y%m%d", time.gmtime(base_day + day * 86_400))
        path = out_dir / f"events_{date}.json"
        lines = []
        for i in range(count):
            ts = (base_day + day * 86_400) * 1_000_000 + rng.randrange(86_400_000_000)
            user = rng.randrange(max(1, events // 20))
            lines.append(
                TEMPLATE.format(
                    date=date, ts=ts, name=EVENT_NAMES[i % len(EVENT_NAMES)], sid=1_704_000_000 + user,
                    snum=1 + user % 7, page=PAGES[i % len(PAGES)], pid=i % 500, eng=rng.randrange(60_000),
                    bundle=rng.randrange(10**9), upid=f"{user}.{1_700_000_000 + user}",
                )
            )
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    return files


FLOOR = """
import duckdb, sys
con = duckdb.connect(sys.argv[2])
con.execute('''CREATE TABLE floor AS
  SELECT e.* EXCLUDE (event_params), p.unnest.key AS param_key, p.unnest.value AS param_value
  FROM read_json(?, format='newline_delimited') e, UNNEST(e.event_params) p''', [sys.argv[1] + '/*.json'])
print(con.execute('SELECT count(DISTINCT (event_timestamp, user_pseudo_id, event_name)) FROM floor').fetchone()[0])
"""

PANDAS = """
import json, sys, pandas as pd
from pathlib import Path
limit = int(sys.argv[2]); records = []
for path in sorted(Path(sys.argv[1]).glob('*.json')):
    with open(path) as handle:
        for line in handle:
            records.append(json.loads(line))
            if len(records) >= limit: break
    if len(records) >= limit: break
frame = pd.json_normalize(records, 'event_params', ['event_date', 'event_timestamp', 'event_name', 'user_pseudo_id'])
print(len(records))
"""


def timed(argv: list[str], cwd: Path, before: Callable[[], None] | None = None, repeat: int = 1) -> tuple[float, float, float, str]:
    """Run one contender in a fresh subprocess ``repeat`` times (``before`` each time).

    Returns the fastest run's (seconds, CPU seconds) and stdout, and the largest peak RSS in MiB.
    """
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "sys.stderr.write(p.stderr); sys.stdout.write(p.stdout)\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(f'__BENCH__ {dt} {u.ru_utime + u.ru_stime} {u.ru_maxrss}')\n"
        "sys.exit(p.returncode)\n"
    )
    runs = []
    for _ in range(repeat):
        if before is not None:
            before()
        proc = subprocess.run([sys.executable, "-c", wrapper, *argv], cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:4])} failed:\n{proc.stderr[-3000:]}")
        lines = proc.stdout.strip().splitlines()
        _, seconds, cpu, rss_kib = lines[-1].split()
        runs.append((float(seconds), float(cpu), int(rss_kib) / 1024, "\n".join(lines[:-1])))
    seconds, cpu, _, out = min(runs)
    return seconds, cpu, max(run[2] for run in runs), out


def _remove_database(path: Path) -> Callable[[], None]:
    def remove() -> None:
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)

    return remove


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--pandas-events", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the floor and spillover this many times each and keep the fastest "
                             "(a shared machine's noise; peak RSS is the largest)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and warehouses")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="spillover-bench-ga4-"))
    data = work / "ga4"
    clock = time.perf_counter()
    generate(data, args.events, args.days)
    size_mb = sum(p.stat().st_size for p in data.iterdir()) / 2**20
    print(f"generated {args.events:,} events ({size_mb:,.0f} MiB NDJSON, {args.days} files) in "
          f"{time.perf_counter() - clock:.1f}s under {work}")

    spillover = [sys.executable, "-m", "spillover.cli", "ingest", "ga4", str(data), "--json",
                 "--db", f"duckdb:///{work / 'spillover.duckdb'}"]
    env_note = {"SPILLOVER_KEY": os.environ.get("SPILLOVER_KEY", "benchmark-key-" + "0" * 32)}
    os.environ.update(env_note)
    results = []
    floor_db = work / "floor.duckdb"
    floor_s, floor_cpu, floor_rss, _ = timed(
        [sys.executable, "-c", FLOOR, str(data), str(floor_db)], work, _remove_database(floor_db), args.repeat
    )
    results.append(("floor: DuckDB read_json + UNNEST", args.events, floor_s, floor_cpu, floor_rss))
    ours_s, ours_cpu, ours_rss, out = timed(spillover, work, _remove_database(work / "spillover.duckdb"), args.repeat)
    loaded = json.loads(out)
    results.append(("spillover ingest ga4 (base + staging)", loaded["rows_read"], ours_s, ours_cpu, ours_rss))
    n_pandas = min(args.pandas_events, args.events)
    pandas_s, pandas_cpu, pandas_rss, _ = timed([sys.executable, "-c", PANDAS, str(data), str(n_pandas)], work)
    results.append(("pandas json.loads + json_normalize", n_pandas, pandas_s, pandas_cpu, pandas_rss))

    floor_rate = args.events / floor_s
    ours_rate = loaded["rows_read"] / ours_s
    pandas_rate = n_pandas / pandas_s
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"date {time.strftime('%Y-%m-%d')}")
    print(f"{'contender':<40} {'events':>11} {'seconds':>9} {'CPU s':>8} {'events/s':>11} {'peak RSS':>10}")
    for name, events, seconds, cpu, rss in results:
        print(f"{name:<40} {events:>11,} {seconds:>9.2f} {cpu:>8.1f} {events / seconds:>11,.0f} {rss:>8,.0f} MiB")
    print(f"\nspillover / floor  = {ours_rate / floor_rate:.2f}x the floor's events/s   (target >= 0.6x)")
    print(f"spillover / pandas = {ours_rate / pandas_rate:.1f}x pandas' events/s       (target >= 10x)")
    print(f"loaded {loaded['rows_loaded']:,}, quarantined {loaded['rows_quarantined']:,}, "
          f"duplicates {loaded['duplicates_dropped']:,}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
