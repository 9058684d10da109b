"""``unireward convert-llava``: a LLaVA-NeXT ``llava_qwen`` checkpoint (the layout of the released
UnifiedReward-Think-7b) becomes a transformers LLaVA-OneVision model that computes what the source
weights compute.

The source is made here from a tiny transformers LLaVA-OV model whose weights are written under the
LLaVA-NeXT names (``model.layers.*``, ``model.vision_tower.vision_tower.vision_model.*``,
``model.mm_projector.{0,2}.*``, ``model.image_newline``), with a LLaVA-NeXT ``config.json`` and a Qwen2
tokenizer that has no ``<image>`` token, sharded in two files as a 7B checkpoint would be.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from unireward.cli import main
from unireward.models import ModelLoadError, detect_family, load_model
from unireward.models.llava_convert import ConversionError, ConvertConfig, convert_llava_qwen
from unireward.protocol import parse_judgment

TILE, PATCH, V_HIDDEN, V_HEADS, V_LAYERS = 28, 14, 32, 2, 2
PINPOINTS = [[TILE * r, TILE * c] for r in (1, 2) for c in (1, 2)]


def _original_name(key: str) -> str:
    """transformers' in-memory name -> LLaVA-NeXT name (what the converter must undo)."""
    key = key.replace("model.vision_tower.vision_model.", "model.vision_tower.")  # transformers 4 kept this level
    for new, old in (
        ("model.language_model.", "model."),
        ("model.vision_tower.", "model.vision_tower.vision_tower.vision_model."),
        ("model.multi_modal_projector.linear_1.", "model.mm_projector.0."),
        ("model.multi_modal_projector.linear_2.", "model.mm_projector.2."),
    ):
        if key.startswith(new):
            return old + key[len(new) :]
    return key  # model.image_newline, lm_head.weight


def _tokenizer():
    from transformers import PreTrainedTokenizerFast

    from unireward.models.tokenizer import train_tokenizer

    return PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(512), eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )


def _reference(n_tokens: int):
    """A tiny LLaVA-OV whose <image>/<video> ids are the next two after the Qwen2 vocabulary, inside the
    padded embedding rows (Qwen2-7B: 151,646 tokens, 152,064 rows)."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    config = LlavaOnevisionConfig(
        text_config={
            "model_type": "qwen2", "vocab_size": n_tokens + 8, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 1e6,
            "max_position_embeddings": 4096, "tie_word_embeddings": False,
        },
        vision_config={
            "model_type": "siglip_vision_model", "hidden_size": V_HIDDEN, "intermediate_size": 48,
            "num_hidden_layers": V_LAYERS, "num_attention_heads": V_HEADS, "image_size": TILE, "patch_size": PATCH,
            "vision_use_head": False,
        },
        image_token_index=n_tokens, video_token_index=n_tokens + 1, vision_feature_select_strategy="full",
        vision_feature_layer=-1, image_grid_pinpoints=PINPOINTS, vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    with torch.no_grad():  # the newline parameter starts near zero; make it matter
        model.model.image_newline.normal_()
    return model


def _llava_next_config(n_tokens: int, tower: str = "tiny/siglip-test") -> dict:
    return {
        "architectures": ["LlavaQwenForCausalLM"], "model_type": "llava", "vocab_size": n_tokens + 8,
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "rope_theta": 1e6, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
        "hidden_act": "silu", "tie_word_embeddings": False, "use_sliding_window": False, "sliding_window": 4096,
        "torch_dtype": "float32", "image_aspect_ratio": "anyres_max_9", "image_grid_pinpoints": PINPOINTS,
        "mm_hidden_size": V_HIDDEN, "mm_patch_merge_type": "spatial_unpad", "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "mm_spatial_pool_mode": "bilinear",
        "mm_newline_position": "one_token", "mm_vision_tower": tower, "use_mm_proj": True,
        "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
    }  # fmt: skip


def _write_original(
    folder: Path, model, tokenizer, skip_vision: bool = False, extra: dict | None = None, config: dict | None = None
) -> Path:
    folder.mkdir(parents=True)
    state = {_original_name(k): v.contiguous().clone() for k, v in model.state_dict().items()}
    if skip_vision:
        state = {k: v for k, v in state.items() if not k.startswith("model.vision_tower.")}
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)  # older LLaVA-NeXT saves this buffer
    state.update(extra or {})
    keys = sorted(state)
    half = len(keys) // 2
    index = {}
    for i, part in enumerate((keys[:half], keys[half:]), start=1):
        name = f"model-{i:05d}-of-00002.safetensors"
        save_file({k: state[k] for k in part}, folder / name)
        index.update({k: name for k in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    (folder / "config.json").write_text(json.dumps(config or _llava_next_config(len(tokenizer))))
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory):
    tok = _tokenizer()
    ref = _reference(len(tok))
    src = _write_original(tmp_path_factory.mktemp("llava_next") / "src", ref, tok)
    return src, ref


@pytest.fixture(scope="module")
def converted(original, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src, _ = original
    out = tmp_path_factory.mktemp("converted") / "hf"
    assert main(["convert-llava", str(src), str(out), "--vision-heads", str(V_HEADS), "--vision-image-size", str(TILE)]) == 0
    return out


def _logits(model, processor, images: list[Image.Image], text: str) -> torch.Tensor:
    inputs = processor(images=images, text=[text], return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits


def _assert_same_logits(converted: Path, ref, images: list[Image.Image]) -> None:
    """The converted folder, loaded as any judge is, computes exactly what the source weights do."""
    model, processor, _ = load_model(str(converted))
    content = [*({"type": "image"} for _ in images), {"type": "text", "text": "Which is better?"}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    got, want = _logits(model, processor, images, text), _logits(ref, processor, images, text)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def _pair() -> list[Image.Image]:
    g = torch.Generator().manual_seed(1)
    return [
        Image.fromarray((torch.rand(40, 70, 3, generator=g) * 255).to(torch.uint8).numpy()),
        Image.fromarray((torch.rand(56, 30, 3, generator=g) * 255).to(torch.uint8).numpy()),
    ]


def test_converted_model_computes_what_the_source_weights_compute(original, converted: Path) -> None:
    _, ref = original
    assert detect_family(str(converted)).name == "llava_onevision"  # from the converted config
    _assert_same_logits(converted, ref, _pair())
    # the image placeholders became real vision tokens: a flipped image changes the logits
    model, processor, _ = load_model(str(converted))
    content = [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Which is better?"}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    other = _pair()
    other[0] = other[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert not torch.equal(_logits(model, processor, other, text), _logits(model, processor, _pair(), text))


def test_converted_processor_and_template_follow_the_llava_next_inference(converted: Path) -> None:
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(converted)
    ip = processor.image_processor
    assert list(ip.image_mean) == [0.5] * 3 and list(ip.image_std) == [0.5] * 3  # SigLIP, not CLIP
    assert ip.image_grid_pinpoints == PINPOINTS and ip.size["height"] == TILE
    assert processor.num_image_tokens == (TILE // PATCH) ** 2 and processor.vision_aspect_ratio == "anyres_max_9"
    config = json.loads((converted / "config.json").read_text())
    tok = processor.tokenizer
    assert config["image_token_index"] == tok.convert_tokens_to_ids("<image>")
    assert config["vision_config"]["num_hidden_layers"] == V_LAYERS and config["vision_feature_layer"] == -1
    # qwen_1_5: default system turn, placeholders on their own lines before the text
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Q"}]}]
    assert processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<image>\n<image>\nQ<|im_end|>\n<|im_start|>assistant\n"
    )
    with_system = [{"role": "system", "content": "Judge."}, *msgs]
    assert processor.apply_chat_template(with_system, tokenize=False).startswith("<|im_start|>system\nJudge.<|im_end|>")
    assert "LlavaQwenForCausalLM" not in json.dumps(config)
    assert json.loads((converted / "CONVERTED_FROM.json").read_text())["converter"] == "unireward convert-llava"


def test_converted_model_judges_from_the_cli(converted: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    images = []
    for i, colour in enumerate(("red", "blue")):
        images.append(tmp_path / f"{i}.png")
        Image.new("RGB", (50, 40), colour).save(images[-1])
    rc = main([
        "judge", "--model", str(converted), "--task", "image_generation", "--prompt", "a red square",
        "--candidate", str(images[0]), "--candidate", str(images[1]), "--max-new-tokens", "8",
    ])  # fmt: skip
    assert rc == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # a random model writes no verdict; what matters is that the converted judge generated text
    assert row["task"] == "image_generation" and row["text"]
    assert row["status"] == parse_judgment(row["text"], "image_generation").status != "ok"


def test_unconverted_checkpoint_gets_a_conversion_hint(original) -> None:
    src, _ = original
    for call in (lambda: detect_family(str(src)), lambda: load_model(str(src), family="llava_onevision")):
        with pytest.raises(ModelLoadError, match="unireward convert-llava"):
            call()


def test_dtype_conversion_and_refusing_a_full_folder(original, tmp_path: Path) -> None:
    src, _ = original
    out = convert_llava_qwen(str(src), tmp_path / "bf16", ConvertConfig(dtype="bfloat16", vision_heads=V_HEADS, vision_image_size=TILE))
    tensors = {}
    for f in out.glob("*.safetensors"):
        tensors.update(load_file(f))
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    with pytest.raises(ConversionError, match="not empty"):
        convert_llava_qwen(str(src), out, ConvertConfig(vision_heads=V_HEADS, vision_image_size=TILE))


def test_bin_weights_convert_too(original, tmp_path: Path) -> None:
    """Older LLaVA-NeXT checkpoints hold ``pytorch_model.bin``; tied-storage tensors must be copied."""
    src, ref = original
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for f in src.iterdir():
        if f.suffix != ".safetensors" and not f.name.endswith(".index.json"):
            (legacy / f.name).write_bytes(f.read_bytes())
    state = {}
    for f in src.glob("*.safetensors"):
        state.update(load_file(f))
    # two keys on one storage, as torch.save keeps tied tensors (both norms are still all ones)
    a, b = "model.layers.0.input_layernorm.weight", "model.layers.1.input_layernorm.weight"
    assert torch.equal(state[a], state[b])
    state[b] = state[a]
    torch.save(state, legacy / "pytorch_model.bin")
    out = convert_llava_qwen(str(legacy), tmp_path / "out", ConvertConfig(vision_heads=V_HEADS, vision_image_size=TILE))
    _assert_same_logits(out, ref, _pair()[1:])


def test_vision_weights_from_a_separate_siglip_checkpoint(tmp_path: Path) -> None:
    """A source without the tower takes it from a stock SigLIP checkpoint, minus its last layer and head."""
    from transformers import SiglipVisionConfig, SiglipVisionModel

    tok = _tokenizer()
    ref = _reference(len(tok))
    siglip = SiglipVisionModel(SiglipVisionConfig(
        hidden_size=V_HIDDEN, intermediate_size=48, num_hidden_layers=V_LAYERS + 1, num_attention_heads=V_HEADS,
        image_size=TILE, patch_size=PATCH, vision_use_head=True,
    ))  # fmt: skip
    siglip.save_pretrained(tmp_path / "siglip")
    kept = {k: v for k, v in siglip.state_dict().items() if f"layers.{V_LAYERS}." not in k and ".head." not in k}
    missing, _ = ref.model.vision_tower.load_state_dict(kept, strict=False)
    assert not missing
    src = _write_original(tmp_path / "src", ref, tok, skip_vision=True)
    with pytest.raises(ConversionError, match="--vision-tower"):
        convert_llava_qwen(str(src), tmp_path / "nope", ConvertConfig(vision_heads=V_HEADS, vision_image_size=TILE))
    # the same tower as the hub stores full SigLIP checkpoints: "vision_model." names beside a text tower
    hub = tmp_path / "siglip-hub"
    hub.mkdir()
    (hub / "config.json").write_text((tmp_path / "siglip" / "config.json").read_text())
    saved = load_file(next((tmp_path / "siglip").glob("*.safetensors")))
    save_file({**{"vision_model." + k.removeprefix("vision_model."): v for k, v in saved.items()},
               "text_model.embeddings.token_embedding.weight": torch.zeros(4, 4), "logit_scale": torch.zeros(1)},
              hub / "model.safetensors")  # fmt: skip
    for tower in (tmp_path / "siglip", hub):
        out = convert_llava_qwen(str(src), tmp_path / f"out-{tower.name}", ConvertConfig(vision_tower=str(tower), vision_heads=V_HEADS))
        _assert_same_logits(out, ref, _pair()[:1])


def test_bad_sources_are_named(original, tmp_path: Path, tiny_model: Path) -> None:
    src, ref = original
    tok = _tokenizer()
    with pytest.raises(ConversionError, match="not a LLaVA-NeXT llava_qwen checkpoint"):
        convert_llava_qwen(str(tiny_model), tmp_path / "a")
    with pytest.raises(ConversionError, match="unknown vision tower 'tiny/siglip-test'.*--vision-image-size and --vision-heads"):
        convert_llava_qwen(str(src), tmp_path / "b")
    stray = _write_original(tmp_path / "stray", ref, tok, extra={"model.vision_resampler.proj.weight": torch.zeros(2, 2)})
    with pytest.raises(ConversionError, match="unexpected.*vision_resampler"):
        convert_llava_qwen(str(stray), tmp_path / "c", ConvertConfig(vision_heads=V_HEADS, vision_image_size=TILE))
    square = tmp_path / "square"
    _write_original(square, ref, tok)
    cfg = json.loads((square / "config.json").read_text())
    for change, error in (({"image_aspect_ratio": "pad"}, "image_aspect_ratio 'pad'"),
                          ({"mm_patch_merge_type": "spatial_unpad_nobase"}, "mm_patch_merge_type='spatial_unpad_nobase'"),
                          ({"mm_use_im_start_end": True}, "mm_use_im_start_end=true")):  # fmt: skip
        (square / "config.json").write_text(json.dumps({**cfg, **change}))
        with pytest.raises(ConversionError, match=error):
            convert_llava_qwen(str(square), tmp_path / "d", ConvertConfig(vision_heads=V_HEADS, vision_image_size=TILE))
    broken = tmp_path / "broken"
    _write_original(broken, ref, tok)
    (broken / "model-00001-of-00002.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ConversionError, match="cannot read weights file .*model-00001-of-00002"):
        convert_llava_qwen(str(broken), tmp_path / "e", ConvertConfig(vision_heads=V_HEADS, vision_image_size=TILE))


def test_unreachable_source_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["convert-llava", "CodeGoat24/UnifiedReward-Think-7b", str(tmp_path / "o")]) == 2
    err = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "HF_HUB_OFFLINE=1" in err["message"] and "CodeGoat24/UnifiedReward-Think-7b" in err["message"]


def test_pipeline_converts_a_llava_next_base_once_and_trains_it(original, tmp_path: Path) -> None:
    """A recipe whose base is a LLaVA-NeXT checkpoint (``model.convert: llava_qwen``, as the paper
    recipe's UnifiedReward-7b) converts it in the prepare stage and trains the converted model."""
    import yaml

    src, _ = original
    tiny_sft = {"learning_rate": 0.005, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                "warmup_ratio": 0.0, "max_steps": 2}  # fmt: skip
    recipe = {
        "data": {"synthetic": {"cold_start_pairs": 4, "cold_start_tasks": ["image_generation"], "train_per_task": 1,
                               "test_per_task": 1, "size": TILE, "seed": 2}},
        "model": {"base": str(src), "family": "llava_onevision", "convert": "llava_qwen",
                  "convert_options": {"vision_heads": V_HEADS, "vision_image_size": TILE}},
        "teacher": {"kind": "scripted", "accuracy": 1.0}, "template_family": "unireward-compact",
        "distill": {"tasks": ["image_generation"]}, "cold_start": tiny_sft, "eval": {"max_new_tokens": 8, "batch_size": 4},
    }  # fmt: skip
    path = tmp_path / "llava.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    assert main(["pipeline", "--recipe", str(path), "--out", str(out), "--stop-after", "eval_cold_start"]) == 0
    base = out / "models" / "base"
    assert json.loads((base / "CONVERTED_FROM.json").read_text())["source"] == str(src)
    assert detect_family(str(out / "models" / "cold_start" / "final")).name == "llava_onevision"
    stamp = (base / "CONVERTED_FROM.json").stat().st_mtime_ns
    assert main(["pipeline", "--recipe", str(path), "--out", str(out), "--stop-after", "eval_cold_start"]) == 0
    assert (base / "CONVERTED_FROM.json").stat().st_mtime_ns == stamp  # resumed: not converted again
    # the prepare stage redone with other conversion options converts again, in place of the old weights
    (out / "stages" / "prepare.json").unlink()
    path.write_text(yaml.safe_dump({**recipe, "model": {**recipe["model"], "convert_options": {"vision_heads": V_HEADS, "vision_image_size": TILE, "dtype": "bfloat16"}}}))
    assert main(["pipeline", "--recipe", str(path), "--out", str(out), "--stop-after", "prepare"]) == 0
    assert json.loads((base / "CONVERTED_FROM.json").read_text())["options"]["dtype"] == "bfloat16"
    assert {t.dtype for f in base.glob("*.safetensors") for t in load_file(f).values()} == {torch.bfloat16}
    bad = {**recipe, "model": {**recipe["model"], "family": "qwen2_5_vl"}}
    path.write_text(yaml.safe_dump(bad))
    assert main(["pipeline", "--recipe", str(path), "--out", str(tmp_path / "bad"), "--dry-run"]) == 2


# --------------------------------------------------------------- the real SigLIP-so400m geometry

SO400M = "google/siglip-so400m-patch14-384"
#: llava-hf/llava-onevision-qwen2-7b-ov-hf: grids of 1x1 to 6x6 384-px tiles
OV_PINPOINTS = [[384 * r, 384 * c] for r in range(1, 7) for c in range(1, 7)]


@pytest.fixture(scope="module")
def so400m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LLaVA-NeXT source whose tower has so400m's geometry (384-px input, 14-px patches, 27x27
    positions) at a tiny width, converted with nothing but its config to go on."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    tok = _tokenizer()
    n = len(tok)
    config = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", "vocab_size": n + 8, "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 1e6,
                     "max_position_embeddings": 32768, "tie_word_embeddings": False},
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 64, "intermediate_size": 96,
                       "num_hidden_layers": 1, "num_attention_heads": 16, "image_size": 384, "patch_size": 14,
                       "vision_use_head": False},
        image_token_index=n, video_token_index=n + 1, vision_feature_select_strategy="full", vision_feature_layer=-1,
        image_grid_pinpoints=OV_PINPOINTS, vision_aspect_ratio="anyres_max_9", tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    ref = LlavaOnevisionForConditionalGeneration(config).eval()
    assert ref.model.vision_tower.embeddings.position_embedding.weight.shape[0] == 27 * 27
    src_config = {**_llava_next_config(n, tower=SO400M), "image_grid_pinpoints": OV_PINPOINTS, "mm_hidden_size": 64,
                  "max_position_embeddings": 32768}  # fmt: skip
    root = tmp_path_factory.mktemp("so400m")
    src = _write_original(root / "src", ref, tok, config=src_config)
    out = root / "hf"
    assert main(["convert-llava", str(src), str(out)]) == 0
    return out


def test_so400m_geometry_matches_the_published_llava_onevision_configs(so400m: Path) -> None:
    """The written config and processor carry the values of llava-hf/llava-onevision-qwen2-7b-ov-hf."""
    config = json.loads((so400m / "config.json").read_text())
    vision = config["vision_config"]
    assert (vision["image_size"], vision["patch_size"], vision["num_attention_heads"]) == (384, 14, 16)
    assert vision["vision_use_head"] is False and vision["layer_norm_eps"] == 1e-6
    assert config["image_grid_pinpoints"] == OV_PINPOINTS and config["vision_aspect_ratio"] == "anyres_max_9"
    assert (config["vision_feature_layer"], config["vision_feature_select_strategy"]) == (-1, "full")
    processor = json.loads((so400m / "processor_config.json").read_text())  # transformers 5: one file
    image, video = processor["image_processor"], processor["video_processor"]
    assert image["size"] == {"height": 384, "width": 384} and image["do_pad"] is True and image["resample"] == 3
    assert image["image_mean"] == [0.5] * 3 and image["image_std"] == [0.5] * 3
    assert abs(image["rescale_factor"] - 1 / 255) < 1e-12 and image["image_grid_pinpoints"] == OV_PINPOINTS
    assert video["size"] == {"height": 384, "width": 384} and video["image_mean"] == [0.5] * 3
    assert (processor["num_image_tokens"], processor["vision_aspect_ratio"]) == (729, "anyres_max_9")


def test_so400m_conversion_judges_an_image_pair_and_a_video_pair(so400m: Path) -> None:
    from unireward.judge import Judge

    judge = Judge.from_pretrained(str(so400m), max_new_tokens=4)
    g = torch.Generator().manual_seed(3)

    def img(h: int, w: int) -> Image.Image:
        return Image.fromarray((torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8).numpy())

    pair = judge.compare("image_generation", "a red cube", img(384, 512), img(300, 300))
    assert pair.error is None and pair.text, pair.error
    frames = ([img(384, 384) for _ in range(4)], [img(384, 384) for _ in range(4)])
    video = judge.compare("video_generation", "a red cube rolls", *frames)
    assert video.error is None and video.text, video.error


def test_so400m_video_frames_follow_the_official_llava_recipe(so400m: Path) -> None:
    """A video pair as the official LLaVA video script builds it, assembled by hand (its prompt string,
    frames squashed to 512 then 384, one untiled view each), against what the judge's model gets."""
    import numpy as np

    model, processor, _ = load_model(str(so400m))
    g = torch.Generator().manual_seed(5)
    frames = [[Image.fromarray((torch.rand(300, 420, 3, generator=g) * 255).to(torch.uint8).numpy()) for _ in range(3)]
              for _ in range(2)]  # fmt: skip
    question = "Which video is better?"
    content = [{"type": "video"}, {"type": "video"}, {"type": "text", "text": question}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    inputs = processor(text=[text], videos=frames, return_tensors="pt")
    video_id = json.loads((so400m / "config.json").read_text())["video_token_index"]
    # the official prompt: qwen_1_5 with its system turn, "<image>\n" per frame, each <image> = 729 features
    official = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" + "<image>\n" * 6
                + question + "<|im_end|>\n<|im_start|>assistant\n")  # fmt: skip
    ids: list[int] = []
    for i, chunk in enumerate(official.split("<image>")):
        ids += [video_id] * 729 if i else []
        ids += processor.tokenizer(chunk, add_special_tokens=False)["input_ids"]
    assert inputs["input_ids"][0].tolist() == ids  # 6 x 729 vision tokens, no newline token, no pooling
    square = [np.asarray(f.resize((512, 512), Image.Resampling.BICUBIC).resize((384, 384), Image.Resampling.BICUBIC),
                         dtype=np.float32) for v in frames for f in v]  # fmt: skip
    hand = (torch.from_numpy(np.stack(square)).permute(0, 3, 1, 2) / 255 - 0.5) / 0.5
    sent = inputs["pixel_values_videos"].flatten(0, 1)
    assert (hand - sent).abs().mean() < 1e-3 and (hand - sent).abs().max() <= 5 / 255  # resampling rounding only
    with torch.no_grad():
        def project(pixels: torch.Tensor) -> torch.Tensor:
            tower = model.model.vision_tower(pixels, output_hidden_states=True)
            return model.model.multi_modal_projector(tower.hidden_states[-1]).reshape(-1, 64)

        got = model.model.get_video_features(inputs["pixel_values_videos"], vision_feature_layer=-1,
                                             vision_feature_select_strategy="full").pooler_output.reshape(-1, 64)  # fmt: skip
        assert torch.equal(got, project(sent)) and got.shape[0] == 6 * 729
        torch.testing.assert_close(got, project(hand), atol=2e-3, rtol=0)
        # the features land on the placeholder positions, in order: logits equal a hand-built embedding
        embeds = model.get_input_embeddings()(torch.tensor([ids]))
        embeds[torch.tensor([ids]) == video_id] = project(sent)
        torch.testing.assert_close(model(**inputs).logits, model(inputs_embeds=embeds).logits, rtol=0, atol=1e-5)
    # the judge's batching estimate counts the same tokens
    from unireward.judge.backends import TransformersBackend
    from unireward.models import get_family

    backend = TransformersBackend(model, processor, get_family("llava_onevision"))
    msgs = [{"role": "user", "content": [{"type": "video", "video": v} for v in frames] + [{"type": "text", "text": question}]}]
    assert backend.estimate_tokens(msgs) == len(ids)
