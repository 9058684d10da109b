"""``POST /v1/rewards`` and :class:`unireward.rewards.RemoteGroupReward` against a brute-force win
rate, on a real server whose judge gives scripted verdicts (so the expected rewards are known)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from typing import Any

import httpx
import pytest
from PIL import Image
from serve_util import data_url, running

from unireward.judge import Judge, JudgeOptions
from unireward.judge.backends import Backend, Generation, SamplingParams
from unireward.media import VisionBudget
from unireward.rewards import RemoteGroupReward
from unireward.serve import ServerLimits, create_app


def _quality(img: Image.Image) -> int:
    return img.getpixel((0, 0))[0]


def verdict(q1: int, q2: int) -> str:
    """The scripted judge: the redder image wins; close calls give no parsable verdict."""
    if abs(q1 - q2) < 20:
        return "<think>too close to call</think><answer>both are fine</answer>"
    return f"<think>x</think><answer>Image {1 if q1 > q2 else 2} is better</answer>"


class ScriptedBackend(Backend):
    name = "scripted"
    budget = VisionBudget()

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, messages_list: list[list[dict[str, Any]]], params: SamplingParams) -> list[Generation | Exception]:
        self.calls.append(len(messages_list))
        out: list[Generation | Exception] = []
        for messages in messages_list:
            imgs = [p["image"] for m in messages for p in m["content"] if p.get("type") == "image"]
            if len(imgs) == 2:
                text = verdict(_quality(imgs[0]), _quality(imgs[1]))
            else:  # pointwise: a score from the quality, unparsable for a middling image
                q = _quality(imgs[0])
                text = "<answer>no idea</answer>" if 100 <= q < 140 else f"<think>x</think><answer>{1 + q * 9 // 255}</answer>"
            out.append(Generation([text] * params.num_samples, 10, [5] * params.num_samples, ["stop"] * params.num_samples))
        return out


def brute_force_win_rates(qualities: list[int]) -> list[float]:
    n = len(qualities)
    wins = [0.0] * n
    for i, j in combinations(range(n), 2):
        text = verdict(qualities[i], qualities[j])
        if "Image 1" in text:
            wins[i] += 1
        elif "Image 2" in text:
            wins[j] += 1
        else:
            wins[i] += 0.5
            wins[j] += 0.5
    return [w / (n - 1) for w in wins]


QUALITIES = [250, 10, 120, 130, 200, 60]


def _images(qualities: list[int]) -> list[Image.Image]:
    return [Image.new("RGB", (56, 56), (q, 0, 0)) for q in qualities]


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[str, ScriptedBackend]]:
    backend = ScriptedBackend()
    app = create_app(Judge(backend, JudgeOptions(max_new_tokens=8)), ServerLimits(max_images=16), model_name="s", batch_size=64)
    with running(app) as url:
        yield url, backend


def test_pairwise_rewards_are_the_win_rate_over_all_pairs(scripted: tuple[str, ScriptedBackend]) -> None:
    url, backend = scripted
    backend.calls.clear()
    body = {"task": "image_generation", "prompt": "a red square", "method": "pairwise",
            "candidates": [data_url(im, "PNG") for im in _images(QUALITIES)]}  # fmt: skip
    r = httpx.post(url + "/v1/rewards", json=body, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rewards"] == pytest.approx(brute_force_win_rates(QUALITIES))
    assert len(out["judgments"]) == 15 and {(j["i"], j["j"]) for j in out["judgments"]} == set(combinations(range(6), 2))
    assert backend.calls == [15]  # every pair of the group in one batched generate call
    both = httpx.post(url + "/v1/rewards", json={**body, "both_orders": True}, timeout=60).json()
    assert both["rewards"] == pytest.approx(brute_force_win_rates(QUALITIES)) and len(both["judgments"]) == 30


def test_pointwise_rewards(scripted: tuple[str, ScriptedBackend]) -> None:
    url, _ = scripted
    body = {"task": "image_generation", "prompt": "a red square", "method": "pointwise",
            "candidates": [data_url(im, "PNG") for im in _images([250, 10, 120])]}  # fmt: skip
    out = httpx.post(url + "/v1/rewards", json=body, timeout=60).json()
    s1, s2 = 1 + 250 * 9 // 255, 1 + 10 * 9 // 255
    assert out["rewards"] == pytest.approx([s1, s2, (s1 + s2) / 2])  # unparsed: the group mean (no advantage)
    assert [j["status"] for j in out["judgments"]][2] != "ok"


def test_rewards_refusals(scripted: tuple[str, ScriptedBackend]) -> None:
    url, _ = scripted
    red = data_url(Image.new("RGB", (56, 56), "red"))
    for body, word in [({"method": "elo"}, "method"), ({"both_orders": "yes"}, "both_orders"),
                       ({"candidates": []}, "candidates"), ({"candidates": [red] * 17}, "too many images")]:  # fmt: skip
        r = httpx.post(url + "/v1/rewards", json={"task": "image_generation", "prompt": "p", "candidates": [red, red], **body}, timeout=30)
        assert 400 <= r.status_code < 500 and word in r.json()["error"]["message"], r.text


def test_remote_group_reward_in_a_training_loop(scripted: tuple[str, ScriptedBackend]) -> None:
    """Two GRPO groups interleaved, images as PIL, numpy and torch: rewards come back in order."""
    import numpy as np
    import torch

    url, _ = scripted
    reward = RemoteGroupReward(url + "/v1", task="image_generation", image_format="PNG")
    q_a, q_b = [250, 10, 130], [60, 200, 120]
    imgs_a, imgs_b = _images(q_a), _images(q_b)
    completions = [imgs_a[0], np.asarray(imgs_b[0]), imgs_a[1], torch.from_numpy(np.array(imgs_b[1])).permute(2, 0, 1) / 255.0,
                   imgs_a[2], imgs_b[2]]  # fmt: skip
    prompts = ["a", "b", "a", "b", "a", "b"]
    got = reward(prompts=prompts, completions=completions)
    wa, wb = brute_force_win_rates(q_a), brute_force_win_rates(q_b)
    assert got == pytest.approx([wa[0], wb[0], wa[1], wb[1], wa[2], wb[2]])
    assert reward.group("a", imgs_a) == pytest.approx(wa)
    bad = RemoteGroupReward(url, method="pairwise", max_retries=0)
    with pytest.raises(RuntimeError, match="too many images"):
        bad.group("a", _images([1] * 17))


def test_one_name_for_both_orders_and_one_wire_schema(scripted: tuple[str, ScriptedBackend]) -> None:
    """``both_orders`` on every route, ``swap`` as its alias; every answer parses with the wire models
    the client uses (:mod:`unireward.serve.protocol`)."""
    from unireward.serve.protocol import JudgeResponse, RewardsResponse

    url, _ = scripted
    imgs = [data_url(im, "PNG") for im in _images([250, 10, 120, 60])]
    pair = {"task": "image_generation", "prompt": "a red square", "candidates": imgs[:2]}
    votes = {}
    for key in ("both_orders", "swap"):
        r = httpx.post(url + "/v1/judge", json={**pair, key: True}, timeout=60)
        assert r.status_code == 200, r.text
        votes[key] = JudgeResponse.model_validate(r.json()).model_dump()["votes"]
    assert votes["both_orders"] == votes["swap"] == [1, 1]  # the redder image wins in both orders
    one = httpx.post(url + "/v1/judge", json=pair, timeout=60).json()
    assert len(one["votes"]) == 1
    r = httpx.post(url + "/v1/judge", json={**pair, "both_orders": True, "swap": False}, timeout=60)
    assert r.status_code == 400 and "both_orders" in r.json()["error"]["message"]
    group = {"task": "image_generation", "prompt": "a red square", "candidates": imgs}
    a = RewardsResponse.model_validate(httpx.post(url + "/v1/rewards", json={**group, "swap": True}, timeout=60).json())
    b = RewardsResponse.model_validate(httpx.post(url + "/v1/rewards", json={**group, "both_orders": True}, timeout=60).json())
    assert a.rewards == b.rewards and len(a.judgments) == len(b.judgments) == 12
    r = httpx.post(url + "/v1/rewards", json={**group, "prompt": 5}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
