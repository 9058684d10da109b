"""Peak memory of SFT data loading: eager (every image decoded into an in-memory dataset before the first
step) against streaming (rows indexed on disk, media loaded per batch), at two data sizes, in one run.

Each measurement runs in a fresh process: build the dataset from N synthetic pairs (real PNG files on
disk, one image pair per record), then 5 SFT steps of a tiny random Qwen2.5-VL on the CPU. It reports
the process's peak RSS and its peak above the interpreter with the model loaded (the part the data
adds). Goal: streaming's peak at the large size within 1.2x of its peak at the small size.

    python benchmarks/train_memory.py --out docs/bench      # 1,000 vs 20,000 pairs (about 2 GB of RAM eager)
    python benchmarks/train_memory.py --sizes 20,40 --steps 2 --image-size 64 --repeats 1   # a quick check

Numbers are only meaningful on a quiet machine. The data is synthetic; only memory is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import Bench, add_arguments, peak_rss_mb


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_data(root: Path, n: int, size: int) -> Path:
    """``n`` image-generation records with two distinct PNG files each, and a short CoT target."""
    import random

    from PIL import Image, ImageDraw

    from unireward.data.schema import PreferencePair
    from unireward.rows import append_rows

    path = root / f"sft_{n}.jsonl"
    if path.exists():
        return path
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    rows = []
    for i in range(n):
        names = []
        for side in "ab":
            name = f"{i:06d}_{side}.png"
            if not (media / name).exists():
                img = Image.new("RGB", (size, size), (128, 128, 128))
                draw = ImageDraw.Draw(img)
                for _ in range(4):
                    x, y = rng.randrange(size), rng.randrange(size)
                    colour = tuple(rng.randrange(256) for _ in range(3))
                    draw.rectangle([x, y, min(size, x + size // 3), min(size, y + size // 3)], fill=colour)
                img.save(media / name)
            names.append(name)
        pair = PreferencePair(id=f"p{i}", task="image_generation", prompt=f"shapes {i}", candidates=tuple(names), label=1 + i % 2)
        rows.append({"pair": pair.to_dict(), "completion": f"<think>shapes</think><answer>{pair.label_text}</answer>"})
    append_rows(path, rows)
    return path


def child(mode: str, records: Path, model: Path, steps: int, out: Path) -> dict:
    """One measurement, in this process."""
    from trl import SFTTrainer

    from unireward.media import VisionBudget
    from unireward.train.sft import SFTStageConfig, load_policy

    cfg = SFTStageConfig(model=str(model), train_file=str(records), output_dir=str(out), media_root=str(records.parent / "media"),
                         template_family="unireward-compact", learning_rate=1e-3, per_device_train_batch_size=4,
                         gradient_accumulation_steps=1, warmup_ratio=0.0, max_steps=steps, save_steps=10_000,
                         logging_steps=1)  # fmt: skip
    args = cfg.trl_args()
    policy, processor, _ = load_policy(cfg.model, None, True, None)
    base = _rss_mb()
    started = time.perf_counter()
    budget = VisionBudget()
    if mode == "eager":
        from unireward.rows import read_rows
        from unireward.train.records import iter_rows, to_dataset

        rows = list(iter_rows(read_rows(records), cfg.media_root, budget, with_completion=True, family=cfg.template_family))
        dataset = to_dataset(rows)
    else:
        from unireward.train.stream import lazy_dataset

        dataset = lazy_dataset(records, out / "rows.arrow", "sft", cfg.media_root, budget, cfg.template_family)
    prepared = time.perf_counter() - started
    trainer = SFTTrainer(model=policy, args=args, train_dataset=dataset, processing_class=processor)
    trainer.train()
    return {"mode": mode, "pairs": len(dataset), "baseline_mb": round(base, 1), "peak_mb": round(peak_rss_mb(), 1),
            "peak_above_baseline_mb": round(peak_rss_mb() - base, 1), "prepare_s": round(prepared, 2),
            "total_s": round(time.perf_counter() - started, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,20000", help="two data sizes (pairs), comma-separated")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=128, help="side of each synthetic PNG (pixels)")
    ap.add_argument("--modes", default="eager,streaming")
    ap.add_argument("--work", default=None, help="folder for data and runs (default: a temporary one)")
    ap.add_argument("--child", nargs=4, metavar=("MODE", "RECORDS", "MODEL", "OUT"), help=argparse.SUPPRESS)
    add_arguments(ap, repeats=1)
    a = ap.parse_args()
    if a.child:
        mode, records, model, out = a.child
        print(json.dumps(child(mode, Path(records), Path(model), a.steps, Path(out))))
        return

    bench = Bench("train_memory", a)
    work = Path(a.work or tempfile.mkdtemp(prefix="unireward-train-memory-"))
    from unireward.models import get_family

    model = work / "tiny"
    if not (model / "config.json").exists():
        get_family("qwen2_5_vl").build_tiny(model)
    sizes = [int(s) for s in a.sizes.split(",")]
    modes = a.modes.split(",")
    above: dict[tuple[str, int], float] = {}
    for n in sizes:
        records = make_data(work, n, a.image_size)
        for mode in modes:
            runs = []
            for r in range(bench.repeats):
                out = work / f"run_{mode}_{n}_{r}"
                cmd = [sys.executable, __file__, "--steps", str(a.steps), "--child", mode, str(records), str(model), str(out)]
                proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
                if proc.returncode != 0:
                    sys.exit(f"{mode} at {n} pairs failed:\n{proc.stderr[-3000:]}")
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            bench.add_timing(f"{mode} {n} pairs: prepare + {a.steps} steps", [r["total_s"] for r in runs])
            for key in ("baseline_mb", "peak_mb", "peak_above_baseline_mb"):
                bench.record(f"{mode} {n} pairs {key}", statistics.median(r[key] for r in runs))
            above[(mode, n)] = statistics.median(r["peak_above_baseline_mb"] for r in runs)
    for mode in modes:
        small, large = above.get((mode, sizes[0])), above.get((mode, sizes[-1]))
        if small and large and len(sizes) == 2:
            bench.record(f"{mode} growth of the peak above baseline, {sizes[0]} -> {sizes[1]} pairs", round(large / small, 2))
    bench.finish()


if __name__ == "__main__":
    main()
