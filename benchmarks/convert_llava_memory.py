"""Peak memory and time of ``unireward convert-llava`` against the load-everything conversion.

The obvious conversion (transformers' own LLaVA-OneVision script does this) reads every shard into one
state dict, assigns it to the model and calls ``save_pretrained``: its peak memory grows with the
whole model. Ours renames and writes one shard at a time, so its peak should follow the largest shard.

The script builds a LLaVA-NeXT ``llava_qwen`` checkpoint of random weights (size set by the flags,
default about 0.8 GB in float32, in 4 shards), converts it both ways, each in a fresh process,
and reports peak resident memory (``VmHWM``, also above an interpreter that only imports the same
modules), wall time and the ratios. Both outputs are checked to hold the same tensors.

Each conversion runs ``--repeats`` times (alternating); times and peaks are medians, with ranges in
the harness's JSON/Markdown.

    python benchmarks/convert_llava_memory.py [--hidden 1024] [--layers 12] [--shards 4] [--keep DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench, add_arguments  # noqa: E402


def build_source(folder: Path, hidden: int, layers: int, shards: int, vision_layers: int = 4) -> float:
    """A LLaVA-NeXT checkpoint with a SigLIP-so400m-shaped tower; returns its size in GB."""
    import torch
    from safetensors.torch import save_file
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        PreTrainedTokenizerFast,
    )

    from unireward.models.tokenizer import train_tokenizer

    tok = PreTrainedTokenizerFast(tokenizer_object=train_tokenizer(512), eos_token="<|im_end|>", pad_token="<|endoftext|>")
    vocab = 32_000
    heads = hidden // 64
    config = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": 4 * hidden,
                     "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": max(1, heads // 4)},
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
                       "num_hidden_layers": vision_layers, "num_attention_heads": 16, "image_size": 384, "patch_size": 14,
                       "vision_use_head": False},
        image_token_index=len(tok), video_token_index=len(tok) + 1,
    )  # fmt: skip
    with torch.device("meta"):
        names = list(LlavaOnevisionForConditionalGeneration(config).state_dict().items())
    state = {}
    for key, t in names:
        key = key.replace("model.vision_tower.vision_model.", "model.vision_tower.")
        for new, old in (("model.language_model.", "model."), ("model.vision_tower.", "model.vision_tower.vision_tower.vision_model."),
                         ("model.multi_modal_projector.linear_1.", "model.mm_projector.0."),
                         ("model.multi_modal_projector.linear_2.", "model.mm_projector.2.")):  # fmt: skip
            if key.startswith(new):
                key = old + key[len(new) :]
                break
        state[key] = torch.randn(t.shape) * 0.02
    folder.mkdir(parents=True)
    keys = sorted(state)
    per = -(-len(keys) // shards)
    index = {}
    for i in range(shards):
        part = keys[i * per : (i + 1) * per]
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: state[k] for k in part}, folder / name)
        index.update(dict.fromkeys(part, name))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlavaQwenForCausalLM"], "model_type": "llava", "vocab_size": vocab, "hidden_size": hidden,
        "intermediate_size": 4 * hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": max(1, heads // 4), "rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": False,
        "torch_dtype": "float32", "image_aspect_ratio": "anyres_max_9", "image_grid_pinpoints": config.image_grid_pinpoints,
        "mm_hidden_size": 1152, "mm_patch_merge_type": "spatial_unpad", "mm_projector_type": "mlp2x_gelu",
        "mm_vision_tower": "google/siglip-so400m-patch14-384",
    }))  # fmt: skip
    tok.save_pretrained(folder)
    return sum(t.numel() * 4 for t in state.values()) / 1e9


def baseline() -> None:
    """The interpreter with what both conversions import, converting nothing."""
    import safetensors.torch  # noqa: F401
    import torch  # noqa: F401
    from transformers import LlavaOnevisionForConditionalGeneration  # noqa: F401

    import unireward.models.llava_convert  # noqa: F401


def convert_ours(src: str, out: str) -> None:
    from unireward.models.llava_convert import convert_llava_qwen

    convert_llava_qwen(src, out)


def convert_naive(src: str, out: str, reference: str) -> None:
    """Everything in memory at once, as transformers' conversion script: one state dict, assigned to a
    meta-device model, then ``save_pretrained``. The config is the one our conversion wrote."""
    import torch
    from safetensors.torch import load_file
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    from unireward.models.llava_convert import _MEMORY_TO_SAVED, _first_rename, rename_key

    state = {}
    for f in sorted(Path(src).glob("*.safetensors")):
        state.update(load_file(f))
    config = LlavaOnevisionConfig.from_pretrained(reference)
    with torch.device("meta"):
        model = LlavaOnevisionForConditionalGeneration(config)
    saved_to_memory = {_first_rename(k, _MEMORY_TO_SAVED): k for k in model.state_dict()}
    renamed = {saved_to_memory[rename_key(k)]: v for k, v in state.items() if rename_key(k) is not None}
    model.load_state_dict(renamed, assign=True, strict=True)
    model.save_pretrained(out)


def run_child(method: str, *args: str) -> tuple[float, float]:
    """(peak RSS in GB, seconds) of one conversion in a fresh interpreter, as the child measures it.

    The peak is ``VmHWM`` of the child's own address space: ``ru_maxrss`` would also count what the
    parent held when it forked (Linux keeps it across ``exec``)."""
    code = (
        "import re, sys, time; sys.path.insert(0, sys.argv[1]); import convert_llava_memory as b; "
        f"t0 = time.perf_counter(); b.{method}(*sys.argv[2:]); s = time.perf_counter() - t0; "
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1), s)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), *args], check=True, capture_output=True, text=True)
    rss_kb, seconds = proc.stdout.split()[-2:]
    return int(rss_kb) / 1e6, float(seconds)  # kB


def same_tensors(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    def read(folder: Path) -> dict:
        out = {}
        for f in folder.glob("*.safetensors"):
            out.update(load_file(f))
        return out

    x, y = read(a), read(b)
    if len(x) != len(y):
        return False
    # the naive way saves transformers' own key layout; compare by value multiset via sorted shapes+sums
    sig = lambda d: sorted((tuple(t.shape), round(float(t.double().sum()), 3)) for t in d.values())  # noqa: E731
    return sig(x) == sig(y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--vision-layers", type=int, default=4)
    ap.add_argument("--keep", default=None, help="work here instead of a temporary folder")
    add_arguments(ap)
    args = ap.parse_args()
    bench = Bench("convert_llava_memory", args)
    if args.keep is None:
        with tempfile.TemporaryDirectory(prefix="convert-bench-") as tmp:
            result = measure(Path(tmp), args, bench)
    else:
        result = measure(Path(args.keep), args, bench)
    bench.finish()
    print(json.dumps(result, indent=2))


def measure(work: Path, args: argparse.Namespace, bench: Bench) -> dict:
    src = work / "llava_next"
    if not src.exists():
        gb = build_source(src, args.hidden, args.layers, args.shards, args.vision_layers)
    else:
        gb = sum(f.stat().st_size for f in src.glob("*.safetensors")) / 1e9
    largest = max(f.stat().st_size for f in src.glob("*.safetensors")) / 1e9
    base_rss, _ = run_child("baseline")
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "naive": []}
    for _ in range(bench.repeats):  # alternating, so load bursts hit both
        shutil.rmtree(work / "ours", ignore_errors=True)
        shutil.rmtree(work / "naive", ignore_errors=True)
        runs["ours"].append(run_child("convert_ours", str(src), str(work / "ours")))
        runs["naive"].append(run_child("convert_naive", str(src), str(work / "naive"), str(work / "ours")))
    t_ours = bench.add_timing("convert-llava (shard by shard)", [s for _, s in runs["ours"]])
    t_naive = bench.add_timing("load everything, save_pretrained", [s for _, s in runs["naive"]])
    bench.ratio("time: load everything / ours", t_naive, t_ours)
    ours_rss = statistics.median(r for r, _ in runs["ours"])
    naive_rss = statistics.median(r for r, _ in runs["naive"])
    ours_s, naive_s = t_ours.median, t_naive.median
    result = {
        "checkpoint_gb": round(gb, 2), "largest_shard_gb": round(largest, 2),
        "shards": len(list(src.glob("*.safetensors"))),
        "interpreter_baseline_rss_gb": round(base_rss, 2),
        "ours": {"peak_rss_gb": round(ours_rss, 2), "above_baseline_gb": round(ours_rss - base_rss, 2), "seconds": round(ours_s, 1)},
        "load_everything": {"peak_rss_gb": round(naive_rss, 2), "above_baseline_gb": round(naive_rss - base_rss, 2),
                            "seconds": round(naive_s, 1)},
        "peak_memory_ratio": round(naive_rss / ours_rss, 2),
        "above_baseline_ratio": round((naive_rss - base_rss) / max(ours_rss - base_rss, 1e-9), 2),
        "time_ratio": round(naive_s / ours_s, 2),
        "same_tensors": same_tensors(work / "ours", work / "naive"),
    }  # fmt: skip
    bench.record("peak_rss_gb", {"ours": [r for r, _ in runs["ours"]], "load_everything": [r for r, _ in runs["naive"]],
                                 "interpreter_baseline": base_rss})  # fmt: skip
    for key in ("checkpoint_gb", "largest_shard_gb", "peak_memory_ratio", "above_baseline_ratio", "same_tensors"):
        bench.record(key, result[key])
    return result


if __name__ == "__main__":
    main()
