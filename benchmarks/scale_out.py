"""Scale-out: pairs/s of ``judge --engine ray`` with 1 and 2 workers against the local engine, and of
the reward gateway over 1 and 2 upstream ``unireward serve`` processes against one server direct.

Offline (``judge --input``): ``--pairs`` pairs of distinct 512x512 photo-like JPEGs, judged greedy with
``--max-new-tokens``; each Ray run starts Ray on this machine (or joins ``--ray-address``), starts its
actor pool, loads one judge per worker and judges the file, so its time includes Ray's start-up,
which is reported apart as the per-run overhead over the local engine. Every run writes a fresh
output; the rows of all runs must be equal (checked: the engines must agree before their speed
means anything).

Online (``/v1/rewards``): ``--clients`` threads each send ``--groups`` groups of ``--group-size``
images (every pair judged once) to one upstream directly, and to a gateway
(``unireward serve --upstream ...``) over 1 and over 2 upstreams; pairs/s = pairs / wall time.

On a 2-core machine two workers share the same two cores, so do not expect x2 there; run it where
each worker has its own cores or GPU (``--gpus-per-worker 1``). Ray binds the machine's external
address: run under ``unshare -n sh -c 'ip link set lo up && ...'`` to keep it on loopback.

    python benchmarks/scale_out.py --smoke                 # tiny sizes: checks that it runs
    python benchmarks/scale_out.py --out docs/bench        # tiny model, default sizes
    python benchmarks/scale_out.py --model PATH --gpus-per-worker 1 --pairs 256 --max-new-tokens 512
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench, add_arguments  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from serve_util import data_url, free_port, running, wait_healthy  # noqa: E402


def _photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:512, 0:512]
    base = np.stack([(x + 40 * seed) % 256, (y * 0.5 + 20 * seed) % 256, (x + y) % 256], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8), "RGB")


def _pairs_file(root: Path, n: int) -> Path:
    images = []
    for i in range(max(4, n // 2)):
        images.append(root / f"img{i}.jpg")
        _photo(i).save(images[-1], quality=90)
    path = root / "pairs.jsonl"
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"p{i}", "task": "image_generation", "prompt": f"a lighthouse, take {i}",
                                "candidates": [str(images[i % len(images)]), str(images[(3 * i + 1) % len(images)])],
                                "label": 1}) + "\n")  # fmt: skip
    return path


def offline(bench: Bench, args: argparse.Namespace, model: str, root: Path) -> None:
    from unireward.cli import main

    pairs = _pairs_file(root, args.pairs)
    outputs: list[Path] = []

    def judge(label: str, *extra: str) -> Any:
        def run() -> None:
            out = root / f"{label}-{len(outputs)}.jsonl"
            outputs.append(out)
            cmd = ["judge", "--model", model, "--input", str(pairs), "--output", str(out), "--no-progress",
                   "--max-new-tokens", str(args.max_new_tokens), "--chunk-size", str(args.chunk_size), *extra]  # fmt: skip
            with contextlib.redirect_stdout(sys.stderr):  # the command's summary line; stdout is ours
                rc = main(cmd)
            if rc != 0:
                raise RuntimeError(f"{label} failed")

        return run

    ray = ["--engine", "ray", "--cpus-per-worker", str(args.cpus_per_worker), "--gpus-per-worker", str(args.gpus_per_worker)]
    if args.ray_address:
        ray += ["--ray-address", args.ray_address]
    runs = {"local engine": judge("local"), "ray, 1 worker": judge("ray1", *ray, "--num-workers", "1"),
            "ray, 2 workers": judge("ray2", *ray, "--num-workers", "2")}  # fmt: skip
    local, one, two = bench.alternate(runs)
    rows = [[{k: v for k, v in json.loads(line).items()} for line in out.read_text().splitlines()] for out in outputs]
    agree = all(r == rows[0] for r in rows)
    bench.record("offline_rows_equal_across_engines", agree)
    for t in (local, one, two):
        bench.record(f"offline pairs/s, {t.label}", round(args.pairs / t.median, 3))
    bench.record("ray per-run overhead over the local engine, 1 worker (s)", round(one.median - local.median, 2))
    bench.ratio("ray 1 worker / 2 workers (time)", one, two)
    if not agree:
        raise RuntimeError("the engines wrote different rows")


def _upstream(model: str, args: argparse.Namespace) -> tuple[str, subprocess.Popen]:
    port = free_port()
    cmd = [sys.executable, "-m", "unireward.cli", "serve", "--model", model, "--port", str(port), "--no-access-log",
           "--max-new-tokens", str(args.max_new_tokens), "--max-prompt-tokens", "8192", "--batch-size", str(args.batch_size)]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, timeout=300)
    return url, proc


def online(bench: Bench, args: argparse.Namespace, model: str) -> None:
    import httpx

    from unireward.serve import ServerLimits
    from unireward.serve.gateway import create_gateway

    seed = iter(range(10_000, 10**9))
    n_pairs = args.clients * args.groups * args.group_size * (args.group_size - 1) // 2

    def load(url: str) -> Any:
        def run() -> None:
            groups = [[data_url(_photo(next(seed))) for _ in range(args.group_size)] for _ in range(args.clients * args.groups)]
            failures: list[str] = []

            def client(mine: list[list[str]]) -> None:
                for g in mine:
                    r = httpx.post(url + "/v1/rewards", timeout=600, json={"task": "image_generation", "prompt": "a lighthouse",
                                                                           "candidates": g})  # fmt: skip
                    if r.status_code != 200:
                        failures.append(r.text[:200])

            threads = [threading.Thread(target=client, args=(groups[c :: args.clients],)) for c in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if failures:
                raise RuntimeError(failures[0])

        return run

    ups = [_upstream(model, args) for _ in range(2)]
    try:
        limits = ServerLimits(max_new_tokens=args.max_new_tokens, max_prompt_tokens=8192)
        with running(create_gateway([ups[0][0] + "/v1"], limits, concurrency=args.batch_size)) as gw1, \
             running(create_gateway([u + "/v1" for u, _ in ups], limits, concurrency=args.batch_size)) as gw2:  # fmt: skip
            direct, g1, g2 = bench.alternate({"one server, direct": load(ups[0][0]), "gateway, 1 upstream": load(gw1),
                                              "gateway, 2 upstreams": load(gw2)})  # fmt: skip
        for t in (direct, g1, g2):
            bench.record(f"online pairs/s, {t.label}", round(n_pairs / t.median, 3))
        bench.ratio("gateway 1 upstream / 2 upstreams (time)", g1, g2)
        bench.ratio("gateway over 1 upstream / direct (time)", g1, direct)
    finally:
        for _, p in ups:
            p.terminate()
            p.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(ap, repeats=3)
    ap.add_argument("--model", default=None, help="judge model folder (default: a tiny random Qwen2.5-VL)")
    ap.add_argument("--pairs", type=int, default=32, help="offline: pairs judged per run")
    ap.add_argument("--chunk-size", type=int, default=4, help="offline: pairs per chunk (one Ray task)")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting one per run")
    ap.add_argument("--cpus-per-worker", type=float, default=1.0)
    ap.add_argument("--gpus-per-worker", type=float, default=0.0)
    ap.add_argument("--clients", type=int, default=4, help="online: concurrent /v1/rewards clients")
    ap.add_argument("--groups", type=int, default=2, help="online: groups each client sends per run")
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8, help="online: each upstream's batch size and concurrency")
    ap.add_argument("--skip", choices=("offline", "online"), action="append", default=[])
    ap.add_argument("--smoke", action="store_true", help="smallest sizes, one run: checks that the script works")
    args = ap.parse_args()
    if args.smoke:
        args.repeats, args.pairs, args.chunk_size, args.max_new_tokens = 1, 4, 2, 2
        args.clients, args.groups, args.group_size = 1, 1, 3
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    bench = Bench("scale_out", args)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model
        if model is None:
            from unireward.models import get_family

            model = str(get_family("qwen2_5_vl").build_tiny(root / "tiny"))
        bench.record("model", args.model or "tiny random Qwen2.5-VL (synthetic weights)")
        started = time.perf_counter()
        if "offline" not in args.skip:
            offline(bench, args, model, root)
        if "online" not in args.skip:
            online(bench, args, model)
        bench.record("benchmark_wall_s", round(time.perf_counter() - started, 1))
    result = bench.finish()
    print(json.dumps({k: v for k, v in result["values"].items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
