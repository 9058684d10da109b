"""The reward gateway (``unireward serve --upstream ...``) over three real ``unireward serve``
processes on 127.0.0.1 with a tiny model, one of them killed mid-run: every request is answered, the
rewards and judgment texts equal a single server's (greedy), and every live upstream got traffic."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from serve_util import data_url, free_port, running, wait_healthy

from unireward.serve import ServerLimits
from unireward.serve.gateway import create_gateway

pytestmark = pytest.mark.timeout(600)

NEW_TOKENS = 8
PROMPT = "a lighthouse on a cliff at dusk"
GROUPS = 6  # of 4 images: 6 pairs each


def _photo(seed: int) -> Image.Image:
    """A 512x512 image with JPEG entropy (gradients plus noise), unique per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:512, 0:512]
    base = np.stack([(x + 40 * seed) % 256, (y * 0.5 + 20 * seed) % 256, (x + y) % 256], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def wide_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with wider random weights, so its answers depend on the images."""
    import torch

    from unireward.judge import TransformersBackend

    out = tmp_path_factory.mktemp("wide") / "model"
    shutil.copytree(tiny_model, out)
    local = TransformersBackend.load(str(tiny_model))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in local.model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3, generator=gen)
    local.model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def upstreams(wide_model: Path) -> Iterator[list[tuple[str, subprocess.Popen]]]:
    """Three ``unireward serve`` processes (one request per generate call, so greedy answers do not
    depend on what else is batched)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    procs = []
    for _ in range(3):
        port = free_port()
        cmd = [sys.executable, "-m", "unireward.cli", "serve", "--model", str(wide_model), "--port", str(port),
               "--batch-size", "1", "--max-new-tokens", str(NEW_TOKENS), "--max-prompt-tokens", "4096",
               "--no-access-log"]  # fmt: skip
        procs.append((f"http://127.0.0.1:{port}", subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)))
    try:
        for url, proc in procs:
            wait_healthy(url, timeout=240)
            assert proc.poll() is None
        yield procs
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def groups() -> list[list[str]]:
    return [[data_url(_photo(4 * g + i)) for i in range(4)] for g in range(GROUPS)]


def _rewards(url: str, group: list[str]) -> dict[str, Any]:
    r = httpx.post(url + "/v1/rewards", timeout=300,
                   json={"task": "image_generation", "prompt": PROMPT, "candidates": group, "max_tokens": NEW_TOKENS})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


def _chat(url: str, group: list[str]) -> dict[str, Any]:
    content = [{"type": "image_url", "image_url": {"url": u}} for u in group[:2]]
    content.append({"type": "text", "text": f"Which image fits '{PROMPT}' better?"})
    r = httpx.post(url + "/v1/chat/completions", timeout=300,
                   json={"model": "UnifiedReward", "messages": [{"role": "user", "content": content}],
                         "max_tokens": 4096, "temperature": 0, "do_sample": False})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


def test_gateway_over_three_upstreams_with_one_killed(upstreams: list[tuple[str, subprocess.Popen]],
                                                      groups: list[list[str]]) -> None:  # fmt: skip
    urls = [u for u, _ in upstreams]
    single = [_rewards(urls[0], g) for g in groups]  # one server, the reference
    single_chat = _chat(urls[0], groups[0])

    limits = ServerLimits(max_new_tokens=NEW_TOKENS, max_prompt_tokens=4096)
    app = create_gateway([u + "/v1" for u in urls], limits, concurrency=2, health_interval=0.5, timeout=120)
    pool = app.state.gateway.pool
    with running(app) as gw:
        results: dict[int, dict[str, Any]] = {}
        errors: list[BaseException] = []

        def client(i: int) -> None:
            try:
                results[i] = _rewards(gw, groups[i])
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(GROUPS)]
        for t in threads:
            t.start()
        # kill the third upstream once it has answered something and the run is not over
        victim = upstreams[2][1]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            s = pool.summary()
            if s[2]["ok"] >= 1:
                break
            time.sleep(0.02)
        done_at_kill = sum(e["ok"] for e in pool.summary())
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        for t in threads:
            t.join(timeout=400)
        assert not errors, errors
        assert done_at_kill < GROUPS * 6, "the upstream was killed after the run had finished"

        # every request answered, with the single server's rewards and texts (greedy)
        for i, ref in enumerate(single):
            got = results[i]
            assert got["rewards"] == pytest.approx(ref["rewards"]), i
            assert [j["text"] for j in got["judgments"]] == [j["text"] for j in ref["judgments"]], i
        # traffic on every upstream (the killed one before it died); its failures were rerouted
        s = pool.summary()
        assert all(e["ok"] >= 1 for e in s), s
        assert sum(e["ok"] for e in s) == GROUPS * 6 and all(e["failed"] == 0 for e in s)

        # chat completions are forwarded to a live upstream and answer what one server answers
        body = _chat(gw, groups[0])
        assert body["choices"][0]["message"]["content"] == single_chat["choices"][0]["message"]["content"]
        assert body["max_tokens"] == NEW_TOKENS and any("clamped" in w for w in body["warnings"])

        # the dead upstream is out in /health and /metrics; the gateway stays up on the other two
        deadline = time.monotonic() + 30
        while pool.summary()[2]["healthy"] and time.monotonic() < deadline:
            time.sleep(0.1)
        h = httpx.get(gw + "/health").json()
        assert h["status"] == "ok" and h["healthy_upstreams"] == 2
        assert [u["healthy"] for u in h["upstreams"]] == [True, True, False]
        m = httpx.get(gw + "/metrics").text
        assert f'unireward_upstream_healthy{{upstream="{urls[2]}/v1"}} 0' in m
        assert f'unireward_upstream_healthy{{upstream="{urls[0]}/v1"}} 1' in m
        # limits are the gateway's own: a bad request never reaches an upstream
        sent = sum(e["requests"] for e in pool.summary())
        r = httpx.post(gw + "/v1/rewards", json={"task": "image_generation", "prompt": "x", "candidates": ["data:image/png;base64,AAAA"] * 2})
        assert r.status_code == 400 and sum(e["requests"] for e in pool.summary()) == sent
    pool.close()


def test_serve_refuses_upstream_with_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    from unireward.cli import main

    assert main(["serve", "--upstream", "http://127.0.0.1:1/v1", "--model", "m"]) == 2
    assert "--upstream" in capsys.readouterr().err
    assert main(["serve"]) == 2
    assert "--upstream" in capsys.readouterr().err
