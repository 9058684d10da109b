"""Helpers shared by the tiny-model builders of every family."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def tiny_tokenizer(
    out_dir: str | os.PathLike[str], vocab_size: int, chat_template: str, extra_special: tuple[str, ...] = ()
) -> tuple[Any, dict[str, int], Path]:
    """The offline BPE tokenizer of a tiny model (Qwen's special tokens plus ``extra_special``, the
    think/answer tags, ``chat_template``), the ids of those special tokens, and ``out_dir`` created."""
    from transformers import PreTrainedTokenizerFast

    from unireward.models.tokenizer import QWEN_SPECIAL, THINK_TAGS, fast_tokenizer, train_tokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(vocab_size)
    if extra_special:
        tok.add_special_tokens(list(extra_special))
    tokenizer = fast_tokenizer(PreTrainedTokenizerFast, tok, THINK_TAGS, chat_template)
    return tokenizer, {t: tokenizer.convert_tokens_to_ids(t) for t in (*QWEN_SPECIAL, *extra_special)}, out


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
