"""A small byte-level BPE tokenizer trained offline, for the tiny test models.

``<think>``, ``</think>``, ``<answer>``, ``</answer>`` are single, *non-special* tokens: they
survive ``skip_special_tokens=True`` decoding, which the reward parser relies on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from unireward.protocol.tasks import THINK_TASKS

QWEN_SPECIAL = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip
THINK_TAGS = ["<think>", "</think>", "<answer>", "</answer>"]


def _corpus(extra: Iterable[str]) -> list[str]:
    from unireward.protocol.templates import get_family, list_families

    # Every think-verdict template of the paper's four tasks (a user family may cover only some): the
    # contract tiny models learn. The 2.0 / Edit / Flex prompts stay out, so that adding them left the
    # tiny models, and everything measured on them, unchanged.
    texts = [
        fam.text(t)
        for name in list_families()
        for fam in [get_family(name)]
        if fam.verdict == "think"
        for t in THINK_TASKS
        if (fam.directory / f"{t.value}.txt").is_file()
    ]
    words = (
        "red green blue yellow purple orange white black cyan magenta circle square triangle star "
        "image video answer question caption better worse score total semantic consistency aesthetics "
        "authenticity temporal coherence correctness clarity accuracy moves left right up down static "
        "shows matches does not match no vs Caption Image: Video: the a an of is are with and on in which what how many colour shape "
        "Image 1 is better Image 2 is better Video 1 is better Video 2 is better Answer 1 is better "
        "Answer 2 is better 0 1 2 3 4 5 6 7 8 9 10 /10 + = ; : - . , ( )"
    )
    return texts + [words] * 20 + list(extra)


def train_tokenizer(vocab_size: int = 1024, extra_corpus: Iterable[str] = ()) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=QWEN_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(extra_corpus), trainer=trainer)
    return tok


def fast_tokenizer(
    cls: Any,
    tok: Tokenizer,
    think_tags: list[str],
    chat_template: str,
    eos_token: str = "<|im_end|>",
    pad_token: str = "<|endoftext|>",
    **extra: Any,
) -> Any:
    """Wrap a trained tokenizer as ``cls`` (a fast HF tokenizer) with left padding, the chat template,
    and the think/answer tags as single non-special tokens."""
    from tokenizers import AddedToken

    tokenizer = cls(
        tokenizer_object=tok, eos_token=eos_token, pad_token=pad_token, padding_side="left",
        chat_template=chat_template, **extra,
    )  # fmt: skip
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in think_tags])
    return tokenizer
