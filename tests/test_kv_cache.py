"""The in-place key/value cache: the same tensors as transformers' torch.cat cache at every step, and
the same generations (greedy and seeded sampling, padded batches, G samples per prompt)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers.cache_utils import DynamicLayer

from unireward.judge.backends import SamplingParams, TransformersBackend
from unireward.judge.kv_cache import GrowingCache, GrowingLayer, cache_kwargs
from unireward.protocol.templates import render_messages


def test_layer_matches_concatenation_through_growth_crop_select_and_repeat() -> None:
    gen = torch.Generator().manual_seed(0)
    ours, ref = GrowingLayer(), DynamicLayer()
    batch = [3]

    def step(n: int) -> None:
        k, v = (torch.randn(batch[0], 2, n, 8, generator=gen) for _ in range(2))
        a, b = ours.update(k, v), ref.update(k, v)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert ours.get_seq_length() == ref.get_seq_length()

    step(200)  # prefill: room for half as much again
    first = ours._k
    for _ in range(100):
        step(1)
    assert ours._k is first  # 100 steps written in place
    step(1)  # the 101st grows the buffer
    assert ours._k is not first
    for layer in (ours, ref):
        layer.crop(-5)
    step(2)
    idx = torch.tensor([2, 0])
    for layer in (ours, ref):
        layer.batch_select_indices(idx)
    batch[0] = 2
    step(1)
    for layer in (ours, ref):
        layer.batch_repeat_interleave(2)
    batch[0] = 4
    for _ in range(3):
        step(1)
    assert ours.keys.shape[0] == 4


def test_cache_replaces_the_full_attention_layers(tiny_model: Path) -> None:
    backend = TransformersBackend.load(str(tiny_model))
    cache = GrowingCache(backend.model.config)
    assert cache.layers and all(type(layer) is GrowingLayer for layer in cache.layers)
    (name, value), = cache_kwargs(backend.model).items()
    assert name in ("cache", "past_key_values") and isinstance(value, GrowingCache)


@pytest.fixture(scope="module")
def wide_backend(tiny_model: Path) -> TransformersBackend:
    """The tiny model with wide weights, so outputs depend on the prompt and on every cached key."""
    backend = TransformersBackend.load(str(tiny_model), dtype="float32")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in backend.model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3, generator=gen)
    return backend


def test_generations_are_those_of_transformers_cache(wide_backend: TransformersBackend, tiny_images: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import unireward.judge.backends as backends

    requests = [render_messages("image_generation", "a red square " * (1 + 5 * i), [tiny_images[i], tiny_images[-1 - i]]) for i in range(3)]
    greedy = SamplingParams(max_new_tokens=30, min_new_tokens=30)
    sampled = SamplingParams(num_samples=3, temperature=1.0, top_p=0.95, max_new_tokens=16, min_new_tokens=16, seed=3)
    ours = [wide_backend.generate(requests, greedy), wide_backend.generate(requests[:2], sampled)]
    monkeypatch.setattr(backends, "cache_kwargs", lambda model: {})
    theirs = [wide_backend.generate(requests, greedy), wide_backend.generate(requests[:2], sampled)]
    for a, b in zip(ours, theirs, strict=True):
        assert [g.token_ids for g in a] == [g.token_ids for g in b]  # type: ignore[union-attr]
    assert len({tuple(t) for t in ours[0][0].token_ids + ours[0][1].token_ids}) == 2  # type: ignore[union-attr]
