"""Every registered model family end to end on its tiny model: build, detect, judge, SFT, GRPO, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from unireward.data.schema import read_pairs
from unireward.demo.synthetic import SyntheticConfig, generate
from unireward.judge.request import load_pair_media
from unireward.media import VisionBudget
from unireward.models import detect_family, get_family, list_families, load_model
from unireward.protocol import Task, parse_judgment
from unireward.protocol.tasks import THINK_TASKS
from unireward.rows import append_rows

FAMILIES = list_families()
# Qwen3.5's linear-attention layers run transformers' reference PyTorch kernels on CPU (slow), and its
# command-line path is Qwen3-VL's; the subprocess CLI tests run on the other families.
CLI_FAMILIES = [f for f in FAMILIES if f != "qwen3_5"]
TEMPLATES = "unireward-compact"


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    name = request.param
    return name, get_family(name).build_tiny(tmp_path_factory.mktemp(name) / "model")


@pytest.fixture(scope="module")
def syn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unireward.demo.synthetic import read_colour
    from unireward.demo.teacher import synthetic_cot
    from unireward.protocol.templates import render_text

    root = tmp_path_factory.mktemp("syn")
    generate(root, SyntheticConfig(n_per_task={t.value: 2 for t in THINK_TASKS}, seed=5), "train")
    pairs = read_pairs(root / "train.jsonl")
    sft = []
    for p in pairs:
        media = load_pair_media(p, root, VisionBudget())
        seen = [[read_colour(f) for f in m] if isinstance(m, list) else [read_colour(m)] for m in media]
        text = render_text(p.task, p.prompt, () if p.task.is_generation else tuple(p.candidates), family=TEMPLATES)
        sft.append({"pair": p.to_dict(), "completion": synthetic_cot(p.task, text, seen)})
    append_rows(root / "sft.jsonl", sft)
    append_rows(root / "grpo.jsonl", [{"pair": p.to_dict()} for p in pairs])
    return root


def _params(model_dir: Path) -> dict[str, torch.Tensor]:
    model, _, _ = load_model(str(model_dir))
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _moved(family: str, before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> tuple[bool, bool]:
    """(language model changed, vision tower changed)."""
    fam = get_family(family)
    vision = [k for k in before if fam.is_vision_parameter(k)]
    assert vision, f"{family}: no parameter matches the vision prefixes {fam.vision_prefixes}"
    text = [k for k in before if k not in vision]
    changed = lambda keys: any(not torch.equal(before[k], after[k]) for k in keys)  # noqa: E731
    return changed(text), changed(vision)


def test_every_supported_family_is_registered() -> None:
    assert {"qwen2_5_vl", "qwen3_vl", "qwen3_5", "llava_onevision"} <= set(FAMILIES)
    with pytest.raises(KeyError, match="unsupported model family"):
        get_family("not_a_family")


def test_detect_and_load(tiny: tuple[str, Path]) -> None:
    name, path = tiny
    assert detect_family(str(path)).name == name
    model, processor, fam = load_model(str(path))
    assert fam.name == name and isinstance(model, fam.model_class())
    tok = processor.tokenizer
    assert tok.padding_side == "left"
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        ids = tok(tag, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tok.decode(ids, skip_special_tokens=True) == tag
    eos = model.generation_config.eos_token_id
    assert tok.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])
    assert fam.freeze_vision(model) > 0
    assert all(not p.requires_grad for n, p in model.named_parameters() if fam.is_vision_parameter(n))
    assert any(p.requires_grad for n, p in model.named_parameters() if not fam.is_vision_parameter(n))


def test_processor_respects_the_family_budget(tiny: tuple[str, Path]) -> None:
    name, path = tiny
    _, processor, fam = load_model(str(path))
    budget = fam.budget()
    assert budget.factor == fam.factor
    from unireward.media import load_image

    img = load_image(Image.new("RGB", (300, 200), "red"), budget)
    assert img.width % fam.factor == 0 and img.height % fam.factor == 0
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}], add_generation_prompt=True, tokenize=False
    )
    out = processor(text=[text], images=[img], return_tensors="pt", **fam.processor_kwargs(budget))
    n_image = int((out["input_ids"] == processor.tokenizer.convert_tokens_to_ids(processor.image_token)).sum())
    expected = fam.expected_image_tokens(img.width, img.height, processor)
    if expected is None:
        pytest.skip(f"{name}: the family cannot predict its image token count")
    assert n_image == expected


def test_images_grouped_per_prompt_are_each_fully_encoded(tiny: tuple[str, Path]) -> None:
    """TRL hands the processor one image list per prompt; each image keeps its own full encoding
    (LLaVA-OV: its anyres tiles), the same as when the judge passes them flat."""
    name, path = tiny
    _, processor, fam = load_model(str(path))
    from unireward.media import load_image

    imgs = [load_image(Image.new("RGB", size, "red"), fam.budget()) for size in ((300, 200), (120, 240))]
    expected = [fam.expected_image_tokens(im.width, im.height, processor) for im in imgs]
    if None in expected:
        pytest.skip(f"{name}: the family cannot predict its image token count")
    parts = [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "x"}]
    text = processor.apply_chat_template([{"role": "user", "content": parts}], add_generation_prompt=True, tokenize=False)
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    for images in (imgs, [imgs]):
        out = processor(text=[text], images=images, return_tensors="pt", **fam.processor_kwargs(fam.budget()))
        assert int((out["input_ids"] == image_id).sum()) == sum(expected)


def test_judge_image_pair_and_frame_videos(tiny: tuple[str, Path]) -> None:
    from unireward.judge import Judge

    _, path = tiny
    judge = Judge.from_pretrained(str(path), max_new_tokens=8)
    a, b = Image.new("RGB", (64, 64), "red"), Image.new("RGB", (80, 64), "blue")
    res = judge.compare("image_generation", "a red square", a, b)
    # a random model's 8 tokens name no verdict; the status is the parser's reading of that text
    assert res.error is None and res.text and res.status == parse_judgment(res.text, "image_generation").status
    assert not res.ok
    frames_a = [Image.new("RGB", (64, 64), c) for c in ("red", "green", "blue", "white")]
    frames_b = [Image.new("RGB", (64, 64), c) for c in ("black", "yellow", "cyan", "purple")]
    res = judge.compare("video_generation", "colours change", frames_a, frames_b)
    assert res.error is None and res.text and res.status == parse_judgment(res.text, "video_generation").status
    assert not res.ok
    as_frames = Judge.from_pretrained(str(path), max_new_tokens=8, video_as="frames")
    res = as_frames.compare("video_generation", "colours change", frames_a, frames_b)
    assert res.error is None and res.text


def test_sft_step_moves_language_model_not_vision(tiny: tuple[str, Path], syn: Path, tmp_path: Path) -> None:
    from unireward.train.sft import SFTStageConfig, run_sft

    name, path = tiny
    cfg = SFTStageConfig(
        model=str(path), train_file=str(syn / "sft.jsonl"), output_dir=str(tmp_path / "sft"), media_root=str(syn),
        template_family=TEMPLATES, learning_rate=1e-2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
        warmup_ratio=0.0, lr_scheduler_type="constant", max_steps=1, save_steps=100, logging_steps=1,
    )  # fmt: skip
    final = run_sft(cfg)
    assert detect_family(str(final)).name == name
    text, vision = _moved(name, _params(path), _params(final))
    assert text and not vision


def _below_half(completions, completion_ids, **kwargs):  # type: ignore[no-untyped-def]
    """A reward that varies on a random model, so GRPO advantages are not all zero."""
    return [sum(t < 512 for t in ids) / max(len(ids), 1) for ids in completion_ids]


def test_grpo_step_moves_language_model_not_vision(tiny: tuple[str, Path], syn: Path, tmp_path: Path) -> None:
    from unireward.train.grpo import GRPOStageConfig, run_grpo

    name, path = tiny
    cfg = GRPOStageConfig(
        model=str(path), train_file=str(syn / "grpo.jsonl"), output_dir=str(tmp_path / "grpo"), media_root=str(syn),
        template_family=TEMPLATES, num_generations=4, per_device_train_batch_size=4, max_completion_length=8,
        learning_rate=1e-2, beta=0.0, max_steps=1, save_steps=100, seed=3,
    )  # fmt: skip
    final = run_grpo(cfg, reward_funcs=[_below_half])
    text, vision = _moved(name, _params(path), _params(final))
    assert text and not vision


@pytest.mark.parametrize("tiny", CLI_FAMILIES, indirect=True)
def test_tiny_model_cli(tiny: tuple[str, Path], tmp_path: Path) -> None:
    name, _ = tiny
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "unireward.cli", "tiny-model", str(out), "--family", name, "--hidden-size", "32"],
        capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"family": name, "path": str(out)}
    assert detect_family(str(out)).name == name
    config = json.loads((out / "config.json").read_text())
    assert config["text_config"]["hidden_size"] == 32 if "text_config" in config else config["hidden_size"] == 32


@pytest.mark.parametrize("tiny", CLI_FAMILIES, indirect=True)
def test_judge_cli_with_family_on_real_videos(tiny: tuple[str, Path], syn: Path) -> None:
    name, path = tiny
    pair = next(p for p in read_pairs(syn / "train.jsonl") if p.task is Task.VIDEO_GENERATION)
    cmd = [sys.executable, "-m", "unireward.cli", "judge", "--model", str(path), "--family", name,
           "--task", "video_generation", "--prompt", pair.prompt, "--max-new-tokens", "8",
           "--candidate", str(syn / pair.candidates[0]), "--candidate", str(syn / pair.candidates[1])]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["task"] == "video_generation" and out["text"]
    assert out["status"] == parse_judgment(out["text"], "video_generation").status != "ok"


def test_qwen3_vl_frame_timestamps_come_from_the_video(videoalign_videos: list[Path], tmp_path: Path) -> None:
    """Qwen3-VL prints "<t seconds>" before each frame: the judge gives it the real frame times
    (averaged over each 2-frame temporal patch), not the 24 fps / 0, 1, 2, ... fallback."""
    import re

    from unireward.judge import Judge
    from unireward.media import load_video

    fam = get_family("qwen3_vl")
    judge = Judge.from_pretrained(str(fam.build_tiny(tmp_path / "q3")), budget=fam.budget(max_pixels=64 * 64))
    backend = judge.backend
    frames = load_video(videoalign_videos[0], backend.budget)
    assert frames.fps  # an mp4 knows its rate
    msgs = [{"role": "user", "content": [{"type": "video", "video": str(videoalign_videos[0])}, {"type": "text", "text": "Q"}]}]
    text, images, videos, _ = backend._prepare(msgs)
    ids = backend.encode([text], images, videos)["input_ids"][0]
    shown = [float(t) for t in re.findall(r"<([0-9.]+) seconds>", backend.tokenizer.decode(ids))]
    times = frames.timestamps()
    want = [round((times[i] + times[i + 1]) / 2, 1) for i in range(0, len(times), 2)]
    assert shown == want and max(shown) > 1.0  # 0.0, 0.1, ... would be the fallback
    # frames handed to the judge already loaded keep their times through its resizing
    from unireward.judge.judge import load_medium

    again = load_medium(frames, Task.VIDEO_GENERATION, None, backend.budget, 2)
    assert (again.indices, again.fps, again.total) == (frames.indices, frames.fps, frames.total)


def test_stage_budgets_take_the_family_side_multiple(tiny: tuple[str, Path]) -> None:
    """SFT/GRPO/sampling configs without a budget (or with overrides only) get the family's factor,
    so the processor never resizes the media a second time."""
    from unireward.models.family import resolve_budget
    from unireward.train.sft import SFTStageConfig

    name, path = tiny
    fam = get_family(name)
    assert resolve_budget(None, str(path)).factor == fam.factor
    over = resolve_budget({"max_pixels": 50_000}, str(path))
    assert (over.factor, over.max_pixels) == (fam.factor, 50_000)
    explicit = VisionBudget(factor=28)
    assert resolve_budget(explicit, str(path)) is explicit
    with pytest.raises(ValueError):  # overrides are still validated when the config is built
        SFTStageConfig(model=str(path), train_file="x", output_dir="y", budget={"max_pixels": -1})
