"""Benchmark: identity stitching (connected components in the engine) against networkx, in one run.

Generates a random graph shaped like an identity graph (see ``generate``), writes its edges to
Parquet once, then times, each in a fresh subprocess so that peak RSS is its own:
  (a) spillover — ``identity.components.connected_components`` (the function the identity stage
      uses) on a DuckDB table of the edges, in a DuckDB file, with ``--threads`` DuckDB threads;
  (b) networkx  — ``nx.Graph`` from the same edges + ``nx.connected_components`` (skipped above
      --networkx-max-edges, where it needs more memory or time than a shared machine has);
  (c) floor     — ``scipy.sparse.csgraph.connected_components`` (compiled, single-threaded), the
      fastest in-memory answer, when scipy is installed.
Each contender reports the number of components and the largest one, which must agree. Prints
seconds (reading the edges and stitching separately), CPU seconds (all threads, user + system: less
sensitive than wall time to other work on a shared machine), peak RSS and the ratios.
Usage: python benchmarks/identity.py [--edges 1000000 10000000] [--ids string|int] [--threads 2]
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
import pyarrow.parquet as pq

# Shares of the edge budget by kind of component (see ``generate``).
SMALL_SHARE, CHAIN_SHARE, LARGE_SHARE = 0.80, 0.15, 0.05
LARGE_COMPONENT_SPLIT = (0.6, 0.3, 0.1)
ID_TYPES = np.array(["client_key", "member_id", "email_pid", "phone_pid"])


def _fit(sizes: np.ndarray, budget: int, smallest: int = 1) -> np.ndarray:
    """The first of ``sizes`` (components of that many nodes) whose edges sum to exactly ``budget``:
    a tree of k > 1 nodes has k - 1 edges, a lone node one self-loop; the last one is cut to fit."""
    edges = np.cumsum(np.maximum(sizes - 1, 1))
    sizes = sizes[: np.searchsorted(edges, budget) + 1].copy()
    overshoot = int(np.maximum(sizes - 1, 1).sum()) - budget
    sizes[-1] = max(smallest, sizes[-1] - overshoot)
    return sizes


def _random_trees(sizes: np.ndarray, first_node: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random recursive trees of ``sizes`` nodes, numbered from ``first_node`` on; a size-1 tree is a
    self-loop. Node j > 0 of a tree links to a uniformly chosen earlier node of the same tree."""
    offsets = first_node + np.concatenate(([0], np.cumsum(sizes)[:-1]))
    singles = offsets[sizes == 1]
    tree_of_node = np.repeat(np.arange(len(sizes)), sizes)
    position = np.arange(sizes.sum()) - np.repeat(offsets - first_node, sizes)
    child = position > 0
    parent_position = np.floor(rng.random(child.sum()) * position[child]).astype(np.int64)
    a = np.concatenate((singles, offsets[tree_of_node[child]] + parent_position))
    b = np.concatenate((singles, first_node + np.flatnonzero(child)))
    return a, b


def generate(edges: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Edges ``(a, b)`` over nodes ``0..n-1`` of a graph shaped like an identity graph; returns n too.

    - 80% of the edges: customers — random trees of Geometric(0.45) identifiers (1, 2, ...; mean ~2.2,
      at most 12: a member, an email, a phone, a few browsers); a lone identifier is a self-loop,
      as the identity stage adds one for every identifier.
    - 15%: chains — paths of log-uniform length 10..5,000 nodes (a browser passed between members,
      an email reused along a chain of accounts: the worst case for label propagation).
    - 5%: three large components (60/30/10% of that share) — a random recursive tree plus 50% extra
      random edges inside it (what a shared device or a placeholder email builds before the guards
      block it).
    Node numbers are then permuted at random, edges shuffled and half of them reversed, so that no
    structure hides in the labels or the order.
    """
    rng = np.random.default_rng(seed)
    parts_a, parts_b, next_node = [], [], 0

    budget = int(edges * SMALL_SHARE)
    sizes = _fit(np.minimum(rng.geometric(0.45, size=budget), 12), budget)
    a, b = _random_trees(sizes, next_node, rng)
    parts_a.append(a), parts_b.append(b)
    next_node += int(sizes.sum())

    budget = int(edges * CHAIN_SHARE)
    lengths = np.exp(rng.uniform(np.log(10), np.log(5_000), size=budget // 10 + 1)).astype(np.int64)
    lengths = _fit(lengths, budget, smallest=2)
    starts = next_node + np.concatenate(([0], np.cumsum(lengths)[:-1]))
    nodes = np.arange(next_node, next_node + lengths.sum())
    last = np.zeros(len(nodes), dtype=bool)
    last[starts - next_node + lengths - 1] = True
    parts_a.append(nodes[~last]), parts_b.append(nodes[~last] + 1)
    next_node += int(lengths.sum())

    for share in LARGE_COMPONENT_SPLIT:
        budget = int(edges * LARGE_SHARE * share)
        size = max(2, int(budget / 1.5))
        a, b = _random_trees(np.array([size]), next_node, rng)
        extra = budget - (size - 1)
        parts_a += [a, next_node + rng.integers(0, size, extra)]
        parts_b += [b, next_node + rng.integers(0, size, extra)]
        next_node += size

    a, b = np.concatenate(parts_a), np.concatenate(parts_b)
    # Trim or pad (with self-loops of new lone identifiers) to exactly ``edges``.
    if len(a) > edges:
        a, b = a[:edges], b[:edges]
    elif len(a) < edges:
        lone = np.arange(next_node, next_node + edges - len(a))
        a, b = np.concatenate((a, lone)), np.concatenate((b, lone))
        next_node += len(lone)
    relabel = rng.permutation(next_node)
    order = rng.permutation(edges)
    a, b = relabel[a[order]], relabel[b[order]]
    flip = rng.random(edges) < 0.5
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    return a.astype(np.int64), b.astype(np.int64), next_node


def write_edges(path: Path, a: np.ndarray, b: np.ndarray, ids: str) -> None:
    """Parquet ``(node_a, node_b)``; with ``ids="string"`` nodes read like the identity stage's,
    ``id_type:`` + a 64-hex pseudonym."""
    if ids == "string":
        def node_names(values: np.ndarray) -> pa.Array:
            kinds = ID_TYPES[values % len(ID_TYPES)]
            digits = np.char.zfill(np.char.mod("%x", values * 2_654_435_761 % 2**61), 64)
            return pa.array(np.char.add(np.char.add(kinds, ":"), digits).astype(object))

        table = pa.table({"node_a": node_names(a), "node_b": node_names(b)})
    else:
        table = pa.table({"node_a": a, "node_b": b})
    pq.write_table(table, path, row_group_size=1_000_000)


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


def bench(edges: int, args: argparse.Namespace, work: Path) -> list[tuple[str, dict | None, float, float]]:
    clock = time.perf_counter()
    a, b, n_nodes = generate(edges, seed=args.seed)
    path = work / f"edges_{edges}.parquet"
    write_edges(path, a, b, args.ids)
    del a, b
    print(f"\n{edges:,} edges over {n_nodes:,} nodes ({args.ids} ids, {path.stat().st_size / 2**20:,.0f} MiB "
          f"Parquet) generated in {time.perf_counter() - clock:.1f}s")
    rows = []
    db = work / f"spillover_{edges}.duckdb"
    seconds, rss, out = timed([sys.executable, "-c", SPILLOVER, str(path), str(db), str(args.threads)], work)
    rows.append((f"spillover components (DuckDB, {args.threads} threads)", out, seconds, rss))
    db.unlink(missing_ok=True)
    if edges <= args.networkx_max_edges:
        seconds, rss, out = timed([sys.executable, "-c", NETWORKX, str(path)], work)
        rows.append(("networkx connected_components", out, seconds, rss))
    else:
        rows.append(("networkx connected_components", None, 0.0, 0.0))
    try:
        import scipy  # noqa: F401
    except ImportError:
        rows.append(("floor: scipy csgraph", None, 0.0, 0.0))
    else:
        seconds, rss, out = timed([sys.executable, "-c", FLOOR, str(path)], work)
        rows.append(("floor: scipy csgraph (1 thread)", out, seconds, rss))
    path.unlink()
    return rows


def report(edges: int, rows: list[tuple[str, dict | None, float, float]], target_s: float | None) -> None:
    print(f"{'contender':<44} {'load s':>7} {'stitch s':>9} {'total s':>8} {'CPU s':>7} {'peak RSS':>10} "
          f"{'rounds':>6} {'components':>11} {'largest':>9}")
    for name, out, seconds, rss in rows:
        if out is None:
            print(f"{name:<44} {'skipped (over --networkx-max-edges or not installed)':>60}")
            continue
        print(f"{name:<44} {out['load']:>7.1f} {out['stitch']:>9.1f} {seconds:>8.1f} {out['cpu']:>7.1f} {rss:>6,.0f} MiB "
              f"{out.get('rounds', ''):>6} {out['components']:>11,} {out['largest']:>9,}")
    ours = rows[0]
    answers = {(out["components"], out["largest"]) for _, out, _, _ in rows if out is not None}
    print(f"answers agree: {'yes' if len(answers) == 1 else 'NO: ' + str(answers)}")
    for name, out, seconds, rss in rows[1:]:
        if out is not None:
            print(f"spillover / {name.split()[0].rstrip(':')}: {ours[2] / seconds:.2f}x the time "
                  f"(stitching alone {ours[1]['stitch'] / out['stitch']:.2f}x, CPU {ours[1]['cpu'] / out['cpu']:.2f}x), "
                  f"{ours[3] / rss:.2f}x the peak RSS")
    if target_s is not None:
        verdict = "met" if ours[2] < target_s else "NOT met"
        print(f"target: {edges:,} edges under {target_s:.0f}s end to end -> {verdict} ({ours[2]:.1f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--ids", choices=["string", "int"], default="string",
                        help="node ids as the identity stage has them (string) or as int64")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads for spillover")
    parser.add_argument("--networkx-max-edges", type=int, default=2_000_000,
                        help="skip networkx above this many edges (10M edges need ~10+ GiB and minutes)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.environ.setdefault("SPILLOVER_KEY", "benchmark-key-" + "0" * 32)
    # Contenders import this checkout's spillover, not whichever one is installed.
    source = str(Path(__file__).resolve().parent.parent / "src")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    work = Path(tempfile.mkdtemp(prefix="spillover-bench-identity-"))
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"date {time.strftime('%Y-%m-%d')}")
    try:
        for edges in args.edges:
            rows = bench(edges, args, work)
            report(edges, rows, 60.0 if edges == 10_000_000 else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
