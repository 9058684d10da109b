"""The judge and group routes on the media users send: 512x512 JPEGs (photo-like noise, ~100 KB each),
against a real tiny-model server on 127.0.0.1.

Regression: base64 data URLs of image candidates were once counted as prompt text, so two 512² JPEGs
were refused as a "609494-token prompt" and no group of real images could be rewarded.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import torch
from PIL import Image
from serve_util import data_url, running

from unireward.judge import BatchingBackend, Judge, JudgeOptions, TransformersBackend
from unireward.protocol.parser import parse_judgment
from unireward.protocol.templates import render_text
from unireward.serve import ServerLimits, create_app

NEW_TOKENS = 6
PROMPT = "a lighthouse on a cliff at dusk"


def _photo(seed: int) -> Image.Image:
    """A 512x512 image with real JPEG entropy (smooth gradients plus noise), unique per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:512, 0:512]
    base = np.stack([(x + 40 * seed) % 256, (y * 0.5 + 20 * seed) % 256, (x + y) % 256], axis=-1)
    noisy = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy, "RGB")


@pytest.fixture(scope="module")
def server(tiny_model: Path) -> Iterator[str]:
    local = TransformersBackend.load(str(tiny_model))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # wider random weights: answers then depend on the image
        for p in local.model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3, generator=gen)
    judge = Judge(BatchingBackend(local), JudgeOptions(max_new_tokens=NEW_TOKENS))
    app = create_app(judge, ServerLimits(max_prompt_tokens=4096), model_name="tiny-judge")
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def group() -> list[str]:
    urls = [data_url(_photo(i)) for i in range(8)]
    assert all(len(u) > 100_000 for u in urls)  # real-size payloads, not toys
    return urls


def test_judge_route_takes_two_512px_jpegs(server: str, group: list[str]) -> None:
    r = httpx.post(server + "/v1/judge", timeout=120,
                   json={"task": "image_generation", "prompt": PROMPT, "candidates": group[:2]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["text"]
    r = httpx.post(server + "/v1/score", timeout=120,
                   json={"task": "image_generation", "prompt": PROMPT, "candidate": group[0]})  # fmt: skip
    assert r.status_code == 200, r.text


def test_group_route_equals_prefgrpo_chat_requests(server: str, group: list[str]) -> None:
    """One Pref-GRPO group of 8 512² JPEGs: /v1/rewards and the 28 chat requests Pref-GRPO sends (images
    first, then the official prompt text, greedy) see the same inputs, so every pair's text agrees and
    the win rates are the same."""
    r = httpx.post(server + "/v1/rewards", timeout=600,
                   json={"task": "image_generation", "prompt": PROMPT, "candidates": group})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["judgments"]) == 28 and len(body["rewards"]) == 8
    grouped = {(j["i"], j["j"]): j["text"] for j in body["judgments"]}

    client = openai.OpenAI(base_url=server + "/v1", api_key="none")
    text = render_text("image_generation", PROMPT)
    wins = [0.0] * 8
    for i, j in combinations(range(8), 2):
        content = [{"type": "image_url", "image_url": {"url": group[k]}} for k in (i, j)]
        content.append({"type": "text", "text": text})
        out = client.chat.completions.create(model="UnifiedReward", messages=[{"role": "user", "content": content}],
                                             temperature=0, max_tokens=NEW_TOKENS)  # fmt: skip
        chat_text = out.choices[0].message.content
        assert chat_text == grouped[(i, j)], (i, j)
        winner = parse_judgment(chat_text, "image_generation").winner
        wins[i] += 1.0 if winner == 1 else 0.5 if winner is None else 0.0
        wins[j] += 1.0 if winner == 2 else 0.5 if winner is None else 0.0
    assert body["rewards"] == pytest.approx([w / 7 for w in wins])
