"""Model families on the tiny offline Qwen2.5-VL: round trip, tokenizer tags, chat template, errors, generation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from unireward.media import load_video
from unireward.models import ModelLoadError, detect_family, get_family, list_families, load_model
from unireward.protocol import render_messages

TAGS = ["<think>", "</think>", "<answer>", "</answer>"]


@pytest.fixture(scope="module")
def loaded(tiny_model: Path):
    return load_model(str(tiny_model))


def test_build_and_load_round_trip(tiny_model: Path, loaded) -> None:
    model, processor, family = loaded
    assert family.name == "qwen2_5_vl" and "qwen2_5_vl" in list_families()
    assert detect_family(str(tiny_model)) is family
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration" and not model.training
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    # loading again gives the same weights (nothing is re-initialised on load)
    fresh = family.model_class().from_pretrained(tiny_model)
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), fresh.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)


def test_padding_side_survives_reload(tiny_model: Path) -> None:
    from transformers import AutoProcessor, AutoTokenizer

    assert AutoTokenizer.from_pretrained(tiny_model).padding_side == "left"
    assert AutoProcessor.from_pretrained(tiny_model).tokenizer.padding_side == "left"
    config = json.loads((tiny_model / "tokenizer_config.json").read_text())
    assert config.get("padding_side") == "left"


def test_think_and_answer_tags_are_single_tokens_that_survive_decoding(loaded) -> None:
    _, processor, _ = loaded
    tok = processor.tokenizer
    ids = [tok.convert_tokens_to_ids(t) for t in TAGS]
    assert len(set(ids)) == 4 and tok.unk_token_id not in ids
    for tag, i in zip(TAGS, ids, strict=True):
        assert tok.encode(tag, add_special_tokens=False) == [i]
        assert i in tok.encode(f"word{tag}word", add_special_tokens=False)
    text = "<think>\n1. Aesthetics: Image 1 (9/10)\n</think>\n<answer>Image 1 is better</answer>"
    encoded = tok.encode(text + "<|im_end|>", add_special_tokens=False)
    assert tok.decode(encoded, skip_special_tokens=True) == text
    assert tok.decode(encoded, skip_special_tokens=False).endswith("<|im_end|>")


def test_chat_template_with_arrow_shaped_parts(loaded) -> None:
    """datasets/Arrow gives every part every key; the template must go by ``type``."""
    _, processor, _ = loaded
    arrow = [{"role": "user", "content": [
        {"type": "image", "image": None, "video": None, "text": None},
        {"type": "video", "image": None, "video": None, "text": None},
        {"type": "text", "image": None, "video": None, "text": "Which is better?"},
    ]}, {"role": "assistant", "content": [
        {"type": "text", "image": None, "video": None, "text": "<think>x</think><answer>Image 1 is better</answer>"},
    ]}]  # fmt: skip
    rendered = processor.apply_chat_template(arrow, tokenize=False)
    assert rendered == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|video_pad|><|vision_end|>"
        "Which is better?<|im_end|>\n<|im_start|>assistant\n<think>x</think><answer>Image 1 is better</answer>"
        "<|im_end|>\n"
    )
    plain = [{"role": "user", "content": "hi"}]
    assert processor.apply_chat_template(plain, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_unreachable_hub_id_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for call in (lambda m: load_model(m), lambda m: get_family("qwen2_5_vl").load(m), detect_family):
        with pytest.raises(ModelLoadError) as e:
            call("CodeGoat24/UnifiedReward-Think-qwen-7b")
        msg = str(e.value)
        assert "HF_HUB_OFFLINE=1" in msg and "hf download CodeGoat24/UnifiedReward-Think-qwen-7b" in msg
        assert "unireward tiny-model" in msg


def test_bad_ids_and_folders(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "no" / "such" / "model"))
    with pytest.raises(ModelLoadError, match="neither a local folder nor a Hugging Face model id"):
        load_model("not a model id!")
    other = tmp_path / "llama"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ModelLoadError, match="'llama' model, which unireward does not support.*qwen2_5_vl"):
        load_model(str(other))
    (other / "config.json").write_text("{broken")
    with pytest.raises(ModelLoadError, match="cannot read"):
        detect_family(str(other))
    (other / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="no model_type"):
        detect_family(str(other))
    # a folder with a config but no weights
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(tiny_model / "config.json", partial / "config.json")
    with pytest.raises(ModelLoadError, match="partial"):
        load_model(str(partial))
    with pytest.raises(KeyError, match="unsupported model family"):
        get_family("llava")


def test_vision_tower_freezing(loaded) -> None:
    model, _, family = loaded
    vision = {n for n, _ in model.named_parameters() if family.is_vision_parameter(n)}
    assert vision and all("visual" in n for n in vision)
    assert any("language_model" in n or "lm_head" in n for n, _ in model.named_parameters() if n not in vision)
    try:
        frozen = family.freeze_vision(model)
        assert frozen == sum(p.numel() for n, p in model.named_parameters() if n in vision)
        assert all(p.requires_grad == (n not in vision) for n, p in model.named_parameters())
    finally:
        for p in model.parameters():
            p.requires_grad_(True)


def test_generate_from_two_real_videos(loaded, videoalign_videos: list[Path]) -> None:
    model, processor, family = loaded
    budget = family.budget(min_pixels=28 * 28, max_pixels=56 * 56, max_total_pixels=16 * 56 * 56)
    videos = [load_video(p, budget, n_videos=2) for p in videoalign_videos[:2]]
    assert [len(v) for v in videos] == [8, 8]
    messages = render_messages("video_generation", "A dog runs on the beach.", videos)
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.count("<|video_pad|>") == 2
    inputs = processor(text=[text], videos=videos, return_tensors="pt", **family.processor_kwargs(budget))
    # the processor keeps our sizes: 8 frames -> 4 temporal patches; height/width in 14-px patches
    (w, h) = videos[0][0].size
    assert inputs["video_grid_thw"].tolist() == [[4, h // 14, w // 14]] * 2
    n_video_tokens = int((inputs["input_ids"] == model.config.video_token_id).sum())
    assert n_video_tokens == 2 * 4 * (h // 28) * (w // 28)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    assert 1 <= new.numel() <= 6
    assert isinstance(processor.decode(new, skip_special_tokens=True), str)
