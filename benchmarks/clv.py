"""Benchmark: fitting BG/NBD + Gamma-Gamma with spillover against ``lifetimes``, in one run.

Populations of N customers are drawn from the models with known parameters (daily periods, recency
in whole days, ages up to two years), so the table also shows how well the parameters are recovered.
Each contender runs in a fresh subprocess on the same draw, so peak RSS is its own:
  (a) spillover — ``BetaGeoModel`` + ``GammaGammaModel`` (identical customers collapsed into weights);
  (b) spillover without collapsing, to show what collapsing buys;
  (c) lifetimes — ``BetaGeoFitter`` + ``GammaGammaFitter`` (up to --lifetimes-max customers).
Prints fit seconds (neither the draw nor a warm-up fit on 2,000 customers is timed), CPU seconds, peak RSS, the time ratio to (a),
the estimates beside the truth, the largest relative difference between (a) and (c), and each
contender's maximised log-likelihoods (BG/NBD and Gamma-Gamma; every contender's estimates are put
into the same likelihood function, spillover's, on the same draw) with their relative differences.
Targets: at 1M customers >= 20x faster than lifetimes with log-likelihoods within 1e-6 (relative);
10M customers in under 30 s.
Usage: python benchmarks/clv.py [--customers 100000 1000000 10000000] [--lifetimes-max 1000000]
                                [--plain-max 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

TRUTH = {"r": 0.25, "alpha": 28.0, "a": 0.8, "b": 2.5}
SPEND_TRUTH = {"p": 6.0, "q": 3.8, "v": 15.0}

FIT = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from spillover.predict.simulate import simulate_rfm
contender, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
truth = json.loads(sys.argv[4])
summary = simulate_rfm(n, max_age=730, seed=seed, **truth)
repeat = summary[summary["frequency"] > 0]
small, small_repeat = summary.iloc[:2000], repeat.iloc[:1000]
if contender == "lifetimes":
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    # warm-up on a small sample: first-call costs (lazy imports, library discovery) are not timed
    BetaGeoFitter().fit(small["frequency"], small["recency"], small["T"])
    GammaGammaFitter().fit(small_repeat["frequency"], small_repeat["monetary_value"])
else:
    from spillover.predict.clv import BetaGeoModel, GammaGammaModel
    BetaGeoModel().fit(small)
    GammaGammaModel().fit(small)
before = resource.getrusage(resource.RUSAGE_SELF)
clock = time.perf_counter()
if contender == "lifetimes":
    purchase = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    middle = time.perf_counter()
    spend = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    params = {**purchase.params_.to_dict(), **spend.params_.to_dict()}
    errors = {**purchase.summary["se(coef)"].to_dict(), **spend.summary["se(coef)"].to_dict()}
    unique = None
else:
    collapse = contender == "spillover"
    purchase = BetaGeoModel(collapse=collapse).fit(summary)
    middle = time.perf_counter()
    spend = GammaGammaModel(collapse=collapse).fit(summary)
    params = {**purchase.params_, **spend.params_}
    errors = {**purchase.standard_errors_, **spend.standard_errors_}
    unique = purchase.n_unique_
end = time.perf_counter()
after = resource.getrusage(resource.RUSAGE_SELF)
# every contender's estimates in the same (spillover's) likelihood, on the same data
import numpy as np
from spillover.predict.clv import _PurchaseData, _SpendData, _bgnbd_log_likelihood, _gamma_gamma_log_likelihood
from spillover.predict.mle import collapse
columns, weights = collapse((summary["frequency"].to_numpy(float), summary["recency"].to_numpy(float), summary["T"].to_numpy(float)))
bgnbd_ll = _bgnbd_log_likelihood(np.array([params[k] for k in ("r", "alpha", "a", "b")]), _PurchaseData.of(*columns, weights))[0]
columns, weights = collapse((repeat["frequency"].to_numpy(float), repeat["monetary_value"].to_numpy(float)))
spend_ll = _gamma_gamma_log_likelihood(np.array([params[k] for k in ("p", "q", "v")]), _SpendData.of(*columns, weights))[0]
print(json.dumps({
    "bgnbd_log_likelihood": bgnbd_ll, "gamma_gamma_log_likelihood": spend_ll,
    "seconds": end - clock, "bgnbd_seconds": middle - clock, "gamma_gamma_seconds": end - middle,
    "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    "peak_rss_mb": after.ru_maxrss / 1024, "params": params, "errors": errors, "unique_rows": unique,
    "repeat_customers": len(repeat),
}))
"""


def _run(contender: str, customers: int, seed: int) -> dict:
    truth = json.dumps({**TRUTH, **SPEND_TRUTH})
    done = subprocess.run(
        [sys.executable, "-c", FIT, contender, str(customers), str(seed), truth],
        check=True, capture_output=True, text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--lifetimes-max", type=int, default=1_000_000, help="largest population to fit with lifetimes")
    parser.add_argument("--no-plain", action="store_true", help="skip spillover without collapsing")
    parser.add_argument("--plain-max", type=int, default=1_000_000, help="largest population to fit without collapsing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy
    import scipy

    print(f"# CLV fit benchmark — {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
          f"numpy {numpy.__version__}, scipy {scipy.__version__}")
    names = [*TRUTH, *SPEND_TRUTH]
    for customers in args.customers:
        plain = not args.no_plain and customers <= args.plain_max
        contenders = ["spillover"] + (["spillover (no collapsing)"] if plain else [])
        if customers <= args.lifetimes_max:
            contenders.append("lifetimes")
        results = {}
        for contender in contenders:
            key = "spillover-plain" if "no collapsing" in contender else contender
            results[contender] = _run(key, customers, args.seed)
        base = results["spillover"]
        print(f"\n## {customers:,} customers ({base['repeat_customers']:,} repeat buyers; "
              f"{base['unique_rows']:,} distinct (frequency, recency, T))\n")
        print("| contender | BG/NBD s | Gamma-Gamma s | total s | CPU s | peak RSS MiB | time / spillover |")
        print("|---|---|---|---|---|---|---|")
        for contender, result in results.items():
            print(f"| {contender} | {result['bgnbd_seconds']:.2f} | {result['gamma_gamma_seconds']:.2f} | "
                  f"{result['seconds']:.2f} | {result['cpu_seconds']:.2f} | {result['peak_rss_mb']:,.0f} | "
                  f"{result['seconds'] / base['seconds']:.1f}x |")
        print("\n| parameter | truth | spillover (± s.e.) | " + " | ".join(c for c in results if c != "spillover") + " |")
        print("|---|---|---|" + "---|" * (len(results) - 1))
        truth = {**TRUTH, **SPEND_TRUTH}
        for name in names:
            others = " | ".join(f"{r['params'][name]:.4f}" for c, r in results.items() if c != "spillover")
            print(f"| {name} | {truth[name]:g} | {base['params'][name]:.4f} ± {base['errors'][name]:.4f} | {others} |")
        print("\n| contender | BG/NBD log-likelihood | Gamma-Gamma log-likelihood | relative difference to spillover (BG/NBD, Gamma-Gamma) |")
        print("|---|---|---|---|")
        for contender, result in results.items():
            differences = [
                abs(result[key] - base[key]) / abs(base[key])
                for key in ("bgnbd_log_likelihood", "gamma_gamma_log_likelihood")
            ]
            print(f"| {contender} | {result['bgnbd_log_likelihood']:,.4f} | {result['gamma_gamma_log_likelihood']:,.4f} | "
                  f"{differences[0]:.1e}, {differences[1]:.1e} |")
        if "lifetimes" in results:
            theirs = results["lifetimes"]["params"]
            worst = max(abs(base["params"][n] - theirs[n]) / abs(theirs[n]) for n in names)
            print(f"\nlargest relative difference spillover vs lifetimes: {worst:.1e} (parameters)")
            print(f"time lifetimes / spillover: {results['lifetimes']['seconds'] / base['seconds']:.1f}x "
                  "(target >= 20x at 1M customers)")


if __name__ == "__main__":
    main()
