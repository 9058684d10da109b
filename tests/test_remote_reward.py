"""``RemoteGroupReward`` called with the shapes TRL's GRPOTrainer passes (conversational prompts and
completions, the ``images`` column), with ``group()``, and with video files, against a real tiny-model
server on 127.0.0.1 (greedy, so the same inputs give the same rewards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from serve_util import data_url, running, video_bytes

from unireward.judge import Judge, JudgeOptions, TransformersBackend
from unireward.rewards import RemoteGroupReward
from unireward.serve import ServerLimits, create_app

ANSWERS = ["It is red.", "Blue, mostly.", "<think>looks red</think><answer>red</answer>"]


@pytest.fixture(scope="module")
def url(tiny_model: Path) -> Iterator[str]:
    judge = Judge(TransformersBackend.load(str(tiny_model)), JudgeOptions(max_new_tokens=6))
    with running(create_app(judge, ServerLimits(max_new_tokens=6), model_name="tiny")) as u:
        yield u


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8), "RGB")


def test_trl_conversational_prompts_and_completions(url: str, photo: Image.Image) -> None:
    """What GRPOTrainer hands a reward function for a conversational VLM dataset: prompts as message
    lists (a system turn, then the image placeholder and the question), completions as
    ``[{"role": "assistant", "content": text}]``, the images in the ``images`` column. The rewards equal
    a plain /v1/rewards call on the same question, answers and image."""
    question = "What colour is the square?"
    prompt = [{"role": "system", "content": "Answer briefly."},
              {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]  # fmt: skip
    reward = RemoteGroupReward(url, task="image_understanding")
    got = reward(prompts=[prompt] * 3, completions=[[{"role": "assistant", "content": a}] for a in ANSWERS],
                 images=[[photo]] * 3, completion_ids=[[1]] * 3, trainer_state=None)  # fmt: skip
    assert len(got) == 3 and len(reward.last_judgments) == 1 and len(reward.last_judgments[0]) == 3
    r = httpx.post(url + "/v1/rewards", timeout=120, json={
        "task": "image_understanding", "prompt": question, "candidates": ANSWERS, "reference": data_url(photo)})  # fmt: skip
    assert r.status_code == 200, r.text
    assert got == pytest.approx(r.json()["rewards"])
    assert [j["text"] for j in reward.last_judgments[0]] == [j["text"] for j in r.json()["judgments"]]


def test_group_fills_last_judgments(url: str, photo: Image.Image) -> None:
    reward = RemoteGroupReward(url, task="image_generation")
    imgs = [photo, photo.rotate(90), photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    rewards = reward.group("a noisy square", imgs)
    assert len(rewards) == 3 and sum(rewards) == pytest.approx(1.5)  # win rates over 3 pairs sum to n/2
    assert [(j["i"], j["j"]) for j in reward.last_judgments[0]] == [(0, 1), (0, 2), (1, 2)]


def test_video_paths(url: str, tmp_path: Path) -> None:
    """A video file with a video task is sent whole (the server samples its frames); with an image task
    it is refused by name, not with a raw PIL error."""
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"clip{i}.mp4")
        paths[-1].write_bytes(video_bytes(8, (448, 448)))
    reward = RemoteGroupReward(url, task="video_generation")
    assert len(reward.group("a grey fade", [str(p) for p in paths])) == 2
    assert [(j["i"], j["j"]) for j in reward.last_judgments[0]] == [(0, 1)]
    frames = np.stack([np.full((64, 64, 3), 30 * k, dtype=np.uint8) for k in range(8)])  # a clip as one array
    assert len(reward.group("a grey fade", [frames, frames[::-1].copy()])) == 2
    with pytest.raises(ValueError, match=r"clip0\.mp4: not an image file .*video task"):
        RemoteGroupReward(url, task="image_generation").group("x", [str(paths[0]), str(paths[1])])
