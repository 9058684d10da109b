"""Load on ``unireward serve``: the Pref-GRPO request shape from 1, 8 and 32 concurrent ``openai``
clients, the batched server against the same server at batch size 1, in one run.

For each server (``--batch-size`` B and 1, each a real ``unireward serve`` process on 127.0.0.1):

1. ``/health`` latency (p50/p99) while one request carrying ``--heavy-images`` zero-filled
   ``--heavy-size``-square PNGs (a small upload that decodes to gigabytes at full size) is served;
2. for each concurrency C: C threads, each an ``openai`` client sending ``--requests`` Pref-GRPO
   requests (two JPEG images then the prompt, ``max_tokens`` 4096, ``do_sample: false``) one after
   another: pairs/s, p50/p99 latency;
3. the server's peak RSS (``VmHWM``) above its RSS once warmed up.

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
from PIL import Image

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


def _mem_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


class Server:
    def __init__(self, model: str, batch_size: int, max_new_tokens: int, log: Path):
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "unireward.cli", "serve", "--model", model, "--port", str(self.port),
               "--batch-size", str(batch_size), "--max-new-tokens", str(max_new_tokens), "--no-access-log",
               "--max-images", "64", "--max-queue", "512"]  # fmt: skip
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


def run_clients(url: str, concurrency: int, requests: int, tokens: int, image_size: int) -> dict[str, Any]:
    import openai

    latencies: list[float] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        oa = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
        for r in range(requests):
            k = c * requests + r
            content = [{"type": "image_url", "image_url": {"url": _jpeg(((k * 37) % 256, 64, 200), image_size)}},
                       {"type": "image_url", "image_url": {"url": _jpeg((200, (k * 53) % 256, 64), image_size)}},
                       {"type": "text", "text": PROMPT}]  # fmt: skip
            t = time.perf_counter()
            oa.chat.completions.create(model="UnifiedReward", messages=[{"role": "user", "content": content}],
                                       max_tokens=4096, extra_body={"do_sample": False, "min_tokens": tokens})  # fmt: skip
            with lock:
                latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    wall = time.perf_counter() - start
    return {"concurrency": concurrency, "pairs": len(latencies), "pairs_per_s": round(len(latencies) / wall, 3),
            "p50_s": round(_pct(latencies, 0.5), 3), "p99_s": round(_pct(latencies, 0.99), 3)}  # fmt: skip


def health_during_heavy(url: str, n_images: int, size: int) -> dict[str, Any]:
    buf = io.BytesIO()
    Image.new("RGB", (size, size)).save(buf, format="PNG")
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}}
    body = {"model": "UnifiedReward", "messages": [{"role": "user", "content": [part] * n_images + [{"type": "text", "text": PROMPT}]}],
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
    server = Server(model, batch_size, args.max_new_tokens, workdir / f"server-b{batch_size}.log")
    try:
        run_clients(server.url, 2, 1, args.max_new_tokens, args.image_size)  # warm-up
        base = server.rss_kb()
        out: dict[str, Any] = {"batch_size": batch_size, "rss_after_warmup_mb": round(base / 1024, 1)}
        out["health_during_heavy"] = health_during_heavy(server.url, args.heavy_images, args.heavy_size)
        out["clients"] = [run_clients(server.url, c, args.requests, args.max_new_tokens, args.image_size) for c in args.concurrency]
        out["peak_rss_growth_mb"] = round((server.peak_kb() - base) / 1024, 1)
        return out
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model folder (default: a tiny Qwen2.5-VL built offline)")
    p.add_argument("--batch-size", type=int, default=32, help="the batched server's --batch-size")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--requests", type=int, default=4, help="requests per client")
    p.add_argument("--max-new-tokens", type=int, default=32, help="server cap; every answer has this length")
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--heavy-images", type=int, default=32)
    p.add_argument("--heavy-size", type=int, default=4096)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = args.model
        if model is None:
            from unireward.models import get_family

            model = str(get_family("qwen2_5_vl").build_tiny(workdir / "tiny"))
        batched = bench_server(model, args.batch_size, args, workdir)
        single = bench_server(model, 1, args, workdir)
    speedup = {str(b["concurrency"]): round(b["pairs_per_s"] / s["pairs_per_s"], 2)
               for b, s in zip(batched["clients"], single["clients"], strict=True)}  # fmt: skip
    print(json.dumps({"model": args.model or "tiny qwen2_5_vl", "cpus": os.cpu_count(), "machine": platform.machine(),
                      "max_new_tokens": args.max_new_tokens, "batched": batched, "batch_size_1": single,
                      "speedup_pairs_per_s": speedup}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
