"""Shared fixtures: the real data beside the checkout and one tiny model per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UNIREWARD_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
VIDEOALIGN = DATA / "videoalign-examples"
VLRB = DATA / "vl-rewardbench" / "data.jsonl"
GENAI_REPLAY = DATA / "genai-bench-replay"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"real data not found at {DATA} (set UNIREWARD_SHARED)")
    return DATA


@pytest.fixture(scope="session")
def videoalign_videos(shared_data: Path) -> list[Path]:
    return sorted((VIDEOALIGN / "videos").glob("*.mp4"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL judge, built once per session."""
    from unireward.models import get_family

    return get_family("qwen2_5_vl").build_tiny(tmp_path_factory.mktemp("tiny") / "qwen2_5_vl")


@pytest.fixture(scope="session")
def tiny_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A few small real PNG files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    out = []
    for i, color in enumerate(["red", "blue", "green", "yellow"]):
        path = root / f"{color}.png"
        Image.new("RGB", (64 + 8 * i, 56), color).save(path)
        out.append(path)
    return out
