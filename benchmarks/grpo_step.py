"""Seconds per LoRA GRPO step (TRL's GRPOTrainer through ``unireward.train.grpo.run_grpo``).

Synthetic image/video pairs of all four tasks, G completions per prompt of a fixed length, the
paper's rewards. The first step (compilation, allocator warm-up) is reported apart; the others are
the measurement.

    python benchmarks/grpo_step.py                                   # tiny model, CPU
    python benchmarks/grpo_step.py --config mid --bf16 --steps 4     # on a GPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench, add_arguments  # noqa: E402


def build_model(work: Path, config: str, seed: int, bf16: bool) -> Path:
    import torch

    from unireward.models import get_family

    if config == "tiny":
        return get_family("qwen2_5_vl").build_tiny(work / "tiny", seed=seed)
    import judge_throughput as jt

    backend = jt.build_shaped(work, "cpu", seed, jt.SHAPES[config], torch.bfloat16 if bf16 else torch.float32)
    out = work / config
    backend.model.save_pretrained(out)
    backend.processor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=["tiny", "mid", "7b"], default="tiny")
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps; the first is warm-up")
    ap.add_argument("--generations", type=int, default=8, help="G completions per prompt")
    ap.add_argument("--prompts-per-step", type=int, default=1)
    ap.add_argument("--completion-length", type=int, default=64)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    add_arguments(ap, repeats=1)
    args = ap.parse_args(argv)
    if args.steps < 2:
        ap.error("--steps must be >= 2 (the first is warm-up)")

    from transformers import TrainerCallback

    from unireward.data.schema import read_pairs
    from unireward.demo.synthetic import SyntheticConfig, generate
    from unireward.protocol.tasks import THINK_TASKS
    from unireward.rows import append_rows
    from unireward.train.grpo import GRPOStageConfig, run_grpo

    bench = Bench(f"grpo_step_{args.config}", args)
    times: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, *a, **kw):  # type: ignore[no-untyped-def]
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **kw):  # type: ignore[no-untyped-def]
            times.append(time.perf_counter() - self.t0)

    with tempfile.TemporaryDirectory(prefix="grpo-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        model = build_model(work, args.config, args.seed, args.bf16)
        bench.record("build_model_s", time.perf_counter() - t0)
        n = args.steps * args.prompts_per_step
        generate(work / "syn", SyntheticConfig(n_per_task={t.value: -(-n // len(THINK_TASKS)) for t in THINK_TASKS}, seed=args.seed), "train")
        records = work / "grpo.jsonl"
        append_rows(records, [{"pair": p.to_dict()} for p in read_pairs(work / "syn" / "train.jsonl")])
        cfg = GRPOStageConfig(
            model=str(model), train_file=str(records), output_dir=str(work / "run"), media_root=str(work / "syn"),
            template_family="unireward-compact", num_generations=args.generations,
            per_device_train_batch_size=args.generations * args.prompts_per_step, max_completion_length=args.completion_length,
            learning_rate=1e-5, beta=0.0, max_steps=args.steps, save_steps=10_000, bf16=args.bf16,
            lora={"r": 16, "alpha": 32, "dropout": 0.0}, seed=args.seed,
        )  # fmt: skip
        t0 = time.perf_counter()
        run_grpo(cfg, callbacks=[StepClock()])
        bench.record("run_s", time.perf_counter() - t0)
        summary = json.loads((work / "run" / "grpo_summary.json").read_text())
    bench.record("steps", summary["steps"])
    bench.record("first_step_s", times[0])
    bench.repeats = len(times) - 1  # the steps after the first are the runs
    bench.add_timing("LoRA GRPO step", times[1:], note=f"G={args.generations}, {args.completion_length} new tokens")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        bench.record("peak_gpu_memory_gb", torch.cuda.max_memory_allocated() / 1e9)
    result = bench.finish()
    print(json.dumps({"step_s": result["timings"]["LoRA GRPO step"], "steps": summary["steps"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
