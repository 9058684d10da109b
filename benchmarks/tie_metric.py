"""Exact tie-calibrated accuracy vs VideoAlign's loop on VideoGen-RewardBench-sized random data.

Two margin kinds, 26.5K pairs each (human labels ~ 40% A, 40% B, 20% tie, correlated with the margin):
* continuous: a scalar reward model (every |margin| distinct);
* discrete: a generative judge judged in both orders (margin in {-1, -0.5, 0, 0.5, 1});
* single: one ±1 verdict per pair, where "no model ties" is the best threshold and the official
  loop, which never tries it, must report a lower value.
Reports both values, whether they agree, and the time ratio (median of several runs).

    python benchmarks/tie_metric.py [--n 26500] [--repeats 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from unireward.metrics import accuracy_with_ties, accuracy_with_ties_videoalign


def make_data(n: int, kind: str, rng: np.random.Generator) -> tuple[list[int], list[float]]:
    human = rng.choice([1, -1, 0], size=n, p=[0.4, 0.4, 0.2])
    signal = human + rng.normal(0, 1.0, size=n)
    if kind == "continuous":
        margin = signal
    elif kind == "single":
        margin = np.where(signal > 0, 1.0, -1.0)
    else:  # two ±1 verdicts, each right with a probability that grows with the signal
        p_a = 1 / (1 + np.exp(-2 * signal))
        margin = ((rng.random(n) < p_a).astype(float) * 2 - 1 + (rng.random(n) < p_a).astype(float) * 2 - 1) / 2
    return human.tolist(), margin.tolist()


def timed(fn, h, m, repeats: int) -> tuple[tuple[float, float], float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(h, m)
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=26500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| margins | N | exact acc (eps) | VideoAlign acc (eps) | same | exact s | VideoAlign s | speed-up |")
    print("| --- | ---: | --- | --- | --- | ---: | ---: | ---: |")
    for kind in ("continuous", "discrete", "single"):
        h, m = make_data(args.n, kind, rng)
        (acc, eps), t_exact = timed(accuracy_with_ties, h, m, args.repeats)
        (acc_v, eps_v), t_va = timed(accuracy_with_ties_videoalign, h, m, args.repeats)
        print(f"| {kind} | {args.n} | {acc:.4f} ({eps:.3g}) | {acc_v:.4f} ({eps_v:.3g}) | {abs(acc - acc_v) < 1e-12} "
              f"| {t_exact:.4f} | {t_va:.4f} | {t_va / t_exact:.1f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
