"""Requests exactly as other projects' clients send them, and hostile bodies, against a real tiny-model
server on 127.0.0.1.

Flow-GRPO's ``unifiedreward_score_sglang`` sends a 512x512 PNG as ``data:image;base64,...`` (no
subtype), the model name ``UnifiedReward-7b-v1.5`` and the API key ``flowgrpo``; it was refused with
"malformed MIME type". A body nested thousands of levels deep and a NUL byte in a media path were
answered 500.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from PIL import Image
from serve_util import running, video_bytes

from unireward.judge import Judge, JudgeOptions, TransformersBackend
from unireward.serve import ServerLimits, create_app

FLOW_GRPO_QUESTION = (
    "<image>\nYou are given a text caption and a generated image based on that caption. Your task is to evaluate "
    "this image based on two key criteria:\n1. Alignment with the Caption: Assess how well this image aligns with "
    "the provided caption.\n2. Overall Image Quality: Examine the visual quality of this image.\nBased on the above "
    "criteria, assign a score from 1 to 5 after 'Final Score:'.\nYour task is provided as follows:\nText Caption: [{}]"
)


def _noise(seed: int, size: int = 512) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def _bare_data_url(raw: bytes, kind: str) -> str:
    """``data:image;base64,...`` / ``data:video;base64,...``: a media kind without a subtype."""
    return f"data:{kind};base64," + base64.b64encode(raw).decode()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    _noise(1, 64).save(root / "a.png")
    return root


@pytest.fixture(scope="module")
def url(tiny_model: Path, media_root: Path) -> Iterator[str]:
    judge = Judge(TransformersBackend.load(str(tiny_model)), JudgeOptions(max_new_tokens=4))
    app = create_app(judge, ServerLimits(max_new_tokens=4, max_prompt_tokens=4096), api_key="flowgrpo",
                     media_root=media_root, model_name="UnifiedReward-7b-v1.5")  # fmt: skip
    with running(app) as u:
        yield u


def _headers() -> dict[str, str]:
    return {"Authorization": "Bearer flowgrpo"}


def _error(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert {"message", "type", "code"} <= set(err)
    for w in words:
        assert w in err["message"], (w, err["message"])


def test_flow_grpo_request_as_its_client_sends_it(url: str) -> None:
    """The openai client with Flow-GRPO's key, model name, message layout and a 512² PNG without a subtype."""
    client = openai.OpenAI(base_url=url + "/v1", api_key="flowgrpo", max_retries=0)
    image = _bare_data_url(_png(_noise(0)), "image")
    assert image.startswith("data:image;base64,") and len(image) > 500_000
    resp = client.chat.completions.create(
        model="UnifiedReward-7b-v1.5",
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                               {"type": "text", "text": FLOW_GRPO_QUESTION.format("a cat")}]}],  # fmt: skip
        temperature=0,
    )
    assert resp.choices[0].message.content is not None and resp.usage.prompt_tokens > 0


def test_bare_image_and_video_kinds_on_the_judge_routes(url: str) -> None:
    imgs = [_bare_data_url(_png(_noise(s)), "image") for s in (2, 3)]
    r = httpx.post(url + "/v1/judge", headers=_headers(), timeout=120,
                   json={"task": "image_generation", "prompt": "a cat", "candidates": imgs})  # fmt: skip
    assert r.status_code == 200, r.text
    vids = [_bare_data_url(video_bytes(8, (448, 448)), "video") for _ in range(2)]
    r = httpx.post(url + "/v1/judge", headers=_headers(), timeout=120,
                   json={"task": "video_generation", "prompt": "a cat", "candidates": vids})  # fmt: skip
    assert r.status_code == 200, r.text
    # the kind still has to match the slot: a bare "video" where an image goes is refused by name
    r = httpx.post(url + "/v1/judge", headers=_headers(), timeout=60,
                   json={"task": "image_generation", "prompt": "a cat", "candidates": [vids[0], imgs[0]]})  # fmt: skip
    _error(r, 400, "candidates[0]", "a video where an image was expected")


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/judge", "/v1/score", "/v1/rewards"])
def test_deeply_nested_body_is_a_4xx(url: str, route: str) -> None:
    for depth in (2_000, 100_000):
        body = '{"a":' * depth + "1" + "}" * depth
        r = httpx.post(url + route, content=body, headers={**_headers(), "content-type": "application/json"}, timeout=60)
        _error(r, 400, "nested too deeply")
    r = httpx.post(url + route, content="[" * 50_000, headers=_headers(), timeout=60)
    assert 400 <= r.status_code < 500 and r.json()["error"]["code"] == "invalid_json"


def test_nul_in_a_media_root_path_is_a_4xx(url: str) -> None:
    r = httpx.post(url + "/v1/judge", headers=_headers(), timeout=60,
                   json={"task": "image_generation", "prompt": "p", "candidates": ["a\x00.png", "a.png"]})  # fmt: skip
    _error(r, 400, "candidates[0]", "NUL")
    content = [{"type": "image_url", "image_url": {"url": "a.png\x00/../x"}}, {"type": "text", "text": "rate it"}]
    r = httpx.post(url + "/v1/chat/completions", headers=_headers(), timeout=60,
                   json={"messages": [{"role": "user", "content": content}]})  # fmt: skip
    _error(r, 400, "NUL")
    ok = httpx.post(url + "/v1/score", headers=_headers(), timeout=60,
                    json={"task": "image_generation", "prompt": "p", "candidate": "a.png"})  # fmt: skip
    assert ok.status_code == 200, ok.text


def test_unpaired_surrogate_and_missing_media_path_are_4xx(url: str) -> None:
    """A lone ``\\ud800`` escape parses as JSON but is no text (the tokenizer raised); a media path that
    does not exist under the media root is refused by name instead of judged as an unreadable pair."""
    body = '{"task": "image_understanding", "prompt": "\\ud800", "candidates": ["a", "b"], "reference": "a.png"}'
    for route in ("/v1/judge", "/v1/rewards"):
        r = httpx.post(url + route, content=body, headers={**_headers(), "content-type": "application/json"}, timeout=60)
        _error(r, 400, "surrogate")
    emoji = body.replace("\\ud800", "\\ud83d\\ude00 a smile")  # a paired escape is an ordinary character
    r = httpx.post(url + "/v1/judge", content=emoji, headers={**_headers(), "content-type": "application/json"}, timeout=60)
    assert r.status_code == 200, r.text
    r = httpx.post(url + "/v1/rewards", headers=_headers(), timeout=60,
                   json={"task": "image_understanding", "prompt": "p", "candidates": ["a", "b"], "reference": "nope.png"})  # fmt: skip
    _error(r, 400, "reference", "'nope.png' not found under the media root")
    r = httpx.post(url + "/v1/judge", headers=_headers(), timeout=60,
                   json={"task": "image_understanding", "prompt": "p", "candidates": ["a", "b"], "reference": "."})  # fmt: skip
    _error(r, 400, "reference", "is a folder, not an image file")
