"""Qwen3.5: Qwen3-VL's vision side (16-px patches merged 2x2, the same processor and per-frame
timestamps) in front of a hybrid decoder whose layers alternate Gated DeltaNet linear attention with
full attention (one full layer in four in the released models)."""

from __future__ import annotations

import os
from pathlib import Path

from unireward.models.family import register
from unireward.models.qwen2_5_vl import qwen_size
from unireward.models.qwen3_vl import Qwen3VLFamily, save_tiny_qwen3_style


class Qwen35Family(Qwen3VLFamily):
    name = "qwen3_5"
    model_types = ("qwen3_5",)

    def model_class(self) -> type:
        from transformers import Qwen3_5ForConditionalGeneration

        return Qwen3_5ForConditionalGeneration

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
            Qwen3_5Config,
            Qwen3_5ForConditionalGeneration,
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
        # both kinds of decoder layer, linear first as in the released models
        layer_types = ["linear_attention" if i % 2 == 0 else "full_attention" for i in range(num_layers)]
        config = Qwen3_5Config(
            text_config={
                "vocab_size": len(tokenizer), "hidden_size": hidden_size, "intermediate_size": hidden_size * 2,
                "num_hidden_layers": num_layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                "head_dim": head_dim, "max_position_embeddings": 32768, "pad_token_id": ids["<|endoftext|>"],
                "layer_types": layer_types, "linear_key_head_dim": 16, "linear_value_head_dim": 16,
                "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                # rotary on part of each head, as the released models (a quarter there, half here)
                "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta, "partial_rotary_factor": 0.5,
                                    "mrope_section": mrope_section(head_dim // 2), "mrope_interleaved": True},
            },
            vision_config={
                "depth": vision_depth, "hidden_size": vision_hidden, "intermediate_size": vision_hidden * 2,
                "num_heads": max(1, vision_hidden // 32), "out_hidden_size": hidden_size, "patch_size": patch,
                "spatial_merge_size": merge, "temporal_patch_size": 2, "num_position_embeddings": 16 * 16,
            },
            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
            tie_word_embeddings=True,
        )  # fmt: skip
        return save_tiny_qwen3_style(Qwen3_5ForConditionalGeneration, config, tokenizer, ids, out, seed,
                                     qwen_size(self.budget()), patch, merge)


register(Qwen35Family())
