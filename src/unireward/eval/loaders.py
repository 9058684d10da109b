"""Loaders for the published on-disk formats of MMRB2, Multimodal RewardBench, MJ-Bench-Video and
the HPDv2 test set -> :class:`PreferencePair`.

Each reads the file (or folder) as its benchmark releases it. Records that do not fit are
:class:`SchemaError` naming file, line and field (collected in ``bad`` while the rest load);
records whose task the judge protocols do not cover, and records the official protocol drops,
go to ``skipped`` as ``(where, reason)``: counted and named in the report, never silently lost.
K-way records (HPDv2's ranked images) become all C(K, 2) pairs of a group.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unireward.data.schema import PreferencePair, SchemaError
from unireward.protocol import Task

MMRB2_TASKS = ("t2i", "edit", "interleaved", "reasoning")
Skipped = list[tuple[str, str]]


def json_records(path: str | Path, key: str | None = None) -> list[tuple[str, Any]]:
    """``(file:line, record)`` for each element of a JSON array file, or of the array under ``key``
    of a top-level object (MMRB2's ``{"pairs": [...]}``); the line is where the record starts and
    the record number keeps records of one-line (compact) files apart.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "t.json")
    >>> _ = open(p, "w").write('{"pairs": [\\n  {"id": 1},\\n  {"id": 2}\\n]}')
    >>> [(w, r["id"]) for w, r in json_records(p, "pairs")]
    [('t.json:2 (record 0)', 1), ('t.json:3 (record 1)', 2)]
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise SchemaError(f"not valid JSON: {e.msg}", f"{p.name}:{e.lineno}") from None
    if key is not None:
        if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
            raise SchemaError(f"expected an object with a list under {key!r}", p.name, key)
        m = re.search(r'"' + re.escape(key) + r'"\s*:\s*\[', text)
        start = m.end() if m else text.index("[") + 1
    else:
        if not isinstance(doc, list):
            raise SchemaError("expected a JSON array of records", p.name)
        start = text.index("[") + 1
    dec = json.JSONDecoder()
    out: list[tuple[str, Any]] = []
    pos = start
    for _ in range(len(doc[key] if key is not None else doc)):
        while text[pos] in " \t\r\n,":
            pos += 1
        rec, end = dec.raw_decode(text, pos)
        out.append((f"{p.name}:{text.count(chr(10), 0, pos) + 1} (record {len(out)})", rec))
        pos = end
    return out


def _each(records: list[tuple[str, Any]], make: Callable[[str, dict[str, Any]], list[PreferencePair]],
          bad: list[SchemaError] | None) -> list[PreferencePair]:  # fmt: skip
    """Pairs from every record; a record that does not fit names its place and field."""
    pairs: list[PreferencePair] = []
    for where, rec in records:
        try:
            if not isinstance(rec, dict):
                raise SchemaError(f"expected an object, got {type(rec).__name__}", where)
            pairs += make(where, rec)
        except KeyError as e:
            err = SchemaError("missing field", where, str(e.args[0]))
        except SchemaError as e:
            err = e if e.row is not None else SchemaError(e.message, where, e.field)
        except (ValueError, TypeError) as e:
            err = SchemaError(str(e), where)
        else:
            continue
        if bad is None:
            raise err
        bad.append(err)
    return pairs


def _skip(skipped: Skipped | None, where: str, reason: str) -> list[PreferencePair]:
    if skipped is None:
        raise SchemaError(f"not evaluated: {reason}", where)
    skipped.append((where, reason))
    return []


# --- MMRB2 ---------------------------------------------------------------------------------------


def _parts(content: Any, where: str, fld: str) -> tuple[list[str], list[str]]:
    """MMRB2 content ``[["text", s] | ["image", path], ...]`` -> (texts, image paths)."""
    if not isinstance(content, list):
        raise SchemaError("expected a list of [kind, value] parts", where, fld)
    texts, images = [], []
    for n, part in enumerate(content):
        if not (isinstance(part, list) and len(part) == 2 and part[0] in ("text", "image") and isinstance(part[1], str)):
            raise SchemaError(f"part {n} is not ['text', str] or ['image', path]: {part!r:.60}", where, fld)
        (texts if part[0] == "text" else images).append(part[1])
    return texts, images


def _mmrb2_pair(task: str, where: str, rec: dict[str, Any], skipped: Skipped | None) -> list[PreferencePair]:
    pid = rec.get("id", rec.get("pair_id"))
    if not isinstance(pid, str) or not pid:
        raise SchemaError("expected a pair id string", where, "id")
    chosen = rec["chosen"]
    if chosen not in ("A", "B"):
        raise SchemaError(f"expected 'A' or 'B', got {chosen!r}", where, "chosen")
    p_text, p_images = _parts(rec["prompt_content"], where, "prompt_content")
    resp = []
    for side in ("response_a", "response_b"):
        r = rec[side]
        if not isinstance(r, dict):
            raise SchemaError("expected an object with response_content", where, side)
        resp.append(_parts(r["response_content"], where, f"{side}.response_content"))
    prompt = "\n".join(t for t in p_text if t.strip())
    meta = {"task_name": task, "chosen": chosen, "models": [rec[s].get("model_name", rec[s].get("model")) for s in ("response_a", "response_b")],
            "prompt_source": rec.get("prompt_source")}  # fmt: skip
    label = 1 if chosen == "A" else 2
    if task == "interleaved":
        return _skip(skipped, where, "mmrb2 interleaved: responses interleave text and images, which no judge protocol covers")
    if task in ("t2i", "edit"):
        if any(len(imgs) != 1 or any(t.strip() for t in txt) for txt, imgs in resp):
            return _skip(skipped, where, f"mmrb2 {task}: a response is not exactly one image")
        cands = (resp[0][1][0], resp[1][1][0])
        if task == "t2i":
            if p_images:
                return _skip(skipped, where, "mmrb2 t2i: the prompt holds images (the generation protocols take text only)")
            return [PreferencePair(f"{task}/{pid}", Task.IMAGE_GENERATION, prompt, cands, label, source="mmrb2/t2i", meta=meta)]
        if len(p_images) != 1:
            return _skip(skipped, where, f"mmrb2 edit: {len(p_images)} input images (the editing protocols take one source image)")
        return [PreferencePair(f"{task}/{pid}", Task.IMAGE_EDITING, prompt, cands, label, reference=p_images[0],
                               source="mmrb2/edit", meta=meta)]  # fmt: skip
    # reasoning: text answers about one image are image understanding; anything else is refused
    if any(imgs for _, imgs in resp):
        return _skip(skipped, where, "mmrb2 reasoning: a response holds images (thinking with images), which no judge protocol covers")
    if len(p_images) != 1:
        return _skip(skipped, where, f"mmrb2 reasoning: {len(p_images)} input images (the understanding protocols take one image)")
    answers = tuple("\n".join(txt) for txt, _ in resp)
    return [PreferencePair(f"{task}/{pid}", Task.IMAGE_UNDERSTANDING, prompt, answers, label, reference=p_images[0],  # type: ignore[arg-type]
                           source="mmrb2/reasoning", meta=meta)]  # fmt: skip


def mmrb2_files(path: str | Path, task: str | None = None) -> list[tuple[str, Path]]:
    """``(task, file)`` for MMRB2: the folder holding ``t2i.json`` … (each present file), or one file."""
    p = Path(path)
    if task is not None and task not in MMRB2_TASKS:
        raise ValueError(f"MMRB2 task must be one of {MMRB2_TASKS}, got {task!r}")
    if p.is_dir():
        found = [(t, p / f"{t}.json") for t in MMRB2_TASKS if (p / f"{t}.json").is_file() and task in (None, t)]
        if not found:
            raise FileNotFoundError(f"{p}: no {'/'.join(f'{t}.json' for t in MMRB2_TASKS)} (build the release with MMRB2's build_from_hf.py)")
        return found
    if p.is_file():
        stem = p.stem.removesuffix("_response_only")
        if stem not in MMRB2_TASKS:
            raise ValueError(f"{p.name}: an MMRB2 file is named {'/'.join(f'{t}.json' for t in MMRB2_TASKS)}")
        return [(stem, p)]
    raise FileNotFoundError(f"MMRB2 data not found: {path} (give the folder holding t2i.json, edit.json, ...; "
                            "hub copies must first be built into that layout with MMRB2's build_from_hf.py)")  # fmt: skip


def load_mmrb2(path: str, task: str | None = None, bad: list[SchemaError] | None = None, skipped: Skipped | None = None,
               **_: Any) -> list[PreferencePair]:  # fmt: skip
    """MMRB2 (``{"pairs": [...]}`` per task). t2i pairs are image generation, edit pairs with one
    source image are image editing, reasoning pairs with text answers about one image are image
    understanding; interleaved pairs, multi-image edits and image-bearing reasoning answers are
    skipped by name. Media paths are relative to the data folder."""
    pairs: list[PreferencePair] = []
    for name, file in mmrb2_files(path, task):
        pairs += _each(json_records(file, "pairs"), lambda w, r, n=name: _mmrb2_pair(n, w, r, skipped), bad)
    return pairs


# --- Multimodal RewardBench ----------------------------------------------------------------------


def load_multimodal_rewardbench(path: str, bad: list[SchemaError] | None = None, **_: Any) -> list[PreferencePair]:
    """Multimodal RewardBench ``all_data.json``: ``ID, Text, Image, Output1, Output2, Better,
    Category``; ``Better`` is ``Output1`` or ``Output2``. Image paths are relative to the data folder."""

    def make(where: str, rec: dict[str, Any]) -> list[PreferencePair]:
        better = rec["Better"]
        if better not in ("Output1", "Output2"):
            raise SchemaError(f"expected 'Output1' or 'Output2', got {better!r:.40}", where, "Better")
        for f in ("ID", "Text", "Image", "Output1", "Output2", "Category"):
            if not isinstance(rec[f], str):
                raise SchemaError(f"expected a string, got {type(rec[f]).__name__}", where, f)
        return [PreferencePair(rec["ID"], Task.IMAGE_UNDERSTANDING, rec["Text"], (rec["Output1"], rec["Output2"]),
                               1 if better == "Output1" else 2, reference=rec["Image"], source="multimodal-rewardbench",
                               meta={"category": rec["Category"]})]  # fmt: skip

    from unireward.eval.benchmarks import refuse_duplicate_ids

    return refuse_duplicate_ids(_each(json_records(path), make, bad), path)


# --- MJ-Bench-Video ------------------------------------------------------------------------------

_MJ_PREF = {"video 1 better": 1, "video 2 better": 2}
_MJ_DROPPED = ("same", "hard to judge")


def load_mjbench_video(path: str, bad: list[SchemaError] | None = None, skipped: Skipped | None = None,
                       **_: Any) -> list[PreferencePair]:  # fmt: skip
    """MJ-Bench-Video ``datas/test.json``: ``caption, video_0_path, video_1_path, overall_preference``.
    "Video 1 better" prefers ``video_0_path`` (candidate 1); "Same" and "Hard to judge" are dropped as
    the official scripts drop them (listed under ``skipped``). Case is normalised."""
    records = json_records(path)
    index = {w: n for n, (w, _) in enumerate(records)}  # ids are record numbers: lines repeat in compact JSON

    def make(where: str, rec: dict[str, Any]) -> list[PreferencePair]:
        pref = rec["overall_preference"]
        key = pref.strip().lower() if isinstance(pref, str) else None
        if key in _MJ_DROPPED:
            return _skip(skipped, where, f"mjbench-video: overall_preference {key!r} is dropped by the official protocol")
        if key not in _MJ_PREF:
            raise SchemaError(f"expected 'Video 1 better', 'Video 2 better', 'Same' or 'Hard to judge', got {pref!r:.40}", where,
                              "overall_preference")  # fmt: skip
        return [PreferencePair(f"mj{index[where]:05d}", Task.VIDEO_GENERATION, rec["caption"], (rec["video_0_path"], rec["video_1_path"]),
                               _MJ_PREF[key], source="mjbench-video", meta={"discard": rec.get("discard")})]  # fmt: skip

    return _each(records, make, bad)


# --- HPDv2 test ----------------------------------------------------------------------------------


def load_hpdv2(path: str, bad: list[SchemaError] | None = None, **_: Any) -> list[PreferencePair]:
    """HPDv2 ``test.json``: ``prompt, image_path[], rank[]`` (lower rank = preferred). Every image pair
    of a prompt whose ranks differ becomes a pair (label 1 when the first image ranks better); pairs
    the humans tied are not judged but stay in the prompt's C(n, 2) denominator (``meta['n_images']``)."""

    records = json_records(path)
    index = {w: n for n, (w, _) in enumerate(records)}

    def make(where: str, rec: dict[str, Any]) -> list[PreferencePair]:
        images, ranks = rec["image_path"], rec["rank"]
        if not isinstance(images, list) or len(images) < 2 or not all(isinstance(x, str) for x in images):
            raise SchemaError("expected a list of at least two image paths", where, "image_path")
        if not isinstance(ranks, list) or len(ranks) != len(images) or not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in ranks):
            raise SchemaError(f"expected {len(images)} numeric ranks, got {ranks!r:.60}", where, "rank")
        group = str(index[where])
        out = []
        for i in range(len(images)):
            for j in range(i + 1, len(images)):
                if ranks[i] == ranks[j]:
                    continue
                out.append(PreferencePair(
                    f"p{group}:{i}-{j}", Task.IMAGE_GENERATION, rec["prompt"], (images[i], images[j]), 1 if ranks[i] < ranks[j] else 2,
                    source="hpdv2", meta={"group": group, "n_images": len(images), "i": i, "j": j, "ranks": list(ranks)},
                ))  # fmt: skip
        return out

    return _each(records, make, bad)
