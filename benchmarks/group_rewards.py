"""One Pref-GRPO group through the server: ``/v1/rewards`` against the official client pattern.

A group is 8 distinct 512x512 JPEGs (photo-like noise, ~100 KB each) of one caption; its rewards
are the win rates over all 28 pairs, each pair judged once in the order (i, j), i < j (image i
shown first), greedy, ``--max-new-tokens`` tokens per answer (EOS is disabled: random weights would
stop at arbitrary points, and every answer then costs the same decoding on both sides).

* official pattern: Pref-GRPO's client sends one chat request per pair (images first, then the
  official prompt text), one at a time, to a server at batch size 1 without a media cache;
* ``/v1/rewards``: the whole group in one request to a server at batch size 32 with its media cache
  (each image decoded and encoded once, all 28 pairs in one batch, one prefill per pair).

Both servers run in this process on 127.0.0.1 (uvicorn), over the same weights, one at a time;
every repeat uses a new group of images, so no repeat profits from an earlier one's cache. The
rewards (and every pair's text) must be identical; the script fails otherwise. Also printed: the
images each server ran through its vision tower (``unireward_vision_encoded_images_total``).

    python benchmarks/group_rewards.py --config tiny   # seconds: checks that it runs
    python benchmarks/group_rewards.py --config mid    # ~130M Qwen2.5-VL proportions, CPU
    python benchmarks/group_rewards.py --config 7b --device cuda
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench, add_arguments, machine_line  # noqa: E402
from judge_throughput import SHAPES, build_shaped, build_tiny  # noqa: E402

from unireward.judge import Judge, JudgeOptions, TransformersBackend
from unireward.judge.options import BatchOptions
from unireward.protocol.parser import parse_judgment
from unireward.protocol.templates import render_text
from unireward.serve import ServerLimits, create_app

CAPTION = "a lighthouse on a cliff at dusk"
GROUP = 8
DEFAULT_TOKENS = {"tiny": 16, "mid": 256, "7b": 256}


def photo_url(seed: int, size: int = 512) -> str:
    """A 512x512 JPEG data URL with real entropy (gradients plus noise), unique per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([(x + 40 * seed) % 256, (y * 0.5 + 20 * seed) % 256, (x + y) % 256], axis=-1)
    noisy = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy, "RGB").save(buf, format="JPEG", quality=95)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(backend: TransformersBackend, batch_size: int, cache_mb: int, tokens: int) -> Iterator[str]:
    import uvicorn

    backend.batch = BatchOptions(max_batch_size=batch_size)
    judge = Judge(backend, JudgeOptions(max_new_tokens=tokens))
    app = create_app(judge, ServerLimits(max_new_tokens=tokens), model_name="bench", batch_size=batch_size,
                     media_cache_mb=cache_mb)  # fmt: skip
    port = _port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def encoded_images(url: str) -> int:
    text = httpx.get(url + "/metrics", timeout=30).text
    m = re.search(r"^unireward_vision_encoded_images_total (\S+)$", text, re.M)
    return int(float(m.group(1))) if m else -1


def official_pattern(url: str, urls: list[str], tokens: int) -> tuple[list[float], dict[tuple[int, int], str]]:
    """Pref-GRPO's client: one chat request per pair, one after another; win rates from the verdicts."""
    text = render_text("image_generation", CAPTION)
    wins = [0.0] * len(urls)
    texts = {}
    with httpx.Client(timeout=3600) as c:
        for i, j in combinations(range(len(urls)), 2):
            content = [{"type": "image_url", "image_url": {"url": urls[k]}} for k in (i, j)]
            content.append({"type": "text", "text": text})
            r = c.post(url + "/v1/chat/completions", json={
                "model": "UnifiedReward", "messages": [{"role": "user", "content": content}],
                "temperature": 0, "max_tokens": tokens})  # fmt: skip
            r.raise_for_status()
            answer = r.json()["choices"][0]["message"]["content"]
            texts[(i, j)] = answer
            winner = parse_judgment(answer, "image_generation").winner
            wins[i] += 1.0 if winner == 1 else 0.5 if winner is None else 0.0
            wins[j] += 1.0 if winner == 2 else 0.5 if winner is None else 0.0
    return [w / (len(urls) - 1) for w in wins], texts


def grouped(url: str, urls: list[str], tokens: int) -> tuple[list[float], dict[tuple[int, int], str]]:
    r = httpx.post(url + "/v1/rewards", timeout=3600, json={
        "task": "image_generation", "prompt": CAPTION, "candidates": urls, "max_tokens": tokens, "temperature": 0})  # fmt: skip
    r.raise_for_status()
    body = r.json()
    return body["rewards"], {(j["i"], j["j"]): j["text"] for j in body["judgments"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=["tiny", "mid", "7b"], default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="tokens per answer (default: tiny 16, mid/7b 256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", default=None, help="also write the flat result dict here")
    add_arguments(ap)
    args = ap.parse_args(argv)
    tokens = args.max_new_tokens or DEFAULT_TOKENS[args.config]
    bench = Bench(f"group_rewards_{args.config}", args)

    with tempfile.TemporaryDirectory() as tmp:
        if args.config == "tiny":
            a = build_tiny(Path(tmp), args.seed)
            a.model.to(args.device)
        else:
            dtype = torch.float32 if args.config == "mid" else torch.bfloat16
            a = build_shaped(Path(tmp), args.device, args.seed, SHAPES[args.config], dtype)
        a.model.generation_config.eos_token_id = None  # every answer runs to `tokens`
        b = TransformersBackend(a.model, a.processor, a.family)  # the same weights, its own counters
        params_m = sum(p.numel() for p in a.model.parameters()) / 1e6
        groups = [[photo_url(1000 * g + i) for i in range(GROUP)] for g in range(bench.repeats + 1)]
        turn = {"official": 0, "grouped": 0}
        got: dict[str, list[Any]] = {"official": [], "grouped": []}

        with serving(b, 1, 0, tokens) as official_url, serving(a, 32, 256, tokens) as group_url:
            official_pattern(official_url, groups[-1][:2], 4)  # warm-up on images never timed
            grouped(group_url, groups[-1][2:4], 4)
            enc0 = {"official": encoded_images(official_url), "grouped": encoded_images(group_url)}

            def side(name: str, url: str, fn: Any) -> Any:
                def run() -> Any:
                    out = fn(url, groups[turn[name]], tokens)
                    turn[name] += 1
                    got[name].append(out)
                    return out

                return run

            t_official, t_grouped = bench.alternate({
                "official pattern: 28 chat requests, batch size 1": side("official", official_url, official_pattern),
                "/v1/rewards: one request, batch size 32": side("grouped", group_url, grouped),
            }, sync=(lambda: torch.cuda.synchronize()) if args.device.startswith("cuda") else None)  # fmt: skip
            per_group = {"official": (encoded_images(official_url) - enc0["official"]) / bench.repeats,
                         "grouped": (encoded_images(group_url) - enc0["grouped"]) / bench.repeats}  # fmt: skip

    same_rewards = sum(o[0] == g[0] for o, g in zip(got["official"], got["grouped"], strict=True))
    same_texts = sum(o[1] == g[1] for o, g in zip(got["official"], got["grouped"], strict=True))
    ratio = bench.ratio("/v1/rewards vs official pattern", t_official, t_grouped)
    bench.record("model_params_m", round(params_m, 1))
    bench.record("new_tokens", tokens)
    bench.record("identical_rewards", f"{same_rewards}/{bench.repeats}")
    bench.record("identical_pair_texts", f"{same_texts}/{bench.repeats}")
    bench.record("vision_encoded_per_group", per_group)
    result = bench.finish()

    print(f"machine: {machine_line(result['machine'])}; config {args.config} ({params_m:.0f}M parameters, "
          f"{a.model.dtype}) on {args.device}")  # fmt: skip
    print(f"one group of {GROUP} distinct 512x512 JPEGs, {GROUP * (GROUP - 1) // 2} pairs in order (i, j) i<j, "
          f"{tokens} new tokens each, greedy, {bench.repeats} runs (a new group each)")  # fmt: skip
    print(f"  official pattern (28 chat requests, batch size 1): {t_official}  "
          f"{per_group['official']:.0f} images encoded per group")  # fmt: skip
    print(f"  /v1/rewards (one request, batch size 32):          {t_grouped}  "
          f"{per_group['grouped']:.0f} images encoded per group")  # fmt: skip
    print(f"  rewards identical {same_rewards}/{bench.repeats}, every pair's text identical {same_texts}/{bench.repeats}")
    print(f"group of {GROUP} ({GROUP * (GROUP - 1) // 2} pairs): speed-up x{ratio.median:.1f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "config": args.config, "device": args.device, "machine": result["machine"], "new_tokens": tokens,
            "official_s": t_official.median, "grouped_s": t_grouped.median, "speedup": ratio.median,
            "identical_rewards": f"{same_rewards}/{bench.repeats}", "vision_encoded_per_group": per_group,
            "warnings": result["warnings"],
        }, indent=2) + "\n")  # fmt: skip
    if same_rewards != bench.repeats or same_texts != bench.repeats:
        print("FAIL: /v1/rewards and the 28 chat requests disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
