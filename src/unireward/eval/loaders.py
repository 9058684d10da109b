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
    if not p.is_file():
        raise FileNotFoundError(f"benchmark file not found: {path} (this benchmark is read from its released JSON file; "
                                "download it first, a hub id is not read directly)")  # fmt: skip
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


# --- EditReward-Bench (TIGER-Lab) ----------------------------------------------------------------

EDITREWARD_SUBSETS = ("2pair", "3pair", "4pair")


def tiger_label(ranking: str, comparison: str) -> object:
    """The label of one TIGER EditReward-Bench comparison: ``comparison`` names the letters of
    candidate_1 and candidate_2 (``"AvsC"``), ``ranking`` the human order (``"C>A"``, ``"A<B"``,
    ``"A=B"``, ``"A=B=Good"``).

    >>> tiger_label("A>C", "AvsC"), tiger_label("C>A", "AvsC"), tiger_label("A<B", "AvsB"), tiger_label("A=B=Bad", "AvsB")
    (1, 2, 2, 'tie')
    """
    m = re.fullmatch(r"([A-D])vs([A-D])", comparison)
    if m is None:
        raise SchemaError(f"expected e.g. 'AvsB', got {comparison!r:.20}", None, "comparison_type")
    first, second = m.groups()
    r = ranking.replace(" ", "").upper()
    if "=" in r:
        if not {first, second} <= set(r):
            raise SchemaError(f"{ranking!r} does not compare {first} and {second}", None, "ranking")
        return "tie"
    m2 = re.fullmatch(r"([A-D])([<>])([A-D])", r)
    if m2 is None or {m2.group(1), m2.group(3)} != {first, second}:
        raise SchemaError(f"expected '{first}>{second}' or '{second}>{first}', got {ranking!r:.20}", None, "ranking")
    winner = m2.group(1) if m2.group(2) == ">" else m2.group(3)
    return 1 if winner == first else 2


def load_editreward_tiger(path: str, split: str | None = None, cache_dir: Path | None = None, task: str | None = None,
                          bad: list[SchemaError] | None = None, **_: Any) -> list[PreferencePair]:  # fmt: skip
    """TIGER-Lab/EditReward-Bench as released (one ``train`` split; parquet, JSON lines or the hub id):
    one row per comparison, ``id, instruction, source_image, candidate_1, candidate_2, ranking,
    comparison_type, dataset`` (``2pair`` / ``3pair`` / ``4pair``). Rows of one original sample share
    the id prefix before ``_`` (the group of the official group accuracy). ``task`` keeps one subset."""
    from unireward.eval.benchmarks import _media, located_records, refuse_duplicate_ids

    if task is not None and task not in EDITREWARD_SUBSETS:
        raise ValueError(f"EditReward-Bench subset must be one of {EDITREWARD_SUBSETS}, got {task!r}")
    records = located_records(path, split or "train", bad=bad)

    def make(where: str, rec: dict[str, Any]) -> list[PreferencePair]:
        subset = rec["dataset"]
        if subset not in EDITREWARD_SUBSETS:
            raise SchemaError(f"expected one of {EDITREWARD_SUBSETS}, got {subset!r:.20}", where, "dataset")
        if task is not None and subset != task:
            return []
        rid = str(rec["id"])
        comparison = rec.get("comparison_type") or "AvsB"
        try:
            label = tiger_label(str(rec["ranking"]), comparison)
        except SchemaError as e:
            raise SchemaError(e.message, where, e.field) from None
        group = rid.split("_")[0] if "_" in rid else rid[:10]  # the official grouping
        return [PreferencePair(
            rid, Task.IMAGE_EDITING, rec["instruction"],
            (_media(rec["candidate_1"], cache_dir, f"{rid}_1"), _media(rec["candidate_2"], cache_dir, f"{rid}_2")), label,  # type: ignore[arg-type]
            reference=_media(rec["source_image"], cache_dir, f"{rid}_source"), source="editreward-bench/tiger",
            meta={"subset": subset, "group": f"{subset}/{group}", "ranking": rec["ranking"], "comparison_type": comparison},
        )]  # fmt: skip

    return refuse_duplicate_ids(_each(records, make, bad), path)


# --- EditReward-Bench (EditScore) ----------------------------------------------------------------


def load_editreward_editscore(path: str, split: str | None = None, cache_dir: Path | None = None,
                              bad: list[SchemaError] | None = None, **_: Any) -> list[PreferencePair]:  # fmt: skip
    """EditScore/EditReward-Bench (one ``train`` split): ``key[2], instruction, input_image,
    output_images[2], task_type, dimension``; the preferred edit is always ``output_images[0]``, so
    the file is one-sided (candidate 1 always wins) and only a shuffled or both-order run means anything."""
    from unireward.eval.benchmarks import _media, located_records, refuse_duplicate_ids

    records = located_records(path, split or "train", bad=bad)

    def make(where: str, rec: dict[str, Any]) -> list[PreferencePair]:
        keys, outs = rec["key"], rec["output_images"]
        if not isinstance(keys, (list, tuple)) or len(keys) != 2:
            raise SchemaError("expected two keys (chosen, rejected)", where, "key")
        if not isinstance(outs, (list, tuple)) or len(outs) != 2:
            raise SchemaError("expected two output images (chosen first)", where, "output_images")
        for f in ("task_type", "dimension"):
            if not isinstance(rec[f], str) or not rec[f]:
                raise SchemaError("expected a non-empty string", where, f)
        pid = f"{keys[0]}|{keys[1]}|{rec['dimension']}"
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", pid)[:120]
        return [PreferencePair(
            pid, Task.IMAGE_EDITING, rec["instruction"],
            (_media(outs[0], cache_dir, f"{slug}_0"), _media(outs[1], cache_dir, f"{slug}_1")), 1,
            reference=_media(rec["input_image"], cache_dir, f"{slug}_input"), source="editreward-bench/editscore",
            meta={"task_type": rec["task_type"], "dimension": rec["dimension"]},
        )]  # fmt: skip

    return refuse_duplicate_ids(_each(records, make, bad), path)


def load_editreward_bench(path: str, variant: str | None = None, **kwargs: Any) -> list[PreferencePair]:
    """EditReward-Bench, ``variant`` ``tiger`` (TIGER-Lab) or ``editscore`` (EditScore)."""
    if variant == "tiger":
        return load_editreward_tiger(path, **kwargs)
    if variant == "editscore":
        return load_editreward_editscore(path, **kwargs)
    raise ValueError(f"editreward-bench needs --variant tiger or --variant editscore (two different benchmarks share the name), got {variant!r}")


# --- MM-RLHF-RewardBench -------------------------------------------------------------------------

MMRLHF_CATEGORIES = ("mcq", "long", "short", "safety", "video")


def mmrlhf_category(media_path: str) -> str:
    """The MM-RLHF-RewardBench category: the first keyword found in the image or video path.

    >>> mmrlhf_category("mm_reward_bench/long/12.jpg"), mmrlhf_category("x/video/3"), mmrlhf_category("a/b.png")
    ('long', 'video', 'other')
    """
    return next((k for k in MMRLHF_CATEGORIES if k in media_path), "other")


def load_mm_rlhf_rewardbench(path: str, bad: list[SchemaError] | None = None, **_: Any) -> list[PreferencePair]:
    """MM-RLHF-RewardBench ``mm_reward_bench.jsonl``: ``id, image | video, prompt, chosen, rejected``
    (a video is a folder of frames). Ids repeat (several pairs per id, the unit of Acc+); the chosen
    answer is always candidate 1. Media paths are relative to the data folder."""
    from unireward.eval.benchmarks import located_records

    if not Path(path).is_file():  # the hub copy needs its image and frame folders beside the file
        raise FileNotFoundError(f"benchmark file not found: {path} (download mm_reward_bench.jsonl with its media folders)")
    records = located_records(path, bad=bad)
    seen: dict[str, int] = {}

    def make(where: str, rec: dict[str, Any]) -> list[PreferencePair]:
        rid = str(rec["id"])
        video, image = rec.get("video") or "", rec.get("image") or ""
        if not (video or image):
            raise SchemaError("expected an 'image' or a 'video' path", where, "image")
        for f in ("prompt", "chosen", "rejected"):
            if not isinstance(rec[f], str):
                raise SchemaError(f"expected a string, got {type(rec[f]).__name__}", where, f)
        seen[rid] = seen.get(rid, 0) + 1
        media = video or image
        return [PreferencePair(
            f"{rid}#{seen[rid]}", Task.VIDEO_UNDERSTANDING if video else Task.IMAGE_UNDERSTANDING, rec["prompt"],
            (rec["chosen"], rec["rejected"]), 1, reference=media, source="mm-rlhf-rewardbench",
            meta={"group": rid, "category": mmrlhf_category(media)},
        )]  # fmt: skip

    return _each(records, make, bad)
