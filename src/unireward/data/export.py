"""Exporters from pairs JSONL to the dataset layouts of other trainers.

Every prompt is built by :class:`unireward.request.JudgeRequest` (the one prompt builder), so
an exported dataset asks exactly what the judge is asked at inference. Media parts are then turned
into the placeholders each trainer expects, with the media listed beside the prompt:

* ``trl``: ``sft.jsonl`` (``prompt``/``completion`` conversational, ``images``) and ``grpo.jsonl``
  (``prompt``, ``images``, ``label`` = the verdict string, ``task``). Prompt image parts are
  ``{"type": "image"}`` placeholders that TRL fills from ``images``. Videos become frame images
  (TRL trains without a video given as a video). Paths are relative to the output folder
  (:func:`load_trl_dataset` resolves them there); media from outside it are linked (or copied) into
  ``media/`` first, so the folder can be moved or shipped whole.
* ``verl``: ``train.parquet`` with ``data_source``, ``prompt`` (chat with ``<image>``/``<video>`` in the
  text), ``images``, ``videos``, ``ability``, ``reward_model.ground_truth`` and ``extra_info``; the
  reward is :func:`unireward.rewards.compute_score`. Media are absolute paths (verl opens them from
  its own working directory) in dicts that carry the vision budget (``min_pixels``/``max_pixels``,
  ``nframes`` for videos), which verl hands to qwen-vl-utils.
* ``verl`` with ``flavor="easyr1"``: ``problem`` (the prompt as one string) and ``answer`` (the verdict,
  EasyR1's ``ground_truth``), media as absolute path strings; the reward is
  :mod:`unireward.integrations.easyr1`. EasyR1 takes its image branch whenever an ``images`` column
  exists, so a file holds image rows (``images``) or video rows (``videos``), never both.
* ``llamafactory``: ``unireward.json`` (sharegpt ``conversations`` + ``images``/``videos``) and the
  ``dataset_info.json`` entry that registers it; paths relative to the output folder, LLaMA-Factory's
  default ``media_dir`` (the dataset folder), media from outside it brought into ``media/`` as for TRL.

The SFT target is the CoT judgment in ``meta["cot"]`` when the pair has one whose answer agrees with
the label, else just the verdict string. Pairs labelled "tie" are skipped: the protocol has no tie
answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unireward.data.mix import augment_swaps
from unireward.data.schema import MediaRef, PreferencePair, read_pairs
from unireward.media import VisionBudget, load_video, resolve
from unireward.request import JudgeRequest

FORMATS = ("trl", "verl", "llamafactory")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


@dataclass
class ExportConfig:
    """How pairs become trainer rows.

    ``video_as``: ``"frames"`` (every video becomes ``frames`` sampled image files, written under
    ``frames_dir``) or ``"video"`` (video files are passed as videos; not allowed for ``trl``).
    ``min_pixels``/``max_pixels`` bound each image (and video frame) where the consumer reads a
    budget from the row (verl); the defaults are the judge's (the official Qwen scripts').
    """

    format: str = "trl"
    media_root: str | None = None
    swap: bool = False
    family: str | None = None
    video_as: str = "frames"
    frames: int = 8
    frames_dir: str | None = None
    trl_kinds: tuple[str, ...] = ("sft", "grpo")
    flavor: str = "verl"
    embed_images: bool = False
    min_pixels: int = VisionBudget.min_pixels
    max_pixels: int = VisionBudget.max_pixels

    def __post_init__(self) -> None:
        VisionBudget(min_pixels=self.min_pixels, max_pixels=self.max_pixels, frames=self.frames)  # validates
        if self.format not in FORMATS:
            raise ValueError(f"unknown export format {self.format!r}; choose from {FORMATS}")
        if self.video_as not in ("frames", "video"):
            raise ValueError("video_as must be 'frames' or 'video'")
        if self.format == "trl" and self.video_as != "frames":
            raise ValueError("TRL trains without videos given as videos; use video_as='frames'")
        if self.frames < 1:
            raise ValueError("frames must be >= 1")
        self.trl_kinds = tuple(self.trl_kinds)
        bad = [k for k in self.trl_kinds if k not in ("sft", "grpo")]
        if bad or not self.trl_kinds:
            raise ValueError(f"trl_kinds must be a non-empty subset of ('sft', 'grpo'), got {self.trl_kinds}")
        if self.flavor not in ("verl", "easyr1"):
            raise ValueError("flavor must be 'verl' or 'easyr1'")


def sft_target(pair: PreferencePair) -> str:
    """What the model should write: the kept CoT judgment, or just the verdict.

    >>> p = PreferencePair(id="a", task="image_generation", prompt="x", candidates=("1.png", "2.png"), label=2)
    >>> sft_target(p)
    'Image 2 is better'
    >>> p.meta["cot"] = "<think>t</think><answer>Image 2 is better</answer>"
    >>> sft_target(p).startswith("<think>")
    True
    >>> p.meta["cot"] = "<think>t</think><answer>Image 1 is better</answer>"  # disagrees: not used
    >>> sft_target(p)
    'Image 2 is better'
    """
    verdict = pair.label_text
    if verdict is None:
        raise ValueError(f"pair {pair.id}: a tie has no verdict to train on")
    cot = pair.meta.get("cot")
    if isinstance(cot, str):
        m = _ANSWER.search(cot)
        if m and m.group(1).strip() == verdict:
            return cot.strip()
    return verdict


@dataclass
class ExportReport:
    format: str
    files: list[str] = field(default_factory=list)
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    with_cot: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "files": self.files, "rows": self.rows, "skipped": dict(self.skipped), "sft_targets_with_cot": self.with_cot}


class _Builder:
    def __init__(self, cfg: ExportConfig, out_dir: Path):
        self.cfg = cfg
        # absolute from here on: each writer then makes them absolute or relative to the output folder
        self.frames_dir = (Path(cfg.frames_dir) if cfg.frames_dir else out_dir / "frames").resolve()

    def _frames(self, path: str) -> list[str]:
        """Frame files of a video, sampled once and cached by path and frame count."""
        key = hashlib.sha1(f"{os.path.abspath(path)}|{self.cfg.frames}".encode()).hexdigest()[:16]
        folder = self.frames_dir / key
        done = folder / "done"
        if not done.exists():
            frames = load_video(path, VisionBudget(frames=self.cfg.frames))
            folder.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(frames):
                img.save(folder / f"frame_{i:03d}.png")
            done.write_text(str(len(frames)))
        n = int(done.read_text())
        return [str(folder / f"frame_{i:03d}.png") for i in range(n)]

    def _item(self, ref: MediaRef, is_video: bool) -> Any:
        if isinstance(ref, list):
            return [os.path.abspath(resolve(f, self.cfg.media_root)) for f in ref]
        path = os.path.abspath(resolve(ref, self.cfg.media_root))
        if is_video and self.cfg.video_as == "frames":
            return self._frames(path)
        return path

    def request(self, pair: PreferencePair) -> tuple[list[dict[str, Any]], list[str], list[Any]]:
        """Prompt messages with media placeholders, then the images and videos they stand for."""
        req = JudgeRequest.from_pair(pair)
        media = [self._item(r, pair.task.is_video) for r in req.media_refs()]
        frames_mode = pair.task.is_video and (self.cfg.video_as == "frames" or any(isinstance(m, list) for m in media))
        messages = req.with_media(media).messages(self.cfg.family, video_as="frames" if frames_mode else "video")
        images: list[str] = []
        videos: list[Any] = []
        for msg in messages:
            parts = []
            for part in msg["content"]:
                if part["type"] == "image":
                    images.append(part["image"])
                    parts.append({"type": "image"})
                elif part["type"] == "video":
                    videos.append(part["video"])
                    parts.append({"type": "video"})
                else:
                    parts.append(part)
            msg["content"] = parts
        return messages, images, videos


def _flat_text(messages: list[dict[str, Any]]) -> str:
    """The user turn as one string with ``<image>``/``<video>`` tokens where the media go."""
    out = []
    for part in messages[0]["content"]:
        out.append({"image": "<image>", "video": "<video>"}.get(part["type"], part.get("text") or ""))
    return "".join(out)


def _relative(path: str, out: Path) -> str:
    """``path`` relative to the output folder (absolute when no relative path exists, e.g. another drive).

    >>> _relative("/data/run/frames/a.png", Path("/data/run"))
    'frames/a.png'
    >>> _relative("/data/media/a.png", Path("/data/run"))
    '../media/a.png'
    """
    try:
        return os.path.relpath(path, out)
    except ValueError:
        return path


def _inside(path: str, out: Path) -> str:
    """``path`` if it lies under ``out``, else a hard link (a copy across file systems) of it under
    ``out/media/``: a relative path then never climbs out of the folder (``../src/a.png``), so the
    folder still loads after it is moved."""
    if Path(path).resolve().is_relative_to(out):
        return path
    key = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
    dest = out / "media" / key / os.path.basename(path)
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        tmp.unlink(missing_ok=True)
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    return str(dest)


def _local(path: str, out: Path) -> str:
    return _relative(_inside(path, out), out)


def export_pairs(pairs: Iterable[PreferencePair], out_dir: str | os.PathLike[str], cfg: ExportConfig) -> ExportReport:
    """Write ``pairs`` in ``cfg.format`` under ``out_dir``; see the module docstring for the layouts.

    A refused export (e.g. EasyR1 rows that mix images and videos) leaves no output folder behind
    when it created that folder."""
    out = Path(out_dir).resolve()
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _export(pairs, out, cfg)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _export(pairs: Iterable[PreferencePair], out: Path, cfg: ExportConfig) -> ExportReport:
    if cfg.swap:
        pairs = augment_swaps(pairs)
    builder = _Builder(cfg, out)
    report = ExportReport(cfg.format)
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        if pair.label == "tie":
            report.skipped["tie"] += 1
            continue
        messages, images, videos = builder.request(pair)
        target = sft_target(pair)
        report.with_cot += target != pair.label_text
        rows.append({"pair": pair, "messages": messages, "images": images, "videos": videos, "target": target})
    report.rows = len(rows)
    if cfg.format == "trl":
        _write_trl(rows, out, cfg, report)
    elif cfg.format == "verl":
        _write_verl(rows, out, cfg, report)
    else:
        _write_llamafactory(rows, out, report)
    return report


def export_file(src: str | os.PathLike[str], out_dir: str | os.PathLike[str], cfg: ExportConfig) -> ExportReport:
    return export_pairs(read_pairs(src), out_dir, cfg)


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _write_trl(rows: list[dict[str, Any]], out: Path, cfg: ExportConfig, report: ExportReport) -> None:
    rows = [{**r, "images": [_local(p, out) for p in r["images"]]} for r in rows]
    if "sft" in cfg.trl_kinds:
        _write_jsonl(out / "sft.jsonl", (
            {"id": r["pair"].id, "task": r["pair"].task.value, "prompt": r["messages"],
             "completion": [{"role": "assistant", "content": [{"type": "text", "text": r["target"]}]}],
             "images": r["images"]}
            for r in rows
        ))  # fmt: skip
        report.files.append(str(out / "sft.jsonl"))
    if "grpo" in cfg.trl_kinds:
        _write_jsonl(out / "grpo.jsonl", (
            {"id": r["pair"].id, "task": r["pair"].task.value, "prompt": r["messages"],
             "images": r["images"], "label": r["pair"].label_text}
            for r in rows
        ))  # fmt: skip
        report.files.append(str(out / "grpo.jsonl"))


def _image_cell(path: str, cfg: ExportConfig) -> Any:
    if cfg.embed_images:
        with open(path, "rb") as f:
            return {"bytes": f.read(), "path": os.path.basename(path)}
    if cfg.flavor == "easyr1":  # EasyR1 opens path strings; its pixel bounds are in its own config
        return path
    # verl passes the dict to qwen-vl-utils, which reads the bounds from it
    return {"image": path, "min_pixels": cfg.min_pixels, "max_pixels": cfg.max_pixels}


def _video_cell(path: Any, cfg: ExportConfig) -> Any:
    if cfg.flavor == "easyr1":
        return path
    return {"video": path, "nframes": cfg.frames, "min_pixels": cfg.min_pixels, "max_pixels": cfg.max_pixels}


def _write_verl(rows: list[dict[str, Any]], out: Path, cfg: ExportConfig, report: ExportReport) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    easyr1 = cfg.flavor == "easyr1"
    with_video = [r["pair"].id for r in rows if r["videos"]]
    if easyr1 and with_video and len(with_video) < len(rows):
        raise ValueError(
            f"EasyR1 takes its image branch whenever an `images` column exists, so a file cannot mix image rows "
            f"and video rows ({len(with_video)} of {len(rows)} pairs carry videos, e.g. {with_video[0]}): export the "
            "video pairs on their own, or use video_as='frames'"
        )
    recs = []
    for i, r in enumerate(rows):
        pair: PreferencePair = r["pair"]
        text = _flat_text(r["messages"])
        rec: dict[str, Any] = {
            "data_source": pair.source or "unireward",
            "prompt": [{"role": "user", "content": text}],
            "images": [_image_cell(p, cfg) for p in r["images"]],
            "videos": [_video_cell(v, cfg) for v in r["videos"]],
            "ability": f"reward_judge/{pair.task.value}",
            "reward_model": {"style": "rule", "ground_truth": pair.label_text},
            "extra_info": {"index": i, "id": pair.id, "task": pair.task.value, "sft_target": r["target"]},
        }
        if easyr1:
            rec["problem"], rec["answer"] = text, pair.label_text
            del rec["videos" if not with_video else "images"]  # the column EasyR1 must not see
        recs.append(rec)
    if not recs:
        raise ValueError("nothing to export (every pair was a tie?)")
    path = out / "train.parquet"
    pq.write_table(pa.Table.from_pylist(recs), path)
    report.files.append(str(path))


def _write_llamafactory(rows: list[dict[str, Any]], out: Path, report: ExportReport) -> None:
    has_video = any(r["videos"] for r in rows)
    data = []
    for r in rows:
        rec: dict[str, Any] = {
            "conversations": [{"from": "human", "value": _flat_text(r["messages"])}, {"from": "gpt", "value": r["target"]}],
            "images": [_local(p, out) for p in r["images"]],
        }
        if has_video:
            rec["videos"] = [[_local(f, out) for f in v] if isinstance(v, list) else _local(v, out) for v in r["videos"]]
        data.append(rec)
    (out / "unireward.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    columns = {"messages": "conversations", "images": "images"}
    if has_video:
        columns["videos"] = "videos"
    info = {"unireward": {"file_name": "unireward.json", "formatting": "sharegpt", "columns": columns}}
    (out / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    report.files += [str(out / "unireward.json"), str(out / "dataset_info.json")]


def load_trl_dataset(path: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None) -> Any:
    """An exported TRL file as a ``datasets.Dataset`` with ``images`` cast to ``List(Image())``.

    Relative image paths are resolved against ``base_dir`` (default: the file's folder, where the
    exporter writes them relative to).
    """
    import datasets

    base = Path(base_dir) if base_dir is not None else Path(path).resolve().parent
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    ds = ds.map(lambda r: {"images": [resolve(p, base) for p in r["images"]]})
    return ds.cast_column("images", datasets.List(datasets.Image()))
