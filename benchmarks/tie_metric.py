"""Exact tie-calibrated accuracy vs VideoAlign's loop on VideoGen-RewardBench-sized random data.

Two margin kinds, 26.5K pairs each (human labels ~ 40% A, 40% B, 20% tie, correlated with the margin):
* continuous: a scalar reward model (every |margin| distinct);
* discrete: a generative judge judged in both orders (margin in {-1, -0.5, 0, 0.5, 1});
* single: one ±1 verdict per pair, where "no model ties" is the best threshold and the official
  loop, which never tries it, must report a lower value.
Reports both values, whether they agree, and the time ratio (median and range of paired runs).

    python benchmarks/tie_metric.py [--n 26500] [--repeats 5] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench, add_arguments  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=26500)
    ap.add_argument("--seed", type=int, default=0)
    add_arguments(ap, repeats=5)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    bench = Bench("tie_metric", args)
    accuracy = {}
    print("| margins | N | exact acc (eps) | VideoAlign acc (eps) | same | exact s | VideoAlign s | speed-up |")
    print("| --- | ---: | --- | --- | --- | ---: | ---: | ---: |")
    for kind in ("continuous", "discrete", "single"):
        h, m = make_data(args.n, kind, rng)
        exact, videoalign = bench.alternate({
            f"exact, {kind}": lambda: accuracy_with_ties(h, m),  # noqa: B023 (called within the iteration)
            f"VideoAlign loop, {kind}": lambda: accuracy_with_ties_videoalign(h, m),  # noqa: B023
        })  # fmt: skip
        ratio = bench.ratio(f"VideoAlign / exact, {kind}", videoalign, exact)
        (acc, eps), (acc_v, eps_v) = exact.result, videoalign.result  # type: ignore[attr-defined]
        accuracy[kind] = {"exact": acc, "exact_eps": eps, "videoalign": acc_v, "videoalign_eps": eps_v,
                          "same": abs(acc - acc_v) < 1e-12}  # fmt: skip
        print(f"| {kind} | {args.n} | {acc:.4f} ({eps:.3g}) | {acc_v:.4f} ({eps_v:.3g}) | {accuracy[kind]['same']} "
              f"| {exact.median:.4f} | {videoalign.median:.4f} | {ratio} |")  # fmt: skip
    bench.record("accuracy", accuracy)
    bench.finish()


if __name__ == "__main__":
    main()
