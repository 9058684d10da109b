"""The judge server on 127.0.0.1, spoken to with the real ``openai`` client, httpx and our HTTP backend."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import torch
from PIL import Image

from unireward.judge import BatchingBackend, Judge, JudgeOptions, TransformersBackend
from unireward.protocol import parse_judgment
from unireward.serve import ServerLimits, create_app

REPO = Path(__file__).resolve().parents[1]
KEY = "test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


@pytest.fixture(scope="module")
def base_url(tiny_model: Path) -> Iterator[str]:
    import uvicorn

    local = TransformersBackend.load(str(tiny_model))
    # wider random weights: answers then depend on the image, so mixed-up answers would show
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in local.model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3, generator=gen)
    backend = BatchingBackend(local)
    judge = Judge(backend, JudgeOptions(max_new_tokens=8))
    limits = ServerLimits(max_request_bytes=2 << 20, max_images=4, max_image_pixels=256 * 256, max_new_tokens=64)
    app = create_app(judge, limits, api_key=KEY, model_name="tiny-judge")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    _wait(url)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def _data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _chat(client: openai.OpenAI, images: list[Image.Image], **kw):
    content = [{"type": "image_url", "image_url": {"url": _data_url(im)}} for im in images]
    content.append({"type": "text", "text": "Which image is better?"})
    return client.chat.completions.create(model="tiny-judge", messages=[{"role": "user", "content": content}], **kw)


def test_openai_client_gets_a_completion(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    resp = _chat(client, [Image.new("RGB", (64, 56), "red"), Image.new("RGB", (56, 56), "blue")], max_tokens=6, temperature=0)
    assert resp.choices[0].message.role == "assistant"
    assert isinstance(resp.choices[0].message.content, str)
    assert resp.choices[0].finish_reason in ("stop", "length")
    assert resp.usage.prompt_tokens > 8 and 1 <= resp.usage.completion_tokens <= 6
    resp = _chat(client, [Image.new("RGB", (56, 56), "red")], max_tokens=4, temperature=1.0, n=3, seed=0)
    assert len(resp.choices) == 3
    assert [m.id for m in client.models.list().data] == ["tiny-judge", "UnifiedReward"]


def test_api_key_is_required(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        _chat(client, [Image.new("RGB", (56, 56))], max_tokens=2)
    assert httpx.get(base_url + "/health").json()["status"] == "ok"  # health stays open


def test_oversized_input_is_rejected_with_4xx(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as e:
        _chat(client, [Image.new("RGB", (300, 300))], max_tokens=2)
    assert e.value.status_code == 413 and "pixels" in e.value.message
    with pytest.raises(openai.APIStatusError) as e:
        _chat(client, [Image.new("RGB", (28, 28))] * 5, max_tokens=2)
    assert e.value.status_code == 413 and "too many images" in e.value.message
    noise = Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3))
    with pytest.raises(openai.APIStatusError) as e:  # ~200 KB per image as PNG, ~3 MB as base64 in total
        _chat(client, [noise] * 4 * 4, max_tokens=2)
    assert e.value.status_code == 413 and "bytes" in e.value.message
    resp = _chat(client, [Image.new("RGB", (28, 28))], max_tokens=100_000)  # clamped as vLLM does, and said so
    assert resp.model_extra["max_tokens"] == 64 and "clamped" in resp.model_extra["warnings"][0]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="tiny-judge", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}]}]
        )
    assert "data: URL" in e.value.message


def test_judge_and_score_endpoints(base_url: str, tiny_images: list[Path]) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    red, blue = (_data_url(Image.open(p)) for p in tiny_images[:2])
    r = httpx.post(base_url + "/v1/judge", headers=headers, timeout=60,
                   json={"task": "image_generation", "prompt": "a red square", "candidates": [red, blue], "swap": True})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["votes"]) == 2 and body["text"]
    # a random model names no verdict in either order; the status is the parser's reading of the text
    assert body["status"] == parse_judgment(body["text"], "image_generation").status != "ok"
    r = httpx.post(base_url + "/v1/score", headers=headers, timeout=60,
                   json={"task": "image_understanding", "prompt": "what colour?", "candidate": "red", "reference": red})  # fmt: skip
    assert r.status_code == 200 and r.json()["mode"] == "pointwise"
    r = httpx.post(base_url + "/v1/judge", headers=headers, json={"task": "painting", "prompt": "x", "candidates": [red, blue]})
    assert r.status_code == 400 and "unknown task" in r.json()["error"]["message"]
    r = httpx.post(base_url + "/v1/judge", headers=headers, json={"task": "image_generation", "prompt": "x", "candidates": ["/etc/passwd", blue]})
    assert r.status_code == 400 and "data: URL" in r.json()["error"]["message"]
    frames = [_data_url(Image.new("RGB", (56, 56), c)) for c in ("red", "blue", "green")]
    r = httpx.post(base_url + "/v1/judge", headers=headers, json={"task": "video_generation", "prompt": "x", "candidates": [frames, frames]})
    assert r.status_code == 413  # 6 frames > 4 images


def test_editing_with_a_protocol_through_the_server(base_url: str, tiny_images: list[Path]) -> None:
    """``template_family`` per request; an edit carries its source; a stray reference is refused."""
    headers = {"Authorization": f"Bearer {KEY}"}
    red, blue, green = (_data_url(Image.open(p)) for p in tiny_images[:3])
    edit = {"task": "image_editing", "prompt": "make it blue", "reference": red, "template_family": "unifiedreward-edit"}
    r = httpx.post(base_url + "/v1/judge", headers=headers, timeout=60, json={**edit, "candidates": [green, blue]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["template_family"] == "unifiedreward-edit" and body["verdict"] == "rank" and body["text"]
    assert {"winner", "scores", "overall", "tie"} <= set(body)
    r = httpx.post(base_url + "/v1/score", headers=headers, timeout=60, json={**edit, "candidate": blue})
    assert r.status_code == 200 and r.json()["verdict"] == "edit_point_scores"
    for bad, field in (({**edit, "reference": None}, "source image"), ({**edit, "task": "image_generation"}, "takes no"),
                       ({**edit, "template_family": "nope"}, "unknown template family")):  # fmt: skip
        r = httpx.post(base_url + "/v1/judge", headers=headers, timeout=60, json={**bad, "candidates": [green, blue]})
        assert r.status_code == 400 and field in r.json()["error"]["message"], r.text


def test_our_http_backend_against_our_server(base_url: str, tiny_images: list[Path]) -> None:
    judge = Judge.from_endpoint(base_url + "/v1", "tiny-judge", api_key=KEY, max_new_tokens=6, swap=True)
    out = judge.compare_many(
        [{"task": "image_generation", "prompt": f"square {i}", "candidates": [str(tiny_images[i]), str(tiny_images[i + 1])]} for i in range(3)]
    )
    assert len(out) == 3 and all(r.error is None and len(r.samples) == 1 and len(r.swapped_samples) == 1 for r in out)


def test_serve_command_starts_logs_and_drains_on_sigterm(tiny_model: Path, tmp_path: Path) -> None:
    """The CLI: startup line, access log, the old --served-name spelling, and SIGTERM ending a
    running request within --drain-timeout (answered 503, not left hanging); while it drains the
    server still listens and /health answers 503 "draining"."""
    import json
    import signal

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "unireward.cli", "serve", "--model", str(tiny_model), "--port", str(port),
         "--max-new-tokens", "4000", "--served-name", "tiny-judge", "--drain-timeout", "2", "--max-group-pairs", "64"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url, proc=proc)
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        resp = _chat(client, [Image.new("RGB", (56, 56), "red")], max_tokens=4)
        assert resp.choices[0].message.content is not None
        body = json.dumps({"model": "tiny-judge", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4000, "min_tokens": 4000})
        long = threading.Thread(target=lambda: out.append(httpx.post(url + "/v1/chat/completions", content=body, timeout=120)))
        out: list[httpx.Response] = []
        long.start()
        deadline = time.monotonic() + 60
        while "unireward_running_requests 1" not in httpx.get(url + "/metrics").text.splitlines():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        health: list[tuple[int, str]] = []
        while proc.poll() is None:  # until the drain ends: 503 "draining", never a refused connection
            try:
                h = httpx.get(url + "/health", timeout=2)
            except httpx.TransportError:
                break
            health.append((h.status_code, h.json()["status"]))
            time.sleep(0.1)
        while health and health[0] == (200, "ok"):  # polled before the signal was handled
            health.pop(0)
        assert len(health) >= 5 and set(health) == {(503, "draining")}, health  # 2 s of drain, polled every 0.1 s
        # drained: the 4000-token request did not hold it (uvicorn re-raises the signal once shut down)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        long.join(timeout=30)
        assert out and out[0].status_code == 503 and "shutting down" in out[0].json()["error"]["message"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    log.seek(0)
    text = log.read()
    assert f"unireward serve: http://127.0.0.1:{port} model={tiny_model} names=tiny-judge,UnifiedReward" in text
    assert "max_prompt_tokens=" in text and "max_group_pairs=64" in text and '"POST /v1/chat/completions" 200' in text and "draining" in text


def test_concurrent_requests_get_their_own_answers(base_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    colours = ["red", "blue", "green", "yellow", "purple", "orange"]
    images = [[Image.new("RGB", (56 + 28 * (i % 3), 56), c)] for i, c in enumerate(colours)]

    def ask(imgs: list[Image.Image]) -> str:
        return _chat(client, imgs, max_tokens=6, temperature=0).choices[0].message.content

    sequential = [ask(imgs) for imgs in images]
    with ThreadPoolExecutor(len(images)) as pool:
        concurrent = list(pool.map(ask, images))
    assert len(set(sequential)) > 1
    assert concurrent == sequential  # merged into shared batches, yet every caller gets its own greedy answer


def test_video_file_upload_counts_frames(base_url: str, videoalign_videos: list[Path]) -> None:
    video = "data:video/mp4;base64," + base64.b64encode(videoalign_videos[0].read_bytes()).decode()
    r = httpx.post(base_url + "/v1/judge", headers={"Authorization": f"Bearer {KEY}"}, timeout=60,
                   json={"task": "video_understanding", "prompt": "what moves?", "candidates": ["a", "b"], "reference": video})  # fmt: skip
    assert r.status_code == 413 and "too many images" in r.json()["error"]["message"]  # 8 frames > 4


def test_judge_cli_through_the_server(base_url: str, tiny_images: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from unireward.cli import main

    rc = main(["judge", "--model", "tiny-judge", "--base-url", base_url + "/v1", "--api-key", KEY,
               "--task", "image_generation", "--prompt", "a red square",
               "--candidate", str(tiny_images[0]), "--candidate", str(tiny_images[1]), "--max-new-tokens", "4"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["error"] is None
    assert out["status"] == parse_judgment(out["text"], "image_generation").status != "ok"
