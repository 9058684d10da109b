"""Work done once: one prefill for k samples, one vision encoding per distinct image, a server cache.

Every family's tiny random model (language-model weights widened so answers depend on the input), 512x512 JPEGs
with real entropy; encodings are counted on the real vision module with a forward hook.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import openai
import pytest
import torch
from PIL import Image
from serve_util import data_url, running

from unireward.judge import BatchingBackend, Judge, JudgeOptions, TransformersBackend
from unireward.judge.backends import SamplingParams
from unireward.judge.generator import Group, group_rewards
from unireward.judge.media_cache import MediaCache, content_key
from unireward.models import get_family
from unireward.protocol.templates import render_text
from unireward.serve import ServerLimits, create_app

PROMPT = "a lighthouse on a cliff at dusk"
FAMILIES = ["qwen2_5_vl", "qwen3_vl", "qwen3_5", "llava_onevision"]


def _photo(seed: int, size: int = 512) -> Image.Image:
    """A JPEG-decoded photo-like image (gradients plus noise), unique per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([(x + 40 * seed) % 256, (y * 0.5 + 20 * seed) % 256, (x + y) % 256], axis=-1)
    noisy = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy, "RGB").save(buf, "JPEG", quality=90)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _widen(model: torch.nn.Module) -> None:
    """Wider random weights in the language model (the vision tower stays as built), so answers
    differ between prompts and images."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and "visual" not in name and "vision" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / p.shape[-1] ** 0.5))


@pytest.fixture(scope="module", params=FAMILIES)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TransformersBackend:
    path = get_family(request.param).build_tiny(tmp_path_factory.mktemp("tiny") / request.param)
    b = TransformersBackend.load(str(path))
    _widen(b.model)
    return b


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [_photo(i) for i in range(8)]


def _pair(a: Image.Image, b: Image.Image, text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "image": a}, {"type": "image", "image": b},
                                         {"type": "text", "text": text}]}]  # fmt: skip


def _messages(photos: list[Image.Image]) -> list[list[dict]]:
    # three prompts of different lengths (left padding) sharing images
    return [_pair(photos[0], photos[1], "Which image is better?"),
            _pair(photos[1], photos[2], "Which of the two images matches the caption better, and why?"),
            _pair(photos[2], photos[0], "Pick one.")]  # fmt: skip


def _tokens(backend: TransformersBackend, msgs: list, params: SamplingParams) -> list[list[list[int]]]:
    out = backend.generate(msgs, params)
    assert all(not isinstance(o, Exception) for o in out), out
    return [o.token_ids for o in out]


def test_k_samples_after_one_prefill_equal_k_separate_greedy_calls(backend: TransformersBackend,
                                                                   photos: list[Image.Image]) -> None:  # fmt: skip
    msgs = _messages(photos)
    one = _tokens(backend, msgs, SamplingParams(num_samples=1, max_new_tokens=8))
    assert len({tuple(o[0]) for o in one}) == 3  # the prompts get different answers: the check can fail
    separate = [_tokens(backend, msgs, SamplingParams(num_samples=1, max_new_tokens=8)) for _ in range(3)]
    shared = _tokens(backend, msgs, SamplingParams(num_samples=3, max_new_tokens=8))
    for r in range(3):
        assert shared[r] == [s[r][0] for s in separate]


def test_seeded_samples_repeat_run_to_run_and_match_the_stock_path(backend: TransformersBackend,
                                                                   photos: list[Image.Image]) -> None:  # fmt: skip
    msgs = _messages(photos)
    params = SamplingParams(num_samples=4, max_new_tokens=8, temperature=1.0, seed=7)
    first, again = _tokens(backend, msgs, params), _tokens(backend, msgs, params)
    assert first == again
    assert len({tuple(s) for s in first[0]}) > 1  # really sampled
    backend.shared_prefill = backend.share_vision = False
    try:
        stock = _tokens(backend, msgs, params)  # num_return_sequences, every image encoded
    finally:
        backend.shared_prefill = backend.share_vision = True
    assert stock == first


# ---------------------------------------------------------------- one encoding per distinct image


def _count_images(backend: TransformersBackend) -> tuple[list[int], object]:
    """Images through the real vision module, counted from its inputs by a forward hook."""
    seen: list[int] = []
    visual = backend.model.model.visual

    def hook(_module: object, args: tuple, kwargs: dict, _out: object) -> None:
        grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
        seen.append(int(grid.shape[0]))

    return seen, visual.register_forward_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "qwen3_5"])
def test_a_group_of_8_is_encoded_8_times_not_56(family: str, tmp_path: Path, photos: list[Image.Image]) -> None:
    backend = TransformersBackend.load(str(get_family(family).build_tiny(tmp_path / family)))
    _widen(backend.model)
    paths = []
    for i, p in enumerate(photos):
        paths.append(tmp_path / f"{i}.jpg")
        p.save(paths[-1], quality=95)
    judge = Judge(backend, JudgeOptions(max_new_tokens=4))
    group = Group("image_generation", PROMPT, [str(p) for p in paths])
    seen, handle = _count_images(backend)
    try:
        (shared,) = group_rewards(judge, [group], both_orders=False)
        assert sum(seen) == 8 and backend.vision_encoded == 8
        seen.clear()
        backend.share_vision = False
        (stock,) = group_rewards(judge, [group], both_orders=False)
        assert sum(seen) == 56
    finally:
        handle.remove()
    assert {k: r.text for k, r in shared.judgments.items()} == {k: r.text for k, r in stock.judgments.items()}
    assert shared.rewards == stock.rewards


def test_a_group_of_8_frame_videos_encodes_each_video_once(tiny_model: Path, tmp_path: Path) -> None:
    """Four 8-frame videos (frame folders of 256x256 JPEGs), all 6 pairs: 4 videos through the vision
    tower, not 12, and the same verdicts as encoding every pair's videos."""
    backend = TransformersBackend.load(str(tiny_model))
    _widen(backend.model)
    videos = []
    for v in range(4):
        frames = []
        for f in range(8):
            frames.append(tmp_path / f"v{v}_{f}.jpg")
            _photo(100 * v + f, size=256).save(frames[-1], quality=90)
        videos.append([str(p) for p in frames])
    judge = Judge(backend, JudgeOptions(max_new_tokens=4))
    group = Group("video_generation", PROMPT, videos)
    seen, handle = _count_images(backend)
    try:
        (shared,) = group_rewards(judge, [group], both_orders=False)
        assert sum(seen) == 4
        seen.clear()
        backend.share_vision = False
        (stock,) = group_rewards(judge, [group], both_orders=False)
        assert sum(seen) == 12
    finally:
        handle.remove()
    assert {k: r.text for k, r in shared.judgments.items()} == {k: r.text for k, r in stock.judgments.items()}


def test_content_keys_tell_same_sized_images_apart(photos: list[Image.Image]) -> None:
    a, b = photos[0], photos[1]
    assert a.size == b.size and content_key(a) != content_key(b)
    one_pixel = a.copy()
    one_pixel.putpixel((0, 0), tuple((v + 1) % 256 for v in a.getpixel((0, 0))))
    assert content_key(one_pixel) != content_key(a) and content_key(a.copy()) == content_key(a)


def test_media_cache_stays_within_its_bound(photos: list[Image.Image]) -> None:
    one = 512 * 512 * 3
    cache = MediaCache(max_bytes=3 * one)
    for i, p in enumerate(photos):
        cache.put(str(i), p)
        assert cache.bytes <= 3 * one
    assert len(cache) == 3 and cache.get("7") is not None and cache.get("0") is None
    off = MediaCache(max_bytes=0)
    off.put("x", photos[0])
    assert len(off) == 0 and off.get("x") is None


# ---------------------------------------------------------------- the server's cache and counters


def _metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=30).text
    m = re.search(rf"^unireward_{name} (\S+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return float(m.group(1))


@pytest.fixture(scope="module")
def qwen(tiny_model: Path) -> TransformersBackend:
    b = TransformersBackend.load(str(tiny_model))
    _widen(b.model)
    return b


@pytest.fixture(scope="module")
def urls(photos: list[Image.Image]) -> list[str]:
    return [data_url(p) for p in photos]


@contextmanager
def _serve(backend: TransformersBackend, cache_mb: int) -> Iterator[str]:
    judge = Judge(BatchingBackend(backend), JudgeOptions(max_new_tokens=4))
    app = create_app(judge, ServerLimits(max_prompt_tokens=4096), model_name="tiny-judge", media_cache_mb=cache_mb)
    with running(app) as url:
        yield url


def _chat_pair(client: openai.OpenAI, urls: list[str], i: int, j: int) -> str:
    content = [{"type": "image_url", "image_url": {"url": urls[k]}} for k in (i, j)]
    content.append({"type": "text", "text": render_text("image_generation", PROMPT)})
    out = client.chat.completions.create(model="UnifiedReward", messages=[{"role": "user", "content": content}],
                                         temperature=0, max_tokens=4)  # fmt: skip
    return out.choices[0].message.content


def test_prefgrpo_chat_requests_decode_and_encode_each_image_once(qwen: TransformersBackend, urls: list[str]) -> None:
    """Pref-GRPO's 28 separate chat requests for a group of 8 images, one at a time: 8 decodes and 8
    encodings; the other 48 uses of an image are cache hits, once for its pixels, once for its features.
    A /v1/rewards of the same group afterwards encodes nothing."""
    with _serve(qwen, cache_mb=64) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none")
        encoded0 = _metric(url, "vision_encoded_images_total")
        texts = {(i, j): _chat_pair(client, urls, i, j) for i, j in combinations(range(8), 2)}
        assert _metric(url, "vision_encoded_images_total") - encoded0 == 8
        assert _metric(url, "media_cache_hits_total") == 48 + 48
        r = httpx.post(url + "/v1/rewards", timeout=600,
                       json={"task": "image_generation", "prompt": PROMPT, "candidates": urls})  # fmt: skip
        assert r.status_code == 200, r.text
        assert _metric(url, "vision_encoded_images_total") - encoded0 == 8
        assert {(j["i"], j["j"]): j["text"] for j in r.json()["judgments"]} == texts


def test_rewards_route_encodes_a_group_of_8_once_with_or_without_the_cache(qwen: TransformersBackend,
                                                                          urls: list[str]) -> None:  # fmt: skip
    bodies = []
    for cache_mb in (64, 0):
        with _serve(qwen, cache_mb=cache_mb) as url:
            encoded0 = _metric(url, "vision_encoded_images_total")
            r = httpx.post(url + "/v1/rewards", timeout=600,
                           json={"task": "image_generation", "prompt": PROMPT, "candidates": urls})  # fmt: skip
            assert r.status_code == 200, r.text
            # 28 pairs in batches of 16: within a batch each image once; the cache spares the second batch
            encoded = _metric(url, "vision_encoded_images_total") - encoded0
            assert encoded == 8 if cache_mb else 8 <= encoded <= 16
            bodies.append(r.json())
    assert bodies[0]["rewards"] == bodies[1]["rewards"] and bodies[0]["judgments"] == bodies[1]["judgments"]


def test_no_leak_between_requests_of_same_sized_images(qwen: TransformersBackend) -> None:
    """Two different 512x512 images in separate requests never share features or pixels: each is
    encoded, and every answer equals a cache-less server's."""
    a, b, c = (data_url(_photo(s)) for s in (101, 102, 103))
    answers = []
    for cache_mb in (64, 0):
        with _serve(qwen, cache_mb=cache_mb) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="none")
            encoded0 = _metric(url, "vision_encoded_images_total")
            got = [_chat_pair(client, [a, b, c], 0, 1), _chat_pair(client, [a, b, c], 0, 2),
                   _chat_pair(client, [a, b, c], 1, 2)]  # fmt: skip
            assert _metric(url, "vision_encoded_images_total") - encoded0 == (3 if cache_mb else 6)
            answers.append(got)
    assert answers[0] == answers[1]


def test_server_cache_respects_its_size(qwen: TransformersBackend, urls: list[str]) -> None:
    with _serve(qwen, cache_mb=1) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none")
        for i in range(0, 8, 2):
            _chat_pair(client, urls, i, i + 1)
            assert _metric(url, "media_cache_bytes") <= 1 << 20


def test_repeat_rows_matches_transformers_repeat_and_keeps_writing_in_place() -> None:
    from transformers.cache_utils import DynamicLayer

    from unireward.judge.kv_cache import GrowingLayer, repeat_rows

    gen = torch.Generator().manual_seed(0)
    ours, ref = SimpleNamespace(layers=[GrowingLayer()]), [DynamicLayer()]  # repeat_rows reads .layers only
    k, v = (torch.randn(2, 2, 5, 4, generator=gen) for _ in range(2))
    ours.layers[0].update(k, v)
    ref[0].update(k, v)
    repeat_rows(ours, 3)
    ref[0].batch_repeat_interleave(3)
    for _ in range(3):
        k, v = (torch.randn(6, 2, 1, 4, generator=gen) for _ in range(2))
        a, b = ours.layers[0].update(k, v), ref[0].update(k, v)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert ours.layers[0].keys.shape[0] == 6
