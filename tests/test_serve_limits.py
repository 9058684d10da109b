"""Regression tests for the server under the requests generator-RL trainers send and under abuse.

Each test talks to a real uvicorn server on 127.0.0.1 serving the tiny Qwen2.5-VL judge; inputs are
the smallest that show each limit.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image
from serve_util import data_url, running, video_bytes, video_url

from unireward.judge import Judge, JudgeOptions, TransformersBackend
from unireward.serve import ServerLimits, create_app

PREF_GRPO_PROMPT = (
    "You are presented with two generated images (Image 1 and Image 2) along with a shared textual caption. "
    "Your task is to compare the two images and decide which one is better. Caption: a red square"
)
LIMITS = ServerLimits(
    max_request_bytes=2 << 20, max_images=40, max_image_pixels=4096 * 4096, max_new_tokens=8, max_prompt_tokens=2048,
    max_video_frames=50, max_frame_pixels=256 * 256, max_video_pixels=30 * 256 * 256, max_queue=64,
)  # fmt: skip


@pytest.fixture(scope="module")
def backend(tiny_model: Path) -> TransformersBackend:
    return TransformersBackend.load(str(tiny_model))


@pytest.fixture(scope="module")
def url(backend: TransformersBackend) -> Iterator[str]:
    app = create_app(Judge(backend, JudgeOptions(max_new_tokens=8)), LIMITS, model_name="tiny-judge", batch_size=8)
    with running(app) as u:
        yield u


def _pair(color1: str = "red", color2: str = "blue", size: int = 56) -> list[dict]:
    return [{"type": "image_url", "image_url": {"url": data_url(Image.new("RGB", (size, size), c))}} for c in (color1, color2)]


def _post(url: str, body: dict, path: str = "/v1/chat/completions", **kw) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=kw.pop("timeout", 60), **kw)


def _error(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]  # OpenAI's shape, never plain text
    assert {"message", "type", "code"} <= set(err)
    for w in words:
        assert w in err["message"], (w, err["message"])


# ---------------------------------------------------------------- drop-in requests


def test_pref_grpo_request_unchanged(url: str) -> None:
    """Pref-GRPO's exact JSON; the reply parsed as Pref-GRPO parses it."""
    payload = {
        "model": "UnifiedReward",
        "messages": [{"role": "user", "content": _pair() + [{"type": "text", "text": PREF_GRPO_PROMPT}]}],
        "do_sample": False,
        "max_tokens": 4096,
    }
    r = httpx.post(url + "/v1/chat/completions", json=payload, timeout=35)
    r.raise_for_status()
    output = r.json()["choices"][0]["message"]["content"]
    assert isinstance(output, str)
    re.search(r"<answer>(.*?)</answer>", output, re.DOTALL)  # Pref-GRPO's parse: must not raise
    body = r.json()
    assert body["max_tokens"] == 8 and r.headers["x-max-tokens-clamped"] == "8"
    assert any("clamped" in w for w in body["warnings"]) and any("do_sample" in w for w in body["warnings"])
    assert body["usage"]["completion_tokens"] <= 8


def test_flow_grpo_openai_client_and_model_names(url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    content = [_pair()[0], {"type": "text", "text": "Rate the image. Final Score:"}]
    resp = client.chat.completions.create(model="tiny-judge", messages=[{"role": "user", "content": content}], temperature=0)
    assert resp.choices[0].message.content is not None
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}])
    assert "The model `gpt-4o` does not exist." in e.value.message
    # verl's reward loop: plain messages, temperature and max_tokens
    r = _post(url, {"messages": [{"role": "user", "content": "Which answer is better?"}], "temperature": 0, "max_tokens": 4})
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] in ("stop", "length")


def test_sampling_parameters_as_vllm_reads_them(url: str) -> None:
    base = {"messages": [{"role": "user", "content": _pair()[:1] + [{"type": "text", "text": "x"}]}], "max_tokens": 6}
    _error(_post(url, {**base, "n": 0}), 400, "n must be at least 1")
    r = _post(url, {**base, "n": 3, "temperature": 0})  # greedy n>1: n identical answers
    texts = [c["message"]["content"] for c in r.json()["choices"]]
    assert r.status_code == 200 and len(texts) == 3 and len(set(texts)) == 1
    one = _post(url, {**base, "temperature": 1.0, "seed": 7}).json()["choices"][0]["message"]["content"]
    two = _post(url, {**base, "temperature": 1.0, "seed": 7}).json()["choices"][0]["message"]["content"]
    assert one == two
    for bad, words in [({"seed": "7"}, ["seed"]), ({"seed": 2**70}, ["seed", "64-bit"]), ({"min_tokens": "3"}, ["min_tokens"]),
                       ({"min_tokens": 9}, ["min_tokens", "max_tokens"]), ({"temperature": -1}, ["temperature"]),
                       ({"top_p": 0}, ["top_p"]), ({"n": 17}, ["n is 17"]), ({"max_tokens": 0}, ["max_tokens"])]:  # fmt: skip
        _error(_post(url, {**base, **bad}), 400, *words)
    for bad, name in [({"stream": True}, "stream"), ({"logprobs": True}, "logprobs"), ({"top_logprobs": 2}, "top_logprobs"),
                      ({"response_format": {"type": "json_object"}}, "response_format"), ({"presence_penalty": 0.5}, "presence_penalty")]:  # fmt: skip
        _error(_post(url, {**base, **bad}), 400, name)
    ok = _post(url, {**base, "stream": False, "logprobs": False, "response_format": {"type": "text"}})
    assert ok.status_code == 200


def test_stop_strings_cut_the_answer(url: str) -> None:
    base = {"messages": [{"role": "user", "content": _pair()[:1] + [{"type": "text", "text": "x"}]}], "max_tokens": 12, "temperature": 0}
    full = _post(url, base).json()["choices"][0]["message"]["content"]
    if len(full) < 3:
        pytest.fail(f"the tiny model answered too little to cut: {full!r}")
    stop = full[len(full) // 2 :][:2]
    cut = _post(url, {**base, "stop": [stop]}).json()["choices"][0]
    assert cut["message"]["content"] == full[: full.find(stop)] and cut["finish_reason"] == "stop"


def test_judge_endpoint_seed_and_greedy_samples(url: str) -> None:
    red, blue = (data_url(Image.new("RGB", (56, 56), c)) for c in ("red", "blue"))
    body = {"task": "image_generation", "prompt": "a red square", "candidates": [red, blue], "temperature": 1.0, "max_tokens": 8}
    a = _post(url, {**body, "seed": 3}, "/v1/judge").json()
    b = _post(url, {**body, "seed": 3}, "/v1/judge").json()
    assert a["text"] == b["text"]
    _error(_post(url, {**body, "n": 2, "temperature": 0}, "/v1/judge"), 400, "temperature")
    _error(_post(url, {**body, "n": 0}, "/v1/judge"), 400, "n must be at least 1")
    _error(_post(url, {**body, "model": "nope"}, "/v1/judge"), 404, "does not exist")


# ---------------------------------------------------------------- errors are JSON 4xx


def test_malformed_inputs_get_json_4xx(url: str) -> None:
    text = {"type": "text", "text": "x"}

    def chat(*parts: dict, **kw) -> httpx.Response:
        return _post(url, {"messages": [{"role": "user", "content": [*parts, text]}], **kw})

    png = base64.b64encode(_png(Image.new("RGB", (8, 8)))).decode()
    _error(chat({"type": "image_url", "image_url": {"url": "data:image/p\x00ng;base64," + png}}), 400, "MIME")
    _error(chat({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}), 400, "base64")
    _error(chat({"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"junk").decode()}}), 400, "cannot decode")
    wide = data_url(Image.new("RGB", (30000, 40)), "PNG")
    assert chat({"type": "image_url", "image_url": {"url": wide}}, max_tokens=2).status_code == 200  # squeezed into the budget
    _error(chat({"type": "image_url", "image_url": 5}), 400, "data: URL")
    _error(chat({"type": "audio"}), 400, "unsupported part type")
    _error(_post(url, {"messages": "hi"}), 400, "messages")
    _error(_post(url, {"messages": [{"role": "robot", "content": "x"}]}), 400, "role")
    _error(httpx.post(url + "/v1/chat/completions", content=b"{not json", timeout=10), 400, "JSON")
    _error(httpx.post(url + "/v1/chat/completions", content=b"[1, 2]", timeout=10), 400, "JSON object")
    _error(httpx.get(url + "/v1/nothing", timeout=10), 404)
    _error(httpx.get(url + "/v1/chat/completions", timeout=10), 405)
    _error(_post(url, {"task": "image_generation", "prompt": "x", "candidates": ["a"]}, "/v1/judge"), 400, "candidates")
    _error(_post(url, {"task": "image_generation", "prompt": "x", "candidates": [1, 2]}, "/v1/judge"), 400, "data: URL")
    _error(_post(url, {"task": "painting", "prompt": "x", "candidates": [1, 2]}, "/v1/judge"), 400, "unknown task")


def test_prompt_token_limit_before_generation(url: str) -> None:
    r = _post(url, {"messages": [{"role": "user", "content": "word " * 20_000}], "max_tokens": 4})
    _error(r, 400, "2048", "--max-prompt-tokens")
    r = _post(url, {"task": "image_understanding", "prompt": "why " * 20_000, "candidates": ["a", "b"],
                    "reference": data_url(Image.new("RGB", (56, 56)))}, "/v1/judge")  # fmt: skip
    _error(r, 400, "--max-prompt-tokens")


def test_chunked_body_is_counted_as_it_streams(url: str) -> None:
    """A chunked upload that never ends: a server reading the whole body first would never answer."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        chunk = b"a" * (64 << 10)
        for _ in range(34):  # just over the 2 MiB limit, and the final empty chunk never comes
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        reply = b""
        while b"}}" not in reply:
            data = s.recv(65536)
            if not data:
                break
            reply += data
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"--max-request-bytes" in body
    assert httpx.get(url + "/health", timeout=5).status_code == 200


# ---------------------------------------------------------------- media limits


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_large_images_are_downsized_while_decoding_and_health_stays_up(url: str) -> None:
    """Zero-filled 4096x4096 PNGs (a few KB each as a request): decoded off the event loop straight
    to the vision budget, while /health keeps answering."""

    def body(img: Image.Image, n: int) -> dict:
        part = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(_png(img)).decode()}}
        return {"messages": [{"role": "user", "content": [part] * n + [{"type": "text", "text": "x"}]}], "max_tokens": 2}

    with ThreadPoolExecutor(1) as pool:
        heavy = pool.submit(_post, url, body(Image.new("RGB", (4096, 4096)), 3))
        health_during = 0
        while not heavy.done():
            if httpx.get(url + "/health", timeout=30).status_code == 200 and not heavy.done():
                health_during += 1
        r = heavy.result()
    assert r.status_code == 200, r.text
    assert health_during >= 1  # /health answered while the heavy request was in flight
    # each 4096^2 image became the 384x384 budget image
    same = _post(url, body(Image.new("RGB", (384, 384)), 3)).json()["usage"]["prompt_tokens"]
    assert r.json()["usage"]["prompt_tokens"] == same


def test_jpeg_is_decoded_at_reduced_scale(backend: TransformersBackend) -> None:
    from unireward.serve.decode import MediaDecoder

    buf = io.BytesIO()
    Image.new("RGB", (4096, 3072), "green").save(buf, format="JPEG")
    seen: list[tuple[int, int]] = []
    original = Image.Image.convert

    def spy(self: Image.Image, *a, **kw):  # the first conversion sees the decoded size
        seen.append(self.size)
        return original(self, *a, **kw)

    Image.Image.convert = spy  # type: ignore[method-assign]
    try:
        img = MediaDecoder(LIMITS, backend.budget).decode_image(buf.getvalue(), "image")
    finally:
        Image.Image.convert = original  # type: ignore[method-assign]
    from unireward.media import fit_size

    assert img.size == fit_size(4096, 3072, backend.budget.min_pixels, backend.budget.max_pixels)
    assert seen and seen[0][0] <= 4096 // 8  # draft mode decoded at 1/8 scale, never at full size


def test_frame_lists_of_mixed_sizes_and_one_frame(url: str) -> None:
    frames = [data_url(Image.new("RGB", s, c)) for s, c in [((56, 56), "red"), ((84, 56), "blue"), ((56, 112), "green")]]
    body = {"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": frames}}, {"type": "text", "text": "x"}]}],
            "max_tokens": 2}  # fmt: skip
    assert _post(url, body).status_code == 200
    body["messages"][0]["content"][0]["video_url"]["url"] = frames[:1]
    assert _post(url, body).status_code == 200


def _video_chat(url: str, raw: bytes, mime: str = "video/mp4") -> httpx.Response:
    return _post(url, {"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": video_url(raw, mime)}},
                                                               {"type": "text", "text": "x"}]}], "max_tokens": 2})  # fmt: skip


def test_video_limits_and_allow_list(url: str) -> None:
    assert _video_chat(url, video_bytes(3, (64, 64))).status_code == 200  # one frame short of the temporal patch
    _error(_video_chat(url, video_bytes(1, (272, 256))), 413, "--max-frame-pixels")
    _error(_video_chat(url, video_bytes(51, (32, 32))), 413, "--max-video-frames")
    _error(_video_chat(url, video_bytes(31, (256, 256))), 413, "--max-video-pixels")
    hls = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/seg.ts\n#EXT-X-ENDLIST\n"
    _error(_video_chat(url, hls), 415, "container")
    _error(_video_chat(url, video_bytes(2, (64, 64), codec="ffv1", container="matroska")), 415, "codec 'ffv1'")
    _error(_video_chat(url, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64), 400, "video")


# ---------------------------------------------------------------- load


def test_official_client_batch_of_video_pairs(url: str) -> None:
    """The official ``vllm_request.py`` shape: 32 video pairs at once (8 frames per clip as JPEG
    image_url parts). Its client retries; here the first answer to each request must be a 200 (the
    queue holds 64), so a 5xx or a 429 cannot hide behind a retry."""
    frames = [data_url(Image.new("RGB", (56, 56), (i * 60, 0, 255 - i * 60))) for i in range(4)]  # 2 per clip, not 8

    def process_item(i: int) -> tuple[int, str]:
        payload = {"model": "UnifiedReward", "do_sample": False, "max_tokens": 4096,
                   "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": f}} for f in frames]
                                 + [{"type": "text", "text": f"Compare video 1 and video 2, pair {i}"}]}]}  # fmt: skip
        r = httpx.post(url + "/v1/chat/completions", json=payload, timeout=120)
        return r.status_code, r.text

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(process_item, range(32)))
    assert [code for code, _ in answers] == [200] * 32, [a for a in answers if a[0] != 200][:3]
    assert all(isinstance(json.loads(text)["choices"][0]["message"]["content"], str) for _, text in answers)
    metrics = httpx.get(url + "/metrics", timeout=10).text
    assert _metric(metrics, "unireward_batch_size_sum") / _metric(metrics, "unireward_batch_size_count") > 1  # concurrent requests shared generate calls


def test_metrics_and_access_log(url: str, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="unireward.serve.access"):
        _error(_post(url, {"messages": [{"role": "user", "content": "x"}], "n": 0}), 400)
        httpx.get(url + "/health", timeout=5)
    assert any('"GET /health" 200' in r.getMessage() for r in caplog.records)
    text = httpx.get(url + "/metrics", timeout=5).text
    for name in ("unireward_queue_depth", "unireward_batch_size_bucket", "unireward_generated_tokens_total",
                 'unireward_rejections_total{reason="bad_parameter"}', 'unireward_requests_total{route="/health",status="200"}'):  # fmt: skip
        assert name in text, name


def _metric(text: str, name: str) -> float:
    return float(re.search(rf"^{re.escape(name)} (\S+)$", text, re.M).group(1))


def _until(url: str, line: str) -> None:
    deadline = time.monotonic() + 30
    while line not in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        assert time.monotonic() < deadline, line
        time.sleep(0.02)


def test_full_queue_answers_429_and_gone_clients_cost_nothing(backend: TransformersBackend) -> None:
    """A bounded queue answers 429 with Retry-After; clients that leave withdraw their queued rows
    (they never reach the model) and stop their running batch at the next token."""
    import json
    import socket

    limits = ServerLimits(max_new_tokens=4000, max_queue=2)
    app = create_app(Judge(backend, JudgeOptions(max_new_tokens=8)), limits, model_name="q", batch_size=1)
    long = json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 4000, "min_tokens": 4000}).encode()
    short = {"messages": [{"role": "user", "content": "y"}], "max_tokens": 2}
    with running(app) as u:
        host, port = u.removeprefix("http://").split(":")
        first = socket.create_connection((host, int(port)))  # a client we can make leave
        first.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(long) + long)  # fmt: skip
        _until(u, "unireward_running_requests 1")
        for _ in range(2):  # two clients that give up after a moment: queued, then withdrawn
            with pytest.raises(httpx.TimeoutException):
                _post(u, short, timeout=0.3)
        _until(u, "unireward_cancelled_total 2")
        pool = ThreadPoolExecutor(2)
        waiting = [pool.submit(_post, u, short) for _ in range(2)]  # fill the queue's 2 places
        _until(u, "unireward_active_requests 3")
        r = _post(u, short)
        _error(r, 429, "--max-queue")
        assert int(r.headers["retry-after"]) >= 1
        first.close()  # the long request's client leaves: its running batch stops
        assert all(w.result().status_code == 200 for w in waiting)
        pool.shutdown()
        _until(u, "unireward_active_requests 0")
        text = httpx.get(u + "/metrics").text
    # two queued rows withdrawn before running, and the long one stopped mid-batch
    assert _metric(text, "unireward_cancelled_total") == 3
    assert _metric(text, "unireward_batch_size_count") == 3  # the long one and the two that waited
    assert _metric(text, "unireward_generated_tokens_total") < 4000 + 2 * 2  # the long one stopped early


def test_one_frame_video_on_qwen3_vl(tmp_path: Path) -> None:
    """Qwen3-VL groups frames two at a time: a one-frame video (a frame list, or a one-frame file) is
    padded to the temporal patch instead of failing."""
    from unireward.models import get_family

    path = get_family("qwen3_vl").build_tiny(tmp_path / "qwen3")
    app = create_app(Judge(TransformersBackend.load(str(path)), JudgeOptions(max_new_tokens=2)), LIMITS, model_name="q3")
    frame = [data_url(Image.new("RGB", (64, 64), "red"))]
    with running(app) as u:
        r = _post(u, {"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": frame}},
                                                              {"type": "text", "text": "x"}]}], "max_tokens": 2})  # fmt: skip
        assert r.status_code == 200, r.text
        assert _video_chat(u, video_bytes(1, (64, 64))).status_code == 200
        r = _post(u, {"task": "video_generation", "prompt": "p", "candidates": [frame, frame * 3], "max_tokens": 2}, "/v1/judge")
        assert r.status_code == 200, r.text
