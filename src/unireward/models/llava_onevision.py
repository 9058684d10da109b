"""LLaVA-OneVision: a SigLIP vision tower, a two-layer projector and a Qwen2 decoder.

Images are tiled "anyres": the image is fitted to the best of ``image_grid_pinpoints`` and cut into
tiles of the vision tower's input size, plus one down-scaled base view of the whole image. The
token count therefore depends on the aspect ratio and on which grid is chosen, not only on area;
:meth:`LlavaOneVisionFamily.expected_image_tokens` recomputes it from the processor's settings.

Every image is tiled on its own, also when a prompt holds several (a pair, or video frames given as
images), as the original UnifiedReward-Think LLaVA-OV inference code does; see :meth:`load`.

Videos are fed as the official LLaVA video scripts feed them (``inference_llava/video_generation``):
each frame squashed to 512 x 512, then one untiled view of the tower's input (27 x 27 = 729 tokens for
SigLIP-so400m-384), no 2 x 2 pooling and no newline token, a line break after every frame, exactly the
token layout of their ``"<image>\n" * 16`` prompt. transformers' own video path pools each frame to
196 tokens and ends the video with a newline embedding, which the released judge never saw.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

from PIL import Image

from unireward.media import VisionBudget
from unireward.models.family import ModelFamily, register

#: one placeholder per image/video part; the processor expands it to that medium's vision tokens
IMAGE_TOKEN, VIDEO_TOKEN = "<image>", "<video>"
#: the official LLaVA video scripts resize every frame to this square before the image processor
OFFICIAL_FRAME_SIDE = 512


def llava_chat_template() -> str:
    """The Qwen2 chat layout of LLaVA-OV, with one ``<image>``/``<video>`` placeholder per part."""
    return (
        "{%- for message in messages -%}"
        "<|im_start|>{{ message['role'] + '\\n' }}"
        "{%- if message['content'] is string -%}{{ message['content'] }}"
        "{%- else -%}{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' -%}" + IMAGE_TOKEN + "{{ '\\n' }}"
        "{%- elif part['type'] == 'video' -%}" + VIDEO_TOKEN + "{{ '\\n' }}"
        "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
        "{%- endif -%}{%- endfor -%}{%- endif -%}"
        "<|im_end|>{{ '\\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}<|im_start|>assistant{{ '\\n' }}{%- endif -%}"
    )


def best_grid(height: int, width: int, pinpoints: list[list[int]]) -> tuple[int, int]:
    """The pinpoint resolution that keeps the most of the image at the least padding."""
    best, best_fit, best_waste = (0, 0), -1, math.inf
    for h, w in pinpoints:
        scale = min(w / width, h / height)
        fit = min(int(width * scale) * int(height * scale), width * height)
        waste = w * h - fit
        if fit > best_fit or (fit == best_fit and waste < best_waste):
            best, best_fit, best_waste = (h, w), fit, waste
    return best


def anyres_tokens(height: int, width: int, tile: int, patch: int, pinpoints: list[list[int]], max_tiles: int) -> int:
    """Vision tokens of one anyres image: the base view, the un-padded tile grid, one newline per row;
    grids above ``max_tiles`` tiles' worth of features are scaled down (``anyres_max_N``)."""
    side = tile // patch
    grid_h, grid_w = best_grid(height, width, pinpoints)
    rows, cols = side * (grid_h // tile), side * (grid_w // tile)
    if width / height > cols / rows:  # letterboxed: drop the padded rows
        rows -= 2 * ((rows - int(round(height * cols / width, 7))) // 2)
    else:
        cols -= 2 * ((cols - int(round(width * rows / height, 7))) // 2)
    ratio = math.sqrt(rows * cols / (max_tiles * side * side))
    if ratio > 1.1:
        rows, cols = int(rows // ratio), int(cols // ratio)
    return side * side + rows * cols + rows


class LlavaOneVisionFamily(ModelFamily):
    name = "llava_onevision"
    model_types = ("llava_onevision",)
    # The vision tower only, as in the paper; the projector trains with the language model.
    vision_prefixes = ("vision_tower.", "model.vision_tower.")
    # SigLIP patch side; the processor resizes to its own tiles, so this only keeps media on the patch grid
    factor = 14

    def model_class(self) -> type:
        from transformers import LlavaOnevisionForConditionalGeneration

        return LlavaOnevisionForConditionalGeneration

    def processor_kwargs(self, budget: VisionBudget) -> dict[str, Any]:
        # Nothing to bound here: the budget caps the image before the processor, and the pinpoint
        # grid the processor picks follows the image's size (a 384x384 image stays one tile).
        return {}

    def expected_image_tokens(self, width: int, height: int, processor: Any = None) -> int | None:
        if processor is None:
            return None
        ip = processor.image_processor
        tile = ip.size["height"]
        patch = tile // int(math.isqrt(processor.num_image_tokens))
        max_tiles = int(processor.vision_aspect_ratio.removeprefix("anyres_max_"))
        n = anyres_tokens(height, width, tile, patch, ip.image_grid_pinpoints, max_tiles)
        return n - (processor.vision_feature_select_strategy == "default")

    def expected_video_tokens(self, frames: int, processor: Any = None) -> int | None:
        # the official layout: every frame in full, a line break between frames
        if processor is None or not frames:
            return None
        return frames * int(processor.num_image_tokens) + frames - 1

    def load(self, model_id: str, dtype: str = "auto", device: str | None = None, **kwargs: Any) -> tuple[Any, Any]:
        model, processor = super().load(model_id, dtype=dtype, device=device, **kwargs)
        _tile_every_image(processor)
        _official_video_features(model)
        return model, processor

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
        tile: int = 56,
    ) -> Path:
        import torch
        from transformers import (
            LlavaOnevisionConfig,
            LlavaOnevisionForConditionalGeneration,
            LlavaOnevisionImageProcessor,
            LlavaOnevisionProcessor,
            LlavaOnevisionVideoProcessor,
        )

        from unireward.models.tiny import attention_shape, set_generation_defaults, tiny_tokenizer

        template = llava_chat_template()
        tokenizer, ids, out = tiny_tokenizer(out_dir, vocab_size, template, (IMAGE_TOKEN, VIDEO_TOKEN))
        heads, kv_heads, _ = attention_shape(hidden_size)
        patch = 14
        # grids of up to 2x2 tiles; anyres_max_9 as in the released LLaVA-OV checkpoints
        pinpoints = [[tile * r, tile * c] for r in (1, 2) for c in (1, 2)]
        config = LlavaOnevisionConfig(
            text_config={
                "model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": hidden_size,
                "intermediate_size": hidden_size * 2, "num_hidden_layers": num_layers, "num_attention_heads": heads,
                "num_key_value_heads": kv_heads, "max_position_embeddings": 32768, "rope_theta": rope_theta,
                "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True,
            },
            vision_config={
                "model_type": "siglip_vision_model", "hidden_size": vision_hidden, "intermediate_size": vision_hidden * 2,
                "num_hidden_layers": vision_depth, "num_attention_heads": max(1, vision_hidden // 32),
                "image_size": tile, "patch_size": patch,
            },
            image_token_index=ids[IMAGE_TOKEN], video_token_index=ids[VIDEO_TOKEN],
            vision_feature_select_strategy="full", vision_feature_layer=-1,
            image_grid_pinpoints=pinpoints, vision_aspect_ratio="anyres_max_9", tie_word_embeddings=True,
        )  # fmt: skip
        torch.manual_seed(seed)
        model = LlavaOnevisionForConditionalGeneration(config)
        set_generation_defaults(model, ids["<|im_end|>"], ids["<|endoftext|>"])
        model.save_pretrained(out)
        size = {"height": tile, "width": tile}
        processor = LlavaOnevisionProcessor(
            image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints),
            tokenizer=tokenizer,
            video_processor=LlavaOnevisionVideoProcessor(size=size, do_sample_frames=False),
            num_image_tokens=(tile // patch) ** 2,
            vision_feature_select_strategy="full",
            vision_aspect_ratio="anyres_max_9",
            chat_template=template,
        )
        processor.save_pretrained(out)
        return out


def _tile_every_image(processor: Any) -> None:
    """Make the processor tile each image on its own, also when a prompt holds several.

    Given images grouped per prompt, transformers' LLaVA-OV processor switches a multi-image prompt
    to one untiled view per image and returns ``batch_num_images`` so the model does the same. TRL's
    GRPO trainer groups images per prompt but drops ``batch_num_images`` when it scores completions,
    so the model then expects tiles the processor never made and fails. Handing the image processor a
    flat list gives every image its anyres tiles, the layout the original UnifiedReward-Think LLaVA-OV
    code uses for pairs and frames, and the model's default (no ``batch_num_images``) agrees with it.
    The subclass keeps the class name, so a saved processor still loads as the stock one.
    """
    ip = processor.image_processor
    base = type(ip)
    if getattr(base, "_tiles_every_image", False):
        return

    def preprocess(self: Any, images: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(images, (list, tuple)) and any(isinstance(x, (list, tuple)) for x in images):
            images = [im for group in images for im in (group if isinstance(group, (list, tuple)) else [group])]
        return base.preprocess(self, images, *args, **kwargs)

    ip.__class__ = type(base.__name__, (base,), {"preprocess": preprocess, "_tiles_every_image": True, "__module__": base.__module__})

    # With every image tiled on its own, ``batch_num_images`` is all ones, which is also the model's
    # default; dropping it keeps trainers that forward every processor output (TRL's reference-model
    # pass does) from choking on a keyword their scoring function does not take.
    proc_base = type(processor)

    def call(self: Any, *args: Any, videos: Any = None, **kwargs: Any) -> Any:
        if videos is not None:  # the official scripts' first step: every frame squashed to 512 x 512
            square = (OFFICIAL_FRAME_SIDE, OFFICIAL_FRAME_SIDE)
            videos = [[f.resize(square, Image.Resampling.BICUBIC) if isinstance(f, Image.Image) else f for f in v]
                      if isinstance(v, (list, tuple)) else v for v in videos]  # fmt: skip
        out = proc_base.__call__(self, *args, videos=videos, **kwargs)
        if "batch_num_images" in out:
            del out["batch_num_images"]
        return out

    def replace_video_token(self: Any, video_inputs: dict[str, Any], video_idx: int, **kwargs: Any) -> str:
        # one full frame of tokens per frame, a line break between frames (the template adds the last)
        video = video_inputs["pixel_values_videos"][video_idx]
        frames = len(video) if isinstance(video, (list, tuple)) else video.shape[0]
        return "\n".join([self.video_token * self.num_image_tokens] * frames)

    processor.__class__ = type(proc_base.__name__, (proc_base,), {
        "__call__": call, "replace_video_token": replace_video_token, "__module__": proc_base.__module__})  # fmt: skip


def _official_video_features(model: Any) -> None:
    """Video features as the official scripts compute them: every frame's projected features in full
    (no 2 x 2 pooling) and no newline embedding after the video; the processor's
    ``replace_video_token`` above lays out the matching tokens."""
    inner = getattr(model, "model", model)
    if getattr(inner, "_official_video", False):
        return
    inner.apply_pooling = lambda features: features  # instance attribute: shadows the pooling method
    original = inner.get_video_features

    @functools.wraps(original)  # generate() reads the signature to pre-encode the video
    def get_video_features(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        out.pooler_output = out.pooler_output[:, :-1]  # transformers appends one newline per video
        return out

    inner.get_video_features = get_video_features
    inner._official_video = True


register(LlavaOneVisionFamily())
