"""The GPU benchmarks in one command, within ~8 minutes, ending with one JSON summary on stdout.

1. judge throughput at Qwen2.5-VL-7B's shape (bf16, 16 pairs, 256 new tokens): the official
   one-pair-at-a-time loop against the batched backend, and G=8 sampling in one call (one shared
   prefill) against 8 calls and against ``num_return_sequences``;
   then one Pref-GRPO group of 8 at the same shape (64 new tokens, to fit the budget): ``/v1/rewards``
   against the official 28 chat requests to a batch-size-1 server (``group_rewards.py``);
2. video decoding of generated 1080p videos (30 s and 5 min): ``load_video`` against its sequential
   decode and qwen-vl-utils' decord reader;
3. LoRA GRPO steps (TRL) on the mid-size Qwen2.5-VL shape in bf16.

Each part runs as its own process under a time limit; its full JSON/Markdown lands in ``--out``. A
part that fails or runs out of time is reported as such and the others still run.

    python benchmarks/gpu_all.py --out bench-gpu          # on a GPU machine
    python benchmarks/gpu_all.py --reduced                # the same steps at toy sizes on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

FULL = {
    "judge": ["judge_throughput.py", "--config", "7b", "--device", "cuda", "--pairs", "16", "--max-new-tokens", "256",
              "--group", "8", "--repeats", "2"],
    "group": ["group_rewards.py", "--config", "7b", "--device", "cuda", "--max-new-tokens", "64", "--repeats", "2"],
    "video": ["video_decode.py", "--videos", "1080p:30", "1080p:300", "--methods", "unireward", "unireward-sequential",
              "qwen-decord-8", "--repeats", "3", "--sequential-repeats", "1"],
    "grpo": ["grpo_step.py", "--config", "mid", "--bf16", "--steps", "4", "--generations", "8", "--completion-length", "128"],
}  # fmt: skip
REDUCED = {
    "judge": ["judge_throughput.py", "--config", "tiny", "--pairs", "2", "--max-new-tokens", "4", "--group", "2",
              "--repeats", "1"],
    "group": ["group_rewards.py", "--config", "tiny", "--max-new-tokens", "4", "--repeats", "1"],
    "video": ["video_decode.py", "--videos", "144p:2", "--methods", "unireward", "unireward-sequential", "--repeats", "1"],
    "grpo": ["grpo_step.py", "--config", "tiny", "--steps", "2", "--generations", "2", "--completion-length", "4"],
}  # fmt: skip
# Share of the time budget each part may use (the judge's official loop is the long one).
SHARE = {"judge": 0.4, "group": 0.2, "video": 0.15, "grpo": 0.25}
RESULT_FILE = {"judge": "judge_throughput_{}.json", "group": "group_rewards_{}.json", "video": "video_decode.json",
               "grpo": "grpo_step_{}.json"}  # fmt: skip


def headline(part: str, result: dict[str, Any]) -> dict[str, Any]:
    """The few figures of a part worth a line in the summary."""
    t, r, v = result.get("timings", {}), result.get("ratios", {}), result.get("values", {})
    if part == "judge":
        return {
            "pairs_speedup": r.get("batched vs official", {}).get("median"),
            "group_speedup": next((x["median"] for k, x in r.items() if k.startswith("G=") and k.endswith("vs sequential")), None),
            "shared_prefill_speedup": next((x["median"] for k, x in r.items() if k.endswith("vs num_return_sequences")), None),
            "identical_greedy_group_rows": v.get("identical_greedy_group_rows"),
            "identical_greedy_outputs": v.get("identical_greedy_outputs"),
            "official_pairs_per_s": v.get("official_pairs_per_s"), "batched_pairs_per_s": v.get("batched_pairs_per_s"),
        }  # fmt: skip
    if part == "group":
        return {"speedup": r.get("/v1/rewards vs official pattern", {}).get("median"),
                "identical_rewards": v.get("identical_rewards"), "vision_encoded_per_group": v.get("vision_encoded_per_group"),
                "median_s": {k: x["median_s"] for k, x in t.items()}}  # fmt: skip
    if part == "video":
        return {
            "median_s": {k: x["median_s"] for k, x in t.items()},
            "peak_rss_mb": {k: x["peak"] for k, x in v.get("rss_mb", {}).items()},
            "ratios": {k: x["median"] for k, x in r.items()},
        }
    return {"step_s": t.get("LoRA GRPO step", {}).get("median_s"), "first_step_s": v.get("first_step_s"),
            "peak_gpu_memory_gb": v.get("peak_gpu_memory_gb")}  # fmt: skip


def run_part(part: str, argv: list[str], out: Path, timeout: float, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / argv[0]), *argv[1:], "--out", str(out)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 1), env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "wall_s": time.perf_counter() - t0, "error": f"over its {timeout:.0f} s share of the budget"}
    wall = time.perf_counter() - t0
    (out / f"{part}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        return {"ok": False, "wall_s": wall, "error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    config = argv[argv.index("--config") + 1] if "--config" in argv else ""
    result = json.loads((out / RESULT_FILE[part].format(config)).read_text())
    return {"ok": True, "wall_s": wall, "machine": result["machine"], "warnings": result["warnings"], **headline(part, result)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reduced", action="store_true", help="toy sizes on the CPU (what the test suite runs)")
    ap.add_argument("--budget-s", type=float, default=480.0, help="time for all parts together (default 8 minutes)")
    ap.add_argument("--parts", nargs="+", default=list(FULL), choices=list(FULL))
    ap.add_argument("--out", default=None, help="folder for each part's JSON/Markdown and logs (default: a temporary one)")
    args = ap.parse_args(argv)
    plan = REDUCED if args.reduced else FULL
    if not args.reduced:
        import torch

        if not torch.cuda.is_available():
            ap.error("no CUDA device: run on a GPU machine, or pass --reduced")
    out = Path(args.out or tempfile.mkdtemp(prefix="unireward-gpu-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    summary: dict[str, Any] = {"reduced": args.reduced, "budget_s": args.budget_s, "out": str(out), "parts": {}}
    start = time.perf_counter()
    for i, part in enumerate(args.parts):
        left = args.budget_s - (time.perf_counter() - start)
        # what is left, split among the parts still to run (time a part did not use goes to the next)
        share = left * SHARE[part] / sum(SHARE[p] for p in args.parts[i:])
        # The reduced form checks that every part runs, on machines of any speed: no time limit.
        summary["parts"][part] = run_part(part, plan[part], out, 3600.0 if args.reduced else share, env)
    summary["wall_s"] = time.perf_counter() - start
    summary["within_budget"] = summary["wall_s"] <= args.budget_s
    summary["ok"] = all(p["ok"] for p in summary["parts"].values())
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
