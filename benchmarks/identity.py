"""Benchmark: identity stitching (connected components in the engine) against networkx, in one run.

Generates a random graph shaped like an identity graph (see ``generate``), writes its edges to
Parquet once, then times, each in a fresh subprocess so that peak RSS is its own:
  (a) spillover — ``identity.components.connected_components`` (the function the identity stage
      uses) on a DuckDB table of the edges, in a DuckDB file, with ``--threads`` DuckDB threads:
      once on numbered nodes (int64, what the identity stage passes) and once on the same graph with
      named nodes (``email_pid:`` + 64 hex digits; components numbers them first);
  (b) networkx  — ``nx.Graph`` from the same edges + ``nx.connected_components`` (skipped above
      --networkx-max-edges, where it needs more memory than a shared machine should give it);
  (c) floor     — ``scipy.sparse.csgraph.connected_components`` (compiled, single-threaded), the
      fastest in-memory answer, when scipy is installed.
Each contender reports the number of components and the largest one, which must agree. Prints
seconds (reading the edges and stitching separately), CPU seconds (all threads, user + system: less
sensitive than wall time to other work on a shared machine), peak RSS and the ratios.
Usage: python benchmarks/identity.py [--edges 1000000 10000000] [--no-names] [--threads 2]
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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Shares of the edge budget by kind of component (see ``generate``).
SMALL_SHARE, CHAIN_SHARE, LARGE_SHARE = 0.80, 0.15, 0.05
LARGE_COMPONENT_SPLIT = (0.6, 0.3, 0.1)
ID_TYPES = np.array(["client_key", "member_id", "email_pid", "phone_pid"])


def _fit(sizes: np.ndarray, budget: int) -> np.ndarray:
    """The first of ``sizes`` (connected components of that many nodes, k - 1 edges each) whose edges
    sum to exactly ``budget``; the last one is cut to fit."""
    sizes = sizes[: np.searchsorted(np.cumsum(sizes - 1), budget) + 1].copy()
    sizes[-1] -= int((sizes - 1).sum()) - budget
    return sizes[sizes >= 2]


def _random_trees(sizes: np.ndarray, first_node: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random recursive trees of ``sizes`` nodes, numbered from ``first_node`` on: node j > 0 of a
    tree links to a uniformly chosen earlier node of the same tree."""
    offsets = first_node + np.concatenate(([0], np.cumsum(sizes)[:-1]))
    tree_of_node = np.repeat(np.arange(len(sizes)), sizes)
    position = np.arange(sizes.sum()) - np.repeat(offsets - first_node, sizes)
    child = position > 0
    parent_position = np.floor(rng.random(child.sum()) * position[child]).astype(np.int64)
    return offsets[tree_of_node[child]] + parent_position, first_node + np.flatnonzero(child)


def generate(edges: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Edges ``(a, b)`` over nodes ``0..n-1`` of a graph shaped like an identity graph; returns n too.

    The identity stage hands components only the identifiers that have a link (the others are
    customers of their own), so every node here has at least one edge:
    - 80% of the edges: customers — random trees of 1 + Geometric(0.45) identifiers (2, 3, ...;
      mean ~3.2, at most 12: a member, an email, a phone, a few browsers);
    - 15%: chains — paths of log-uniform length 10..5,000 nodes (a browser passed between members,
      an email reused along a chain of accounts: the worst case for label propagation);
    - 5%: three large components (60/30/10% of that share) — a random recursive tree plus 50% extra
      random edges inside it (what a shared device or a placeholder email builds when the guards'
      limits are set high).
    Node numbers are then permuted at random, edges shuffled and half of them reversed, so that no
    structure hides in the numbers or the order.
    """
    rng = np.random.default_rng(seed)
    parts_a, parts_b, next_node = [], [], 0

    def trees(sizes: np.ndarray) -> None:
        nonlocal next_node
        a, b = _random_trees(sizes, next_node, rng)
        parts_a.append(a), parts_b.append(b)
        next_node += int(sizes.sum())

    budget = int(edges * SMALL_SHARE)
    trees(_fit(1 + np.minimum(rng.geometric(0.45, size=budget), 11), budget))

    budget = int(edges * CHAIN_SHARE)
    lengths = _fit(np.exp(rng.uniform(np.log(10), np.log(5_000), size=budget // 10 + 1)).astype(np.int64), budget)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    nodes = np.arange(next_node, next_node + lengths.sum())
    last = np.zeros(len(nodes), dtype=bool)
    last[starts + lengths - 1] = True
    parts_a.append(nodes[~last]), parts_b.append(nodes[~last] + 1)
    next_node += int(lengths.sum())

    for share in LARGE_COMPONENT_SPLIT:
        budget = int(edges * LARGE_SHARE * share)
        size = max(2, int(budget / 1.5))
        first = next_node
        trees(np.array([size]))
        extra = budget - (size - 1)
        parts_a.append(first + rng.integers(0, size, extra)), parts_b.append(first + rng.integers(0, size, extra))

    # Rounding leaves a few edges: pairs of new identifiers.
    missing = edges - sum(len(part) for part in parts_a)
    if missing:
        trees(np.full(missing, 2))
    a, b = np.concatenate(parts_a), np.concatenate(parts_b)
    relabel = rng.permutation(next_node)
    order = rng.permutation(edges)
    a, b = relabel[a[order]], relabel[b[order]]
    flip = rng.random(edges) < 0.5
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    return a.astype(np.int64), b.astype(np.int64), next_node


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_PREFIXES = pa.array([f"{kind}:" for kind in ID_TYPES])


def _names(numbers: np.ndarray) -> pa.Array:
    """Identity-stage-like names for node numbers: ``id_type:`` + 64 hex digits (a keyed pseudonym's
    length), distinct for distinct numbers (an odd multiplier is a bijection modulo 2**64)."""
    mixed = numbers.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    nibbles = (mixed[:, None] >> np.arange(60, -4, -4, dtype=np.uint64)) & np.uint64(15)
    digits = np.tile(_HEX[nibbles.astype(np.uint8)], 4)
    hex_text = pa.array(np.ascontiguousarray(digits).view("S64").ravel()).cast(pa.string())
    return pc.binary_join_element_wise(_PREFIXES.take(pa.array(numbers % len(ID_TYPES))), hex_text, "")


def write_edges(path: Path, a: np.ndarray, b: np.ndarray, ids: str, chunk: int = 1_000_000) -> None:
    """Parquet ``(node_a, node_b)``: int64 node numbers, or (``ids="string"``) names like the
    identity stage's."""
    with pq.ParquetWriter(path, pa.schema([("node_a", pa.string() if ids == "string" else pa.int64()),
                                            ("node_b", pa.string() if ids == "string" else pa.int64())])) as writer:
        for start in range(0, len(a), chunk):
            part_a, part_b = a[start:start + chunk], b[start:start + chunk]
            if ids == "string":
                writer.write_table(pa.table({"node_a": _names(part_a), "node_b": _names(part_b)}))
            else:
                writer.write_table(pa.table({"node_a": part_a, "node_b": part_b}))


SPILLOVER = """
import json, sys, time
from spillover.engine import connect
from spillover.identity.components import connected_components
edges_path, db, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = connect(f"duckdb:///{db}")
con.raw_sql(f"SET threads={threads}")
clock = time.perf_counter()
con.read_parquet(edges_path, table_name="edges_view")
con.create_table("edges", con.table("edges_view"))
load = time.perf_counter() - clock
clock = time.perf_counter()
labels, rounds = connected_components(con, con.table("edges"))
stitch = time.perf_counter() - clock
sizes = labels.group_by("component").aggregate(n=labels.count())
summary = sizes.aggregate(components=sizes.count(), largest=sizes.n.max()).to_pyarrow().to_pylist()[0]
print(json.dumps({"load": load, "stitch": stitch, "rounds": rounds, **summary}))
"""

NETWORKX = """
import json, sys, time
import networkx as nx, pyarrow.parquet as pq
clock = time.perf_counter()
table = pq.read_table(sys.argv[1])
graph = nx.Graph()
graph.add_edges_from(zip(table.column("node_a").to_pylist(), table.column("node_b").to_pylist()))
del table
load = time.perf_counter() - clock
clock = time.perf_counter()
sizes = [len(c) for c in nx.connected_components(graph)]
stitch = time.perf_counter() - clock
print(json.dumps({"load": load, "stitch": stitch, "components": len(sizes), "largest": max(sizes)}))
"""

FLOOR = """
import json, sys, time
import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
clock = time.perf_counter()
table = pq.read_table(sys.argv[1])
both = pa.concat_arrays([table.column("node_a").combine_chunks(), table.column("node_b").combine_chunks()])
codes = both.dictionary_encode().indices.to_numpy() if pa.types.is_string(both.type) else np.unique(both.to_numpy(), return_inverse=True)[1]
n, half = int(codes.max()) + 1, len(table)
matrix = coo_matrix((np.ones(half, dtype=np.int8), (codes[:half], codes[half:])), shape=(n, n)).tocsr()
load = time.perf_counter() - clock
clock = time.perf_counter()
count, labels = connected_components(matrix, directed=False)
stitch = time.perf_counter() - clock
print(json.dumps({"load": load, "stitch": stitch, "components": int(count), "largest": int(np.bincount(labels).max())}))
"""


def timed(argv: list[str], cwd: Path) -> tuple[float, float, dict]:
    """Run one contender in a fresh subprocess; return (seconds, its own peak RSS in MiB, its JSON
    with ``cpu``: its CPU seconds, all threads, user + system)."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "sys.stderr.write(p.stderr); sys.stdout.write(p.stdout)\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(f'__BENCH__ {dt} {u.ru_maxrss} {u.ru_utime + u.ru_stime}')\n"
        "sys.exit(p.returncode)\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *argv], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])[:80]} failed:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    _, seconds, rss_kib, cpu = lines[-1].split()
    return float(seconds), int(rss_kib) / 1024, {**json.loads(lines[-2]), "cpu": float(cpu)}


Row = tuple[str, "dict | None", float, float, str]  # name, its JSON, seconds, peak RSS MiB, why skipped


def bench(edges: int, args: argparse.Namespace, work: Path) -> list[Row]:
    clock = time.perf_counter()
    a, b, n_nodes = generate(edges, seed=args.seed)
    numbers, names = work / f"edges_{edges}.parquet", work / f"edges_{edges}_names.parquet"
    write_edges(numbers, a, b, "int")
    if args.names:
        write_edges(names, a, b, "string")
    del a, b
    print(f"\n{edges:,} edges over {n_nodes:,} nodes generated in {time.perf_counter() - clock:.1f}s "
          f"(Parquet: {numbers.stat().st_size / 2**20:,.0f} MiB numbered"
          + (f", {names.stat().st_size / 2**20:,.0f} MiB named)" if args.names else ")"))
    rows: list[Row] = []
    db = work / f"spillover_{edges}.duckdb"
    inputs = [("numbered nodes (as the identity stage)", numbers)]
    if args.names:
        inputs.append(("named nodes (75-char strings)", names))
    for what, path in inputs:
        seconds, rss, out = timed([sys.executable, "-c", SPILLOVER, str(path), str(db), str(args.threads)], work)
        rows.append((f"spillover, {what}", out, seconds, rss, ""))
        db.unlink(missing_ok=True)
    if edges <= args.networkx_max_edges:
        seconds, rss, out = timed([sys.executable, "-c", NETWORKX, str(numbers)], work)
        rows.append(("networkx connected_components", out, seconds, rss, ""))
    else:
        rows.append(("networkx connected_components", None, 0.0, 0.0,
                     f"skipped: over --networkx-max-edges {args.networkx_max_edges:,} (~1.3 GiB per 1M edges)"))
    try:
        import scipy  # noqa: F401
    except ImportError:
        rows.append(("floor: scipy csgraph", None, 0.0, 0.0, "skipped: scipy not installed"))
    else:
        seconds, rss, out = timed([sys.executable, "-c", FLOOR, str(numbers)], work)
        rows.append(("floor: scipy csgraph (1 thread)", out, seconds, rss, ""))
    numbers.unlink()
    names.unlink(missing_ok=True)
    return rows


def report(edges: int, rows: list[Row], target_s: float | None) -> None:
    print(f"{'contender':<52} {'read s':>7} {'stitch s':>9} {'total s':>8} {'CPU s':>7} {'peak RSS':>10} "
          f"{'rounds':>6} {'components':>11} {'largest':>9}")
    for name, out, seconds, rss, skipped in rows:
        if out is None:
            print(f"{name:<52} {skipped}")
            continue
        print(f"{name:<52} {out['load']:>7.1f} {out['stitch']:>9.1f} {seconds:>8.1f} {out['cpu']:>7.1f} "
              f"{rss:>6,.0f} MiB {out.get('rounds', ''):>6} {out['components']:>11,} {out['largest']:>9,}")
    answers = {(out["components"], out["largest"]) for _, out, _, _, _ in rows if out is not None}
    print(f"answers agree: {'yes' if len(answers) == 1 else 'NO: ' + str(answers)}")
    ours = [row for row in rows if row[0].startswith("spillover")]
    others = [row for row in rows if not row[0].startswith("spillover") and row[1] is not None]
    for name, out, seconds, rss, _ in ours:
        for other, other_out, other_seconds, other_rss, _ in others:
            print(f"{name.split(',')[1].split()[0]:<8} / {other.split()[0].rstrip(':'):<8}: "
                  f"{seconds / other_seconds:6.2f}x the time (stitching alone {out['stitch'] / other_out['stitch']:6.2f}x, "
                  f"CPU {out['cpu'] / other_out['cpu']:5.2f}x), {rss / other_rss:.2f}x the peak RSS")
    if target_s is not None:
        for name, _, seconds, _, _ in ours:
            verdict = "met" if seconds < target_s else "NOT met"
            print(f"target {edges:,} edges under {target_s:.0f}s end to end: {verdict} ({seconds:.1f}s) — {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--no-names", dest="names", action="store_false",
                        help="skip the run on named (string) nodes")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads for spillover")
    parser.add_argument("--networkx-max-edges", type=int, default=2_000_000,
                        help="skip networkx above this many edges (it needs ~1.3 GiB per 1M edges)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.environ.setdefault("SPILLOVER_KEY", "benchmark-key-" + "0" * 32)
    # Contenders import this checkout's spillover, not whichever one is installed.
    source = str(Path(__file__).resolve().parent.parent / "src")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    work = Path(tempfile.mkdtemp(prefix="spillover-bench-identity-"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"date {time.strftime('%Y-%m-%d')}, load average {load} (wall times stretch when it exceeds the cores)")
    try:
        for edges in args.edges:
            rows = bench(edges, args, work)
            report(edges, rows, 60.0 if edges == 10_000_000 else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
