"""Load on ``unireward serve``: the Pref-GRPO request shape from 1, 8 and 32 concurrent ``openai``
clients, the batched server against the same server at batch size 1, in one run, ``--repeats`` times.

For each server (``--batch-size`` B and 1, each a real ``unireward serve`` process on 127.0.0.1):

1. ``/health`` latency (p50/p99) while one request carrying ``--heavy-images`` black
   ``--heavy-size``-square PNGs, each with one pixel of its own (a small upload that decodes to
   gigabytes at full size; no two alike, so each is decoded), is served;
2. for each concurrency C and each pattern, ``--repeats`` times (median and range of pairs/s; the
   speed-up is the median of the paired ratios, repeat r of one server against repeat r of the other):

   * ``pairs``: C threads, each an ``openai`` client sending ``--requests`` Pref-GRPO requests (two
     solid-colour JPEGs then the prompt, ``max_tokens`` 4096, ``do_sample: false``) one after another;
   * ``group``: C threads, each a Pref-GRPO trainer scoring its own group of ``--group-size`` distinct
     512x512 photo-like JPEGs: every pair (i, j), i < j, image i first, as a separate chat request,
     one after another (8 images: 28 requests, each image in 7 of them);

   every repeat uses new images, so no repeat is served from an earlier one's media cache;
3. the server's peak RSS (``VmHWM``) above its RSS once warmed up, and its
   ``unireward_vision_encoded_images_total`` / ``unireward_media_cache_hits_total`` counters.

Generations have a fixed length (``min_tokens`` = ``--max-new-tokens``; random weights would stop
at once), so both servers decode the same number of tokens. Prints one JSON object.

    python benchmarks/serve_load.py                  # tiny model, CPU (build with `unireward tiny-model`)
    python benchmarks/serve_load.py --model PATH --concurrency 1 8 32 --requests 4
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import cores, load_average  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROMPT = ("You are given a text caption and two generated images based on that caption. Your task is to evaluate "
          "and compare these images. Caption: a red cube on a wooden table")  # fmt: skip


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jpeg(color: tuple[int, int, int], size: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="JPEG", quality=95)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _photo(seed: int, size: int = 512) -> str:
    """A JPEG data URL of photo-like noise over gradients (~100 KB at 512x512), unique per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([(x + 40 * seed) % 256, (y * 0.5 + 20 * seed) % 256, (x + y) % 256], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=95)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _mem_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


class Server:
    def __init__(self, model: str, batch_size: int, max_new_tokens: int, log: Path, media_cache_mb: int = 256):
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "unireward.cli", "serve", "--model", model, "--port", str(self.port),
               "--batch-size", str(batch_size), "--max-new-tokens", str(max_new_tokens), "--no-access-log",
               "--max-images", "64", "--max-queue", "512", "--media-cache-mb", str(media_cache_mb)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.2)

    def rss_kb(self) -> int:
        return _mem_kb(self.proc.pid, "VmRSS")

    def peak_kb(self) -> int:
        return _mem_kb(self.proc.pid, "VmHWM")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def pair_requests(concurrency: int, requests: int, image_size: int, repeat: int) -> list[list[tuple[str, str]]]:
    """Per client, its ``requests`` pairs of solid-colour JPEGs (different in every repeat)."""
    out = []
    for c in range(concurrency):
        mine = []
        for r in range(requests):
            k = c * requests + r
            mine.append((_jpeg(((k * 37 + repeat * 101) % 256, 64 + repeat, 200), image_size),
                         _jpeg((200, (k * 53 + repeat * 101) % 256, 64 + repeat), image_size)))  # fmt: skip
        out.append(mine)
    return out


def group_requests(concurrency: int, group_size: int, repeat: int) -> list[list[tuple[str, str]]]:
    """Per client, every pair (i, j), i < j, of its own group of distinct 512x512 JPEGs, in Pref-GRPO's order."""
    out = []
    for c in range(concurrency):
        urls = [_photo(100_000 * repeat + 1000 * c + i) for i in range(group_size)]
        out.append([(urls[i], urls[j]) for i in range(group_size) for j in range(i + 1, group_size)])
    return out


def run_clients(url: str, per_client: list[list[tuple[str, str]]], tokens: int) -> dict[str, Any]:
    """One thread per client, each sending its requests one after another."""
    import openai

    latencies: list[float] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        oa = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
        for first, second in per_client[c]:
            content = [{"type": "image_url", "image_url": {"url": first}},
                       {"type": "image_url", "image_url": {"url": second}},
                       {"type": "text", "text": PROMPT}]  # fmt: skip
            t = time.perf_counter()
            oa.chat.completions.create(model="UnifiedReward", messages=[{"role": "user", "content": content}],
                                       max_tokens=4096, extra_body={"do_sample": False, "min_tokens": tokens})  # fmt: skip
            with lock:
                latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    with ThreadPoolExecutor(len(per_client)) as pool:
        list(pool.map(client, range(len(per_client))))
    wall = time.perf_counter() - start
    return {"concurrency": len(per_client), "pairs": len(latencies), "pairs_per_s": round(len(latencies) / wall, 3),
            "p50_s": round(_pct(latencies, 0.5), 3), "p99_s": round(_pct(latencies, 0.99), 3)}  # fmt: skip


def repeated(url: str, pattern: str, concurrency: int, args: argparse.Namespace) -> dict[str, Any]:
    """``--repeats`` runs of one pattern at one concurrency: the median run's figures, every run's pairs/s."""
    runs = []
    for r in range(args.repeats):
        per_client = (pair_requests(concurrency, args.requests, args.image_size, r) if pattern == "pairs"
                      else group_requests(concurrency, args.group_size, r))  # fmt: skip
        runs.append(run_clients(url, per_client, args.max_new_tokens))
    rates = [x["pairs_per_s"] for x in runs]
    median = sorted(runs, key=lambda x: x["pairs_per_s"])[len(runs) // 2]
    return {**median, "pattern": pattern, "pairs_per_s_runs": rates, "pairs_per_s_range": [min(rates), max(rates)]}


def counters(url: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        for name in ("vision_encoded_images_total", "media_cache_hits_total"):
            if line.startswith(f"unireward_{name} "):
                out[name] = float(line.split()[1])
    return out


def health_during_heavy(url: str, n_images: int, size: int) -> dict[str, Any]:
    parts = []
    for i in range(n_images):  # each image different (one pixel), so the media cache cannot fold them into one
        img = Image.new("RGB", (size, size))
        img.putpixel((0, 0), (i % 256, i // 256, 1))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        parts.append({"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}})
    body = {"model": "UnifiedReward", "messages": [{"role": "user", "content": parts + [{"type": "text", "text": PROMPT}]}],
            "max_tokens": 1}  # fmt: skip
    payload = json.dumps(body).encode()
    done = threading.Event()
    result: dict[str, Any] = {}

    def heavy() -> None:
        t = time.perf_counter()
        r = httpx.post(url + "/v1/chat/completions", content=payload, headers={"content-type": "application/json"}, timeout=600)
        result.update(status=r.status_code, seconds=round(time.perf_counter() - t, 3))
        done.set()

    thread = threading.Thread(target=heavy)
    thread.start()
    pings: list[float] = []
    with httpx.Client() as c:
        while not done.is_set():
            t = time.perf_counter()
            c.get(url + "/health", timeout=60)
            pings.append(time.perf_counter() - t)
            time.sleep(0.01)
    thread.join()
    return {"heavy_request_bytes": len(payload), "heavy_status": result.get("status"), "heavy_seconds": result.get("seconds"),
            "health_pings": len(pings), "health_p50_ms": round(1000 * _pct(pings, 0.5), 1) if pings else None,
            "health_p99_ms": round(1000 * _pct(pings, 0.99), 1) if pings else None}  # fmt: skip


def bench_server(model: str, batch_size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server = Server(model, batch_size, args.max_new_tokens, workdir / f"server-b{batch_size}.log", args.media_cache_mb)
    try:
        run_clients(server.url, pair_requests(2, 1, args.image_size, repeat=99), args.max_new_tokens)  # warm-up
        base = server.rss_kb()
        out: dict[str, Any] = {"batch_size": batch_size, "rss_after_warmup_mb": round(base / 1024, 1)}
        out["health_during_heavy"] = health_during_heavy(server.url, args.heavy_images, args.heavy_size)
        out["clients"] = [repeated(server.url, pattern, c, args) for pattern in args.patterns for c in args.concurrency]
        out["peak_rss_growth_mb"] = round((server.peak_kb() - base) / 1024, 1)
        out["counters"] = counters(server.url)
        return out
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model folder (default: a tiny Qwen2.5-VL built offline)")
    p.add_argument("--batch-size", type=int, default=32, help="the batched server's --batch-size")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--requests", type=int, default=4, help="requests per client (pairs pattern)")
    p.add_argument("--patterns", nargs="+", choices=["pairs", "group"], default=["pairs", "group"])
    p.add_argument("--group-size", type=int, default=8, help="images per client's group (group pattern)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each pattern and concurrency")
    p.add_argument("--media-cache-mb", type=int, default=256, help="both servers' --media-cache-mb (0: off)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="server cap; every answer has this length")
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--heavy-images", type=int, default=32)
    p.add_argument("--heavy-size", type=int, default=4096)
    args = p.parse_args(argv)
    if args.repeats < 1 or args.group_size < 2:
        p.error("--repeats must be >= 1 and --group-size >= 2")
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = args.model
        if model is None:
            from unireward.models import get_family

            model = str(get_family("qwen2_5_vl").build_tiny(workdir / "tiny"))
        batched = bench_server(model, args.batch_size, args, workdir)
        single = bench_server(model, 1, args, workdir)
    speedup: dict[str, dict[str, Any]] = {}
    for b, s in zip(batched["clients"], single["clients"], strict=True):
        ratios = sorted(x / y for x, y in zip(b["pairs_per_s_runs"], s["pairs_per_s_runs"], strict=True))
        speedup.setdefault(b["pattern"], {})[str(b["concurrency"])] = {
            "median": round(ratios[len(ratios) // 2], 2), "range": [round(ratios[0], 2), round(ratios[-1], 2)]}
    load_after = load_average()
    print(json.dumps({"model": args.model or "tiny qwen2_5_vl", "cpus": os.cpu_count(), "machine": platform.machine(),
                      "load_average_before_after": [load_before, load_after],
                      "busy": max(load_before, load_after) > cores(), "repeats": args.repeats,
                      "max_new_tokens": args.max_new_tokens, "batched": batched, "batch_size_1": single,
                      "speedup_pairs_per_s": speedup}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
