"""How close `tune`'s certified thresholds get to the oracle, and how often they are wrong, on
calibration curves with known truth (`tests/tune_synth.CURVES`): the tables of docs/tune.md.

    PYTHONPATH=. python bench/tune_oracle.py                      # 200 seeds, n = 20,000 and 2,000
    PYTHONPATH=. python bench/tune_oracle.py --seeds 50 --n 2000 --step 0.005

Per (curve, target, n) and procedure: the share of seeds that certify, the mean certified threshold
and its distance to the oracle (the smallest threshold whose true precision reaches the target),
the mean automation (1 - threshold, 0 when nothing is certified) as a share of the oracle's, and
the violations (a certified threshold whose true precision is below the target) with the one-sided
binomial p-value P(Bin(seeds, 1 - confidence) >= violations). "learn-then-test" is
`reconciler.annotate.certify.certify_points` (what `tune` runs); "old scan" is the fixed-sequence
scan `tune` ran before (`tune_synth.old_scan`). Seeds are the same for both.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from tune_synth import CURVES, BetaMixture, old_scan  # noqa: E402

from reconciler.annotate import stats  # noqa: E402
from reconciler.annotate.certify import certify_points  # noqa: E402

SCENARIOS = [("s^2", 0.95), ("s", 0.95), ("sqrt(s)", 0.95), ("step", 0.95), ("noisy-top", 0.95),
             ("noisy-top", 0.90), ("flat-0.949", 0.95), ("s-thin-top", 0.95),
             ("beta-mix-0.3", 0.95)]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--n", type=int, nargs="+", default=[20_000, 2_000])
    ap.add_argument("--step", type=float, default=0.01)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--curves", nargs="+", default=None, help="curve names, or curve@target")
    ap.add_argument("--no-old", action="store_true")
    args = ap.parse_args(argv)
    alpha = 1 - args.confidence
    print("| curve | target | n | oracle | procedure | certifies | mean t | mean t - oracle | automation / oracle's "
          "| violations | P(Bin >= v) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.n:
        scenarios = SCENARIOS
        if args.curves:
            scenarios = [(c.partition("@")[0], float(c.partition("@")[2])) if "@" in c else sc
                         for c in args.curves for sc in ([None] if "@" in c else [x for x in SCENARIOS if x[0] == c])]
        for name, target in scenarios:
            curve = CURVES[name] if name in CURVES else BetaMixture(float(name.rpartition('-')[2]))
            oracle = curve.oracle(target)
            procs = {"learn-then-test": [], "old scan": []}
            t0 = time.process_time()
            for seed in range(args.seeds):
                pts = curve.points(random.Random(f"{name}/{n}/{seed}"), n)
                procs["learn-then-test"].append(
                    certify_points(pts, "GREATER_THAN", target, args.confidence, args.step, seed=seed).threshold)
                if not args.no_old:
                    procs["old scan"].append(old_scan(pts, target, args.confidence, args.step))
            for proc, got in procs.items():
                if not got:
                    continue
                cert = [t for t in got if t is not None]
                viol = sum(curve.precision(t) < target for t in cert)
                mean = sum(cert) / len(cert) if cert else None
                auto = sum(curve.automation(t) for t in cert) / len(got)
                rel = f"{auto / curve.automation(oracle):.2f}" if oracle is not None else "-"
                pval = stats.binom_sf(viol, len(got), alpha) if viol else 1.0
                print(f"| {name} | {target:g} | {n} | {'-' if oracle is None else f'{oracle:.3f}'} | {proc} | "
                      f"{len(cert) / len(got):.0%} | {'-' if mean is None else f'{mean:.3f}'} | "
                      f"{'-' if mean is None or oracle is None else f'{mean - oracle:+.3f}'} | {rel} | "
                      f"{viol}/{len(got)} | {pval:.2f} |", flush=True)
            print(f"<!-- {name}@{target:g} n={n}: {time.process_time() - t0:.1f} CPU s -->", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
