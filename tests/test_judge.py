"""The Judge on the tiny local model: batching, sampling, swap, bad media, pointwise, video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from unireward.data.schema import PreferencePair
from unireward.judge import Backend, BatchOptions, Judge, JudgeOptions, JudgeResult, TransformersBackend
from unireward.judge.backends import SamplingParams
from unireward.protocol import parse_judgment
from unireward.protocol.templates import render_messages


@pytest.fixture(scope="module")
def backend(tiny_model: Path) -> TransformersBackend:
    b = TransformersBackend.load(str(tiny_model))
    # The tiny model's default init writes the same token whatever the prompt; wider random weights
    # make outputs depend on the input, so batched-vs-single comparisons mean something.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in b.model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3, generator=gen)
    return b


@pytest.fixture(scope="module")
def judge(backend: TransformersBackend) -> Judge:
    return Judge(backend, JudgeOptions(max_new_tokens=8))


def _pairs(images: list[Path], n: int) -> list[PreferencePair]:
    return [
        PreferencePair(
            id=f"p{i}",
            task="image_generation",
            prompt="a plain coloured square " * (1 + i % 3),
            candidates=(str(images[i % 4]), str(images[(i + 1) % 4])),
            label=1,
        )
        for i in range(n)
    ]


def test_compare_returns_judgment_with_raw_text(judge: Judge, tiny_images: list[Path]) -> None:
    res = judge.compare("image_generation", "a red square", tiny_images[0], tiny_images[1])
    assert isinstance(res, JudgeResult)
    assert res.text and res.samples == [res.text]
    # a random model's 24 tokens name no verdict; the status is the parser's reading of that text
    assert res.status == parse_judgment(res.text, "image_generation").status and not res.ok
    assert len(res.votes) == 1 and res.error is None
    d = res.to_dict()
    assert d["task"] == "image_generation" and d["text"] == res.text


def test_batched_greedy_matches_one_at_a_time(backend: TransformersBackend, tiny_images: list[Path]) -> None:
    imgs = [Image.open(p).convert("RGB") for p in tiny_images]
    # different prompt lengths so the batch really is left-padded
    msgs = [render_messages("image_generation", "caption " * (1 + 3 * i), [imgs[i % 4], imgs[(i + 2) % 4]]) for i in range(5)]
    params = SamplingParams(max_new_tokens=12, min_new_tokens=12)
    single = [backend.generate([m], params)[0].texts for m in msgs]
    batched = [g.texts for g in backend.generate(msgs, params)]
    assert batched == single
    assert len({s[0] for s in single}) > 1  # outputs differ by prompt: the comparison is not vacuous


def test_token_budget_splits_batches_without_changing_results(backend: TransformersBackend, tiny_images: list[Path]) -> None:
    imgs = [Image.open(p).convert("RGB") for p in tiny_images]
    msgs = [render_messages("image_generation", "x " * (1 + i), [imgs[i % 4], imgs[(i + 1) % 4]]) for i in range(4)]
    lengths = [backend.estimate_tokens(m) for m in msgs]
    params = SamplingParams(max_new_tokens=6, min_new_tokens=6)
    calls: list[int] = []
    real_generate = backend.model.generate

    def counting(**kw):  # instrumentation only: the real generate runs
        calls.append(kw["input_ids"].shape[0])
        return real_generate(**kw)

    wide = [g.texts for g in backend.generate(msgs, params)]
    old = backend.batch
    backend.batch = BatchOptions(max_batch_size=16, max_batch_tokens=2 * max(lengths))
    backend.model.generate = counting
    try:
        narrow = [g.texts for g in backend.generate(msgs, params)]
    finally:
        backend.batch = old
        del backend.model.generate
    assert narrow == wide
    assert calls == [2, 2]


def test_estimate_counts_vision_tokens(backend: TransformersBackend) -> None:
    small = render_messages("image_generation", "x", [Image.new("RGB", (56, 56)), Image.new("RGB", (56, 56))])
    big = render_messages("image_generation", "x", [Image.new("RGB", (112, 112)), Image.new("RGB", (112, 112))])
    # 56x56 -> 4 tokens per image, 112x112 -> 16: the estimate grows by 2 x 12
    assert backend.estimate_tokens(big) - backend.estimate_tokens(small) == 24
    text = backend.processor.apply_chat_template(small, add_generation_prompt=True, tokenize=False)
    real = backend.processor(text=[text], images=[Image.new("RGB", (56, 56))] * 2, return_tensors="pt")
    assert backend.estimate_tokens(small) == real["input_ids"].shape[1]


def test_samples_share_one_vision_encoding(backend: TransformersBackend, tiny_images: list[Path]) -> None:
    calls = []
    visual = backend.model.model.visual
    handle = visual.register_forward_hook(lambda *a: calls.append(1))
    try:
        msgs = render_messages("image_generation", "a square", [Image.open(tiny_images[0]), Image.open(tiny_images[1])])
        out = backend.generate([msgs], SamplingParams(num_samples=4, temperature=1.0, max_new_tokens=6, seed=0))[0]
    finally:
        handle.remove()
    assert len(out.texts) == 4
    assert len(calls) == 1


def test_majority_vote_options(backend: TransformersBackend, tiny_images: list[Path]) -> None:
    j = Judge(backend, JudgeOptions(max_new_tokens=6, num_samples=3, temperature=1.0, seed=0))
    res = j.compare("image_generation", "a square", tiny_images[0], tiny_images[1])
    assert len(res.samples) == 3 and len(res.votes) == 3
    with pytest.raises(ValueError, match="temperature"):
        JudgeOptions(num_samples=3)


class _Recording(Backend):
    """The real backend, keeping the messages it was given."""

    def __init__(self, inner: Backend):
        self.inner, self.budget, self.name = inner, inner.budget, inner.name
        self.messages: list[list[dict[str, Any]]] = []

    def generate(self, messages_list: list[list[dict[str, Any]]], params: SamplingParams) -> list[Any]:
        self.messages.extend(messages_list)
        return self.inner.generate(messages_list, params)


def _shown(messages: list[dict[str, Any]]) -> tuple[list[tuple[int, int, tuple[int, ...]]], str]:
    """The images of a request (size and top-left colour, in order) and its text."""
    parts = [p for m in messages for p in (m["content"] if isinstance(m["content"], list) else [])]
    images = [(p["image"].size, p["image"].convert("RGB").getpixel((0, 0))) for p in parts if p.get("type") == "image"]
    return images, "".join(p.get("text", "") for p in parts if p.get("type") == "text")


def test_swap_judges_both_orders(backend: TransformersBackend, tiny_images: list[Path]) -> None:
    rec = _Recording(backend)
    j = Judge(rec, JudgeOptions(max_new_tokens=6, swap=True))
    res = j.compare("image_generation", "a square", tiny_images[0], tiny_images[1])
    assert len(res.samples) == 1 and len(res.swapped_samples) == 1 and len(res.votes) == 2
    assert len(rec.messages) == 2
    (fwd, fwd_text), (bwd, bwd_text) = (_shown(m) for m in rec.messages)
    red, blue = ((255, 0, 0), (0, 0, 255))
    assert [colour for _, colour in fwd] == [red, blue]  # as given: red first
    assert bwd == fwd[::-1] and fwd[0] != fwd[1]  # the same two images, blue first
    assert fwd_text == bwd_text and "a square" in fwd_text


def test_bad_media_is_an_invalid_row_not_an_exception(judge: Judge, tiny_images: list[Path], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    pairs = _pairs(tiny_images, 3)
    pairs.insert(1, PreferencePair(id="missing", task="image_generation", prompt="x", candidates=("nope.png", str(tiny_images[0])), label=1))
    pairs.insert(3, PreferencePair(id="corrupt", task="image_generation", prompt="x", candidates=(str(corrupt), str(tiny_images[0])), label=2))
    out = judge.compare_batch(pairs)
    assert [r.id for r in out] == ["p0", "missing", "p1", "corrupt", "p2"]
    assert out[1].status == "invalid" and "nope.png" in out[1].reason and "not found" in out[1].reason
    assert out[3].status == "invalid" and "cannot decode" in out[3].reason
    assert all(r.error is None and r.text for r in (out[0], out[2], out[4]))


def test_pointwise_score(judge: Judge, tiny_images: list[Path]) -> None:
    res = judge.score("image_generation", "a red square", tiny_images[0])
    assert res.mode.value == "pointwise" and res.text
    res = judge.score("image_understanding", "what colour?", "red", reference=tiny_images[0])
    assert res.mode.value == "pointwise" and res.error is None


def test_video_pair_with_real_videos(judge: Judge, videoalign_videos: list[Path]) -> None:
    a, b = videoalign_videos[:2]
    res = judge.compare("video_generation", "a video", a, b)
    assert res.error is None and res.text
    res = judge.compare("video_understanding", "what happens?", "it moves", "it is still", reference=a)
    assert res.error is None and res.text


def test_generate_returns_num_samples_per_request(judge: Judge, tiny_images: list[Path]) -> None:
    msgs = [render_messages("image_generation", "x", [Image.open(tiny_images[0]), Image.open(tiny_images[1])])] * 2
    out = judge.generate(msgs, num_samples=2, temperature=1.0, max_new_tokens=4)
    assert [len(x) for x in out] == [2, 2]
