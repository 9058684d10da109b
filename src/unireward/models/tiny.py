"""Helpers shared by the tiny-model builders of every family."""

from __future__ import annotations

from typing import Any


def attention_shape(hidden_size: int) -> tuple[int, int, int]:
    """``(heads, kv_heads, head_dim)`` for a tiny decoder: 16-wide heads, grouped 2:1."""
    heads = max(2, hidden_size // 16)
    if hidden_size % heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by {heads} heads")
    return heads, max(1, heads // 2), hidden_size // heads


def mrope_section(head_dim: int) -> list[int]:
    """Temporal/height/width split of the rotary half-dimension (sums to ``head_dim // 2``)."""
    half = head_dim // 2
    if half < 3:
        raise ValueError(f"head_dim {head_dim} is too small for 3-axis rotary embeddings")
    return [half - 2 * (half // 3), half // 3, half // 3]


def set_generation_defaults(model: Any, eos_id: int, pad_id: int) -> None:
    """Greedy by default, stopping at the end-of-turn token."""
    model.generation_config.eos_token_id = [eos_id]
    model.generation_config.pad_token_id = pad_id
    model.generation_config.do_sample = False
