"""Qwen3-VL: 16-px patches merged 2x2 (one vision token per 32x32 pixels), DeepStack vision features,
interleaved multimodal rotary embeddings, and per-frame timestamps in video prompts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from unireward.media import VisionBudget
from unireward.models.family import ModelFamily, register
from unireward.models.qwen2_5_vl import qwen_processor_kwargs, qwen_size


class Qwen3VLFamily(ModelFamily):
    name = "qwen3_vl"
    model_types = ("qwen3_vl",)
    vision_prefixes = ("visual.", "model.visual.")
    factor = 32

    def model_class(self) -> type:
        from transformers import Qwen3VLForConditionalGeneration

        return Qwen3VLForConditionalGeneration

    def processor_kwargs(self, budget: VisionBudget) -> dict[str, Any]:
        return qwen_processor_kwargs(budget)

    def video_kwargs(self, videos: list[Any]) -> dict[str, Any]:
        # The processor writes "<t seconds>" before each frame from the video's fps and frame indices;
        # frames from unireward.media carry both. Without them it falls back to 24 fps and 0, 1, 2, ...
        if not any(getattr(v, "fps", None) for v in videos):
            return {}
        def unknown(v: Any) -> dict[str, Any]:  # a bare frame list: the processor's own fallback
            return {"total_num_frames": len(v), "fps": None, "frames_indices": list(range(len(v)))}

        return {"video_metadata": [v.metadata() if hasattr(v, "metadata") else unknown(v) for v in videos]}

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
        from transformers import (
            Qwen3VLConfig,
            Qwen3VLForConditionalGeneration,
        )

        from unireward.models.chat_template import QWEN3_VL_CHAT_TEMPLATE
        from unireward.models.tiny import (
            attention_shape,
            mrope_section,
            tiny_tokenizer,
        )

        tokenizer, ids, out = tiny_tokenizer(out_dir, vocab_size, QWEN3_VL_CHAT_TEMPLATE)
        heads, kv_heads, head_dim = attention_shape(hidden_size)
        patch, merge = 16, 2
        config = Qwen3VLConfig(
            text_config={
                "vocab_size": len(tokenizer), "hidden_size": hidden_size, "intermediate_size": hidden_size * 2,
                "num_hidden_layers": num_layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                "head_dim": head_dim, "max_position_embeddings": 32768, "pad_token_id": ids["<|endoftext|>"],
                "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta,
                                    "mrope_section": mrope_section(head_dim), "mrope_interleaved": True},
            },
            vision_config={
                "depth": vision_depth, "hidden_size": vision_hidden, "intermediate_size": vision_hidden * 2,
                "num_heads": max(1, vision_hidden // 32), "out_hidden_size": hidden_size, "patch_size": patch,
                "spatial_merge_size": merge, "temporal_patch_size": 2, "num_position_embeddings": 16 * 16,
                # DeepStack: features of the first layer are also injected into the decoder
                "deepstack_visual_indexes": [0],
            },
            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
            tie_word_embeddings=True,
        )  # fmt: skip
        return save_tiny_qwen3_style(Qwen3VLForConditionalGeneration, config, tokenizer, ids, out, seed,
                                     qwen_size(self.budget()), patch, merge)


def save_tiny_qwen3_style(model_class: type, config: Any, tokenizer: Any, ids: dict[str, int], out: Path,
                          seed: int, size: dict[str, int], patch: int, merge: int) -> Path:
    """Seed, build and save a tiny model of a Qwen3-VL-style family with its processor (shared by the
    families whose vision side and chat template are Qwen3-VL's)."""
    import torch
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    from unireward.models.chat_template import QWEN3_VL_CHAT_TEMPLATE
    from unireward.models.tiny import set_generation_defaults

    config.text_config.bos_token_id = ids["<|endoftext|>"]
    config.text_config.eos_token_id = ids["<|im_end|>"]
    torch.manual_seed(seed)
    model = model_class(config)
    set_generation_defaults(model, ids["<|im_end|>"], ids["<|endoftext|>"])
    model.save_pretrained(out)
    common = {"size": size, "patch_size": patch, "merge_size": merge, "temporal_patch_size": 2}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**common),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**common, do_sample_frames=False),
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    return out


register(Qwen3VLFamily())
