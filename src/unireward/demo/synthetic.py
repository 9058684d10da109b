"""A learnable synthetic judging task with known right answers, for all four tasks.

Real benchmark media with human labels cannot be used offline, so the CPU demo and the training
tests run on this world: coloured shapes on a grey canvas. What decides each pair is colour —
the one attribute a tiny vision tower can read from a handful of visual tokens — while shapes and
wording vary so the text must be read too.

* image generation: caption ``a red circle``; one image has the right colour, the other a wrong one.
* video generation: caption ``a square turning from red to blue``; the right video changes colour
  that way, the wrong one changes the other way, to a different colour, or not at all.
* image understanding: ``What colour is the star?`` about one image; one answer right, one wrong.
* video understanding: ``What colour does the circle turn into?`` about one video.

Videos are real mp4 files (PyAV, mpeg4), read back through :func:`unireward.media.load_video`.
Each pair's ``meta["truth"]`` records what every candidate shows; the scripted teacher does not
use it (it reads the pixels), it is there for checks and error analysis.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from unireward.data.schema import PreferencePair, write_pairs
from unireward.protocol.tasks import THINK_TASKS, Task

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 20),
    "purple": (140, 40, 180),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle", "star")
BACKGROUND = (200, 200, 200)


@dataclass
class SyntheticConfig:
    """How many pairs of each task to make, and how they look."""

    n_per_task: dict[str, int] = field(default_factory=lambda: {t.value: 100 for t in THINK_TASKS})
    size: int = 56
    frames: int = 4
    fps: int = 4
    seed: int = 0
    colours: tuple[str, ...] = tuple(PALETTE)

    def __post_init__(self) -> None:
        for task, n in self.n_per_task.items():
            if Task.parse(task) not in THINK_TASKS:
                raise ValueError(f"no synthetic {Task.parse(task).value} pairs; synthetic tasks: {[t.value for t in THINK_TASKS]}")
            if n < 0:
                raise ValueError(f"n_per_task[{task}] must be >= 0")
        unknown = [c for c in self.colours if c not in PALETTE]
        if unknown or len(self.colours) < 3:
            raise ValueError(f"need at least 3 colours from {sorted(PALETTE)}, got {self.colours}")
        if self.size < 28 or self.frames < 2:
            raise ValueError("size must be >= 28 and frames >= 2")


def draw_shape(shape: str, colour: str, size: int = 56) -> Image.Image:
    """One frame: a large shape of ``colour`` on a grey canvas."""
    img = Image.new("RGB", (size, size), BACKGROUND)
    d = ImageDraw.Draw(img)
    m, s = size // 8, size - size // 8
    fill = PALETTE[colour]
    if shape == "circle":
        d.ellipse([m, m, s, s], fill=fill)
    elif shape == "square":
        d.rectangle([m, m, s, s], fill=fill)
    elif shape == "triangle":
        d.polygon([(size // 2, m), (m, s), (s, s)], fill=fill)
    elif shape == "star":
        c, r1, r2 = size / 2, size / 2 - m, size / 5
        pts = []
        for i in range(10):
            r = r1 if i % 2 == 0 else r2
            a = np.pi / 2 + i * np.pi / 5
            pts.append((c + r * np.cos(a), c - r * np.sin(a)))
        d.polygon(pts, fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return img


def write_video(path: Path, frames: list[Image.Image], fps: int) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _transition(shape: str, c1: str, c2: str, cfg: SyntheticConfig) -> list[Image.Image]:
    half = cfg.frames // 2
    return [draw_shape(shape, c1 if i < half else c2, cfg.size) for i in range(cfg.frames)]


def _other(rng: random.Random, colours: tuple[str, ...], *exclude: str) -> str:
    return rng.choice([c for c in colours if c not in exclude])


class _Maker:
    def __init__(self, root: Path, cfg: SyntheticConfig):
        self.root, self.cfg = root, cfg
        (root / "media").mkdir(parents=True, exist_ok=True)

    def image(self, name: str, shape: str, colour: str) -> str:
        rel = f"media/{name}.png"
        draw_shape(shape, colour, self.cfg.size).save(self.root / rel)
        return rel

    def video(self, name: str, shape: str, c1: str, c2: str) -> str:
        rel = f"media/{name}.mp4"
        write_video(self.root / rel, _transition(shape, c1, c2, self.cfg), self.cfg.fps)
        return rel


def _make_pair(task: Task, i: int, rng: random.Random, mk: _Maker, split: str) -> PreferencePair:
    cfg = mk.cfg
    shape = rng.choice(SHAPES)
    c = rng.choice(cfg.colours)
    label = rng.choice((1, 2))
    pid = f"{split}-{task.value}-{i:05d}"
    if task is Task.IMAGE_GENERATION:
        wrong = _other(rng, cfg.colours, c)
        good, bad = mk.image(f"{pid}-good", shape, c), mk.image(f"{pid}-bad", shape, wrong)
        cands = (good, bad) if label == 1 else (bad, good)
        shows = (c, wrong) if label == 1 else (wrong, c)
        return PreferencePair(pid, task, f"a {c} {shape}", cands, label, source="synthetic",
                              meta={"split": split, "truth": {"shape": shape, "asked": c, "shows": list(shows)}})  # fmt: skip
    if task is Task.VIDEO_GENERATION:
        c2 = _other(rng, cfg.colours, c)
        kind = rng.choice(("reversed", "other", "static"))
        w1, w2 = {"reversed": (c2, c), "other": (c, _other(rng, cfg.colours, c, c2)), "static": (c, c)}[kind]
        good, bad = mk.video(f"{pid}-good", shape, c, c2), mk.video(f"{pid}-bad", shape, w1, w2)
        cands = (good, bad) if label == 1 else (bad, good)
        shows = [[c, c2], [w1, w2]] if label == 1 else [[w1, w2], [c, c2]]
        return PreferencePair(pid, task, f"a {shape} turning from {c} to {c2}", cands, label, source="synthetic",
                              meta={"split": split, "truth": {"shape": shape, "asked": [c, c2], "shows": shows}})  # fmt: skip
    if task is Task.IMAGE_UNDERSTANDING:
        wrong = _other(rng, cfg.colours, c)
        ref = mk.image(f"{pid}-ref", shape, c)
        right, bad = f"The {shape} is {c}.", f"The {shape} is {wrong}."
        cands = (right, bad) if label == 1 else (bad, right)
        return PreferencePair(pid, task, f"What colour is the {shape}?", cands, label, reference=ref, source="synthetic",
                              meta={"split": split, "truth": {"shape": shape, "shows": c, "wrong": wrong}})  # fmt: skip
    c2 = _other(rng, cfg.colours, c)
    wrong = _other(rng, cfg.colours, c2)
    ref = mk.video(f"{pid}-ref", shape, c, c2)
    right, bad = f"It turns {c2}.", f"It turns {wrong}."
    cands = (right, bad) if label == 1 else (bad, right)
    return PreferencePair(pid, task, f"What colour does the {shape} turn into?", cands, label, reference=ref,
                          source="synthetic", meta={"split": split, "truth": {"shape": shape, "shows": [c, c2], "wrong": wrong}})  # fmt: skip


def generate(out_dir: str | Path, cfg: SyntheticConfig | None = None, split: str = "train") -> list[PreferencePair]:
    """Write media under ``out_dir/media`` and the pairs to ``out_dir/<split>.jsonl``; returns the pairs.

    Deterministic for a given config and split; pairs of the four tasks are interleaved.
    """
    cfg = cfg or SyntheticConfig()
    root = Path(out_dir)
    mk = _Maker(root, cfg)
    rng = random.Random(f"{cfg.seed}-{split}")
    pairs: list[PreferencePair] = []
    for task_name, n in cfg.n_per_task.items():
        task = Task.parse(task_name)
        pairs.extend(_make_pair(task, i, rng, mk, split) for i in range(n))
    rng.shuffle(pairs)
    write_pairs(pairs, root / f"{split}.jsonl")
    (root / f"{split}.config.json").write_text(json.dumps({"n_per_task": cfg.n_per_task, "seed": cfg.seed, "size": cfg.size, "frames": cfg.frames}))
    return pairs


def nearest_colour(rgb: Any) -> str:
    """Palette name nearest to an RGB triple.

    >>> nearest_colour((200, 40, 35))
    'red'
    """
    arr = np.asarray(rgb, dtype=float)
    return min(PALETTE, key=lambda k: float(((np.asarray(PALETTE[k]) - arr) ** 2).sum()))


def read_colour(img: Image.Image) -> str:
    """The colour of the shape in a frame: the mean of the pixels that are far from the grey background."""
    arr = np.asarray(img.convert("RGB"), dtype=float).reshape(-1, 3)
    fg = arr[np.abs(arr - np.asarray(BACKGROUND)).sum(axis=1) > 60]
    if len(fg) == 0:
        return "none"
    return nearest_colour(fg.mean(axis=0))
