"""Benchmark: spillover's cross-fitted ATT (DownstreamImpact) beside DoubleML's
DoubleMLIRM(score="ATTE") on the same flat synthetic table, with the same nuisance learners.

Each estimator runs in a fresh subprocess so that peak RSS is its own; both use 5 folds, one split,
propensities clipped at 0.01 and spillover's default gradient-boosting learners (scikit-learn's
HistGradientBoosting, early-stopped). Prints wall and CPU seconds, peak RSS, the estimates with
standard errors, the truth and the ratios. A second table times one propensity fit of the default
learner against LightGBM with matched settings (the reason the default is what it is).
Usage: python benchmarks/impact_estimator.py [--rows 200000] [--covariates 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Peak RSS of this process: Linux's VmHWM (reset at exec; ru_maxrss keeps the parent's peak across
#: fork and exec, so a child of a large process would report the parent's), else ru_maxrss.
PEAK_RSS = """
def peak_rss_mb():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

SPILLOVER = """
import json, resource, sys, time
""" + PEAK_RSS + """
import numpy as np
from spillover.impact.estimators import DownstreamImpact
data = np.load(sys.argv[1])
propensity = sys.argv[2] if len(sys.argv) > 2 else "boosting"
n_jobs = int(sys.argv[3]) if len(sys.argv) > 3 else None
clock = time.perf_counter()
model = DownstreamImpact(estimand="att", n_folds=5, propensity_model=propensity, n_jobs=n_jobs, random_state=0).fit(
    data["x"], data["d"], data["y"])
seconds = time.perf_counter() - clock
# Stop joblib's worker processes so that their CPU time is counted (RUSAGE_CHILDREN: reaped children).
from joblib.externals.loky import get_reusable_executor
get_reusable_executor().shutdown(wait=True)
usage, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime + workers.ru_utime + workers.ru_stime,
                  "peak_rss_mb": max(peak_rss_mb(), workers.ru_maxrss / 1024), "estimate": model.result_.estimate,
                  "se": model.result_.se, "verdict": model.result_.verdict}))
"""

DOUBLEML = """
import json, resource, sys, time, warnings
""" + PEAK_RSS + """
import numpy as np
import doubleml
from threadpoolctl import threadpool_limits
from spillover.impact.estimators import default_outcome_model, propensity_model_named
warnings.simplefilter("ignore")
data = np.load(sys.argv[1])
propensity = sys.argv[2] if len(sys.argv) > 2 else "boosting"
threads = int(sys.argv[3]) if len(sys.argv) > 3 else None
np.random.seed(0)  # DoubleML draws its folds from NumPy's global generator
clock = time.perf_counter()
dml_data = doubleml.DoubleMLData.from_arrays(data["x"], data["y"], data["d"])
model = doubleml.DoubleMLIRM(dml_data, ml_g=default_outcome_model(0), ml_m=propensity_model_named(propensity, 0),
                             n_folds=5, score="ATTE")
with threadpool_limits(threads):
    model.fit()
seconds = time.perf_counter() - clock
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": peak_rss_mb(), "estimate": float(model.coef[0]),
                  "se": float(model.se[0]), "verdict": "-"}))
"""

LEARNER = """
import json, resource, sys, time
import numpy as np
data = np.load(sys.argv[1])
x, d = data["x"], data["d"]
if sys.argv[2] == "sklearn":
    from sklearn.ensemble import HistGradientBoostingClassifier
    model = HistGradientBoostingClassifier(learning_rate=0.1, max_iter=200, max_leaf_nodes=7, min_samples_leaf=20,
                                           early_stopping=False, random_state=0)
else:
    import lightgbm
    model = lightgbm.LGBMClassifier(learning_rate=0.1, n_estimators=200, num_leaves=7, min_child_samples=20,
                                    random_state=0, verbose=-1)
before = resource.getrusage(resource.RUSAGE_SELF)
clock = time.perf_counter()
model.fit(x, d)
seconds = time.perf_counter() - clock
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                  "peak_rss_mb": after.ru_maxrss / 1024}))
"""


def synthetic_table(rows: int, covariates: int, seed: int) -> tuple[dict[str, np.ndarray], float]:
    """Confounded adoption (heavy shoppers adopt and spend more), heterogeneous effect; the ATT."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, covariates))
    logit = -0.5 + x[:, 0] + 0.5 * x[:, 1] - 0.3 * x[:, 2] * x[:, 3]
    d = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    effect = 1.5 + 0.5 * x[:, 0] + 0.5 * (x[:, 4] > 0)
    y = 2.0 * x[:, 0] + x[:, 1] + np.sin(2.0 * x[:, 2]) + 0.5 * x[:, 5] ** 2 + d * effect + rng.normal(size=rows)
    return {"x": x, "d": d, "y": y}, float(effect[d == 1].mean())


def _run(code: str, *args: object) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--covariates", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    table, truth = synthetic_table(args.rows, args.covariates, args.seed)
    with tempfile.TemporaryDirectory(prefix="spillover-impact-bench-") as folder:
        path = Path(folder) / "table.npz"
        np.savez(path, **table)
        runs = {"spillover DownstreamImpact": _run(SPILLOVER, path), "DoubleML DoubleMLIRM(ATTE)": _run(DOUBLEML, path)}
        learners = {"HistGradientBoosting (default)": _run(LEARNER, path, "sklearn")}
        try:
            import lightgbm  # noqa: F401

            learners["LightGBM"] = _run(LEARNER, path, "lightgbm")
        except ImportError:
            pass

    treated = int(table["d"].sum())
    naive = float(table["y"][table["d"] == 1].mean() - table["y"][table["d"] == 0].mean())
    print(f"impact estimator benchmark — {args.rows:,} rows × {args.covariates} covariates, "
          f"{treated:,} treated, seed {args.seed}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"true ATT {truth:.4f}; naive difference {naive:.4f}\n")
    header = f"{'':30}{'seconds':>9}{'CPU s':>8}{'peak RSS MB':>13}{'ATT':>9}{'se':>8}{'error/se':>10}"
    print(header)
    print("-" * len(header))
    for label, run in runs.items():
        print(f"{label:30}{run['seconds']:>9.1f}{run['cpu_seconds']:>8.1f}{run['peak_rss_mb']:>13,.0f}"
              f"{run['estimate']:>9.4f}{run['se']:>8.4f}{(run['estimate'] - truth) / run['se']:>10.2f}")
    ours, theirs = runs["spillover DownstreamImpact"], runs["DoubleML DoubleMLIRM(ATTE)"]
    print(f"\nDoubleML / spillover: {theirs['seconds'] / ours['seconds']:.2f}× the wall time, "
          f"{theirs['cpu_seconds'] / ours['cpu_seconds']:.2f}× the CPU time, "
          f"{theirs['peak_rss_mb'] / ours['peak_rss_mb']:.2f}× the peak RSS "
          "(DoubleML also fits the treated-outcome model, which the ATT score does not use)")
    print("\none propensity fit, 200 rounds of 7-leaf trees, no early stopping:")
    for label, run in learners.items():
        print(f"  {label:32}{run['seconds']:>7.1f} s wall {run['cpu_seconds']:>7.1f} s CPU {run['peak_rss_mb']:>7,.0f} MB peak RSS")
    print(f"\n(run at {time.strftime('%Y-%m-%d %H:%M')}; shared machines are noisy: compare the ratios, not the seconds)")


if __name__ == "__main__":
    main()
