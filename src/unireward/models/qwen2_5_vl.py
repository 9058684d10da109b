"""Qwen2.5-VL: the family of the released UnifiedReward-Think-qwen checkpoints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from unireward.media import VisionBudget
from unireward.models.family import ModelFamily, register


def qwen_size(budget: VisionBudget) -> dict[str, int]:
    """The Qwen image/video processors' pixel bounds for a budget."""
    return {"shortest_edge": budget.min_pixels, "longest_edge": budget.max_pixels}


def qwen_processor_kwargs(budget: VisionBudget) -> dict[str, Any]:
    """Processor call arguments shared by the Qwen families.

    Media arrive already resized by :mod:`unireward.media`, so the bounds only stop a second resize
    (and pin the limits for callers who pass raw images). Video arrives as already-sampled frames:
    no resampling, and the per-frame cap keeps each frame at the image budget.
    """
    size = qwen_size(budget)
    return {
        "images_kwargs": {"size": size},
        "videos_kwargs": {"size": size, "do_sample_frames": False, "cap_pixels_per_frame": True},
    }


class Qwen25VLFamily(ModelFamily):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    vision_prefixes = ("visual.", "model.visual.")
    factor = 28

    def model_class(self) -> type:
        from transformers import Qwen2_5_VLForConditionalGeneration

        return Qwen2_5_VLForConditionalGeneration

    def processor_kwargs(self, budget: VisionBudget) -> dict[str, Any]:
        return qwen_processor_kwargs(budget)

    def build_tiny(
        self,
        out_dir: str | os.PathLike[str],
        seed: int = 0,
        hidden_size: int = 64,
        num_layers: int = 2,
        vision_hidden: int = 64,
        vision_depth: int = 2,
        vocab_size: int = 1024,
        rope_theta: float = 10000.0,
    ) -> Path:
        import torch
        from transformers import (
            Qwen2_5_VLConfig,
            Qwen2_5_VLForConditionalGeneration,
            Qwen2_5_VLProcessor,
            Qwen2VLImageProcessor,
            Qwen2VLVideoProcessor,
        )

        from unireward.models.chat_template import QWEN_VL_CHAT_TEMPLATE
        from unireward.models.tiny import (
            attention_shape,
            mrope_section,
            set_generation_defaults,
            tiny_tokenizer,
        )

        tokenizer, ids, out = tiny_tokenizer(out_dir, vocab_size, QWEN_VL_CHAT_TEMPLATE)
        heads, kv_heads, head_dim = attention_shape(hidden_size)
        mrope = mrope_section(head_dim)
        config = Qwen2_5_VLConfig(
            text_config={
                "vocab_size": len(tokenizer), "hidden_size": hidden_size, "intermediate_size": hidden_size * 2,
                "num_hidden_layers": num_layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                "max_position_embeddings": 32768, "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True,
                "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta, "mrope_section": mrope},
            },
            vision_config={
                "depth": vision_depth, "hidden_size": vision_hidden, "intermediate_size": vision_hidden * 2,
                "num_heads": max(1, vision_hidden // 32), "out_hidden_size": hidden_size,
                "fullatt_block_indexes": [vision_depth - 1], "window_size": 112,
            },
            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
            tie_word_embeddings=True,
        )  # fmt: skip
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
        set_generation_defaults(model, ids["<|im_end|>"], ids["<|endoftext|>"])
        model.save_pretrained(out)
        size = qwen_size(self.budget())
        processor = Qwen2_5_VLProcessor(
            image_processor=Qwen2VLImageProcessor(size=size),
            tokenizer=tokenizer,
            video_processor=Qwen2VLVideoProcessor(size=size),
            chat_template=QWEN_VL_CHAT_TEMPLATE,
        )
        processor.save_pretrained(out)
        return out


register(Qwen25VLFamily())
