"""Benchmark loaders: local files (JSONL, JSON, CSV, parquet) or a hub dataset id -> PreferencePair.

Every loader keeps what scoring needs in ``meta`` (VL-RewardBench categories, the GenAI-Bench
vote type, VideoGen-RewardBench per-dimension labels), so one runner scores them all.
Media paths stay relative; the runner resolves them against the media root.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unireward.data.schema import PreferencePair, SchemaError, iter_pairs, normalize_label
from unireward.eval.loaders import (
    EDITREWARD_SUBSETS,
    _each,
    load_editreward_bench,
    load_hpdv2,
    load_mjbench_video,
    load_mm_rlhf_rewardbench,
    load_mmrb2,
    load_multimodal_rewardbench,
)
from unireward.metrics import vlrb_category
from unireward.protocol import Task
from unireward.rows import BadLine, iter_rows

GENAI_TASKS = ("image_generation", "image_edition", "video_generation")
# pairs per task of GenAI-Bench's leaderboard split test_v1 (the split "test" has 3,192 / 983 / 1,911)
GENAI_TEST_V1_PAIRS = {"image_generation": 1735, "image_edition": 919, "video_generation": 1069}
VIDEOGEN_DIMS = ("Overall", "VQ", "MQ", "TA")


def read_records(path: str | os.PathLike[str], split: str | None = None, config: str | None = None) -> list[dict[str, Any]]:
    """Rows of a local JSONL / JSON / CSV / parquet file, or of a hub dataset when ``path`` is not
    a local file (needs a network and ``datasets``); a bad JSONL line is an error naming it."""
    bad: list[SchemaError] = []
    rows = [rec for _, rec in located_records(path, split, config, bad)]
    if bad:
        raise bad[0]
    return rows


def located_records(
    path: str | os.PathLike[str], split: str | None = None, config: str | None = None, bad: list[SchemaError] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """``(where, record)`` for every record: ``file:line`` for JSONL (the line in the file, blank
    lines counted), ``file:row N`` otherwise. JSONL lines that cannot be read go to ``bad``."""
    p = Path(path)
    if not p.exists():
        if str(path).count("/") == 1 and not str(path).startswith((".", "/")):
            import datasets

            return [(f"{path}:row {n}", dict(r)) for n, r in enumerate(datasets.load_dataset(str(path), config, split=split or "test"))]
        raise FileNotFoundError(f"benchmark file not found: {path}")
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        out = []
        for item in iter_rows(p):
            if isinstance(item, BadLine):
                if bad is not None:
                    bad.append(SchemaError(item.reason, f"{p.name}:{item.line}"))
            else:
                out.append((f"{p.name}:{item.line}", item.data))
        return out
    if suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = data.get("data", data.get(split or "test", data))
        if not isinstance(data, list):
            raise ValueError(f"{p}: expected a list of records")
        return [(f"{p.name}:row {n}", rec) for n, rec in enumerate(data)]
    if suffix == ".csv":
        with open(p, encoding="utf-8", newline="") as f:
            return [(f"{p.name}:{n}", rec) for n, rec in enumerate(csv.DictReader(f), start=2)]  # line 1 is the header
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(f"{p.name}:row {n}", rec) for n, rec in enumerate(pq.read_table(p).to_pylist())]
    raise ValueError(f"{p}: unsupported format {suffix!r} (use .jsonl, .json, .csv or .parquet)")


def _convert(
    records: list[tuple[str, Any]], make: Callable[[str, dict[str, Any]], PreferencePair], bad: list[SchemaError] | None
) -> list[PreferencePair]:
    """Pairs from located records; a record that does not fit is a :class:`SchemaError` naming its
    file, row and field: raised, or (with ``bad``) collected while the others are loaded."""
    return _each(records, lambda where, rec: [make(where, rec)], bad)


def _media(value: Any, cache_dir: Path | None, name: str) -> str:
    """A media path from a record field: a path string, a hub ``{"path", "bytes"}`` dict or a PIL image
    (embedded bytes are written once under ``cache_dir``)."""
    if isinstance(value, str):
        return value
    data = None
    if isinstance(value, dict):
        if value.get("bytes") is None and value.get("path"):
            return str(value["path"])
        data = value.get("bytes")
    elif hasattr(value, "save"):
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        data = buf.getvalue()
    if data is None:
        raise SchemaError(f"no media in field {name!r}")
    if cache_dir is None:
        raise ValueError("records embed media bytes; give a cache directory to extract them to")
    suffix = Path(value.get("path") or "").suffix if isinstance(value, dict) else ""
    out = cache_dir / f"{name}{suffix or '.png'}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return str(out)


def _unique_ids(raw_ids: list[str]) -> list[str]:
    """VL-RewardBench ids repeat; later copies get ``~2``, ``~3`` so results can be keyed by id."""
    seen: dict[str, int] = {}
    out = []
    for rid in raw_ids:
        seen[rid] = seen.get(rid, 0) + 1
        out.append(rid if seen[rid] == 1 else f"{rid}~{seen[rid]}")
    return out


def load_vl_rewardbench(
    path: str, split: str | None = None, cache_dir: Path | None = None, bad: list[SchemaError] | None = None, **_: Any
) -> list[PreferencePair]:
    """VL-RewardBench: ``human_ranking[i] == 0`` marks the preferred response (label ``i + 1``)."""
    records = located_records(path, split or "test", bad=bad)
    ids = dict(zip((w for w, _ in records), _unique_ids([str(r.get("id")) for _, r in records]), strict=True))

    def make(where: str, rec: dict[str, Any]) -> PreferencePair:
        pid = ids[where]
        ranking, response = rec["human_ranking"], rec["response"]
        if not isinstance(ranking, list) or sorted(ranking) != [0, 1] or not isinstance(response, list) or len(response) != 2:
            raise SchemaError(f"expected two responses ranked [0, 1] or [1, 0], got {ranking!r:.60}", where, "human_ranking")
        image = rec.get("image_path") or rec.get("image")
        return PreferencePair(
            id=pid, task=Task.IMAGE_UNDERSTANDING, prompt=rec["query"], candidates=tuple(response),
            label=ranking.index(0) + 1, reference=_media(image, cache_dir, pid), source="vl-rewardbench",
            meta={"item_id": str(rec["id"]), "category": vlrb_category(str(rec["id"]), "official"),
                  "category_legacy": vlrb_category(str(rec["id"]), "legacy"),
                  "query_source": rec.get("query_source")},
        )  # fmt: skip

    return _convert(records, make, bad)


def _genai_task(rec: dict[str, Any]) -> str:
    if "left_output_image" in rec:
        return "image_edition"
    if "left_video" in rec:
        return "video_generation"
    return "image_generation"


def load_genai_bench(
    path: str, split: str | None = None, cache_dir: Path | None = None, task: str | None = None,
    bad: list[SchemaError] | None = None, **_: Any,
) -> list[PreferencePair]:
    """GenAI-Bench rows (``vote_type`` = leftvote / rightvote / tievote / bothbad_vote).

    Image editing pairs become ``image_editing`` pairs: the prompt is the edit instruction and the
    reference is the source image, which every request sends first (judge them with a family that
    has editing prompts, e.g. ``unifiedreward-edit``).
    """
    if task is not None and task not in GENAI_TASKS:
        raise ValueError(f"GenAI-Bench task must be one of {GENAI_TASKS}, got {task!r}")
    records = located_records(path, split or "test", config=task, bad=bad)
    index = {w: n for n, (w, _) in enumerate(records)}

    def make(where: str, rec: dict[str, Any]) -> PreferencePair:
        kind = task or _genai_task(rec)
        pid = str(rec.get("idx", index[where]))
        vote = rec["vote_type"]
        if kind == "image_edition":
            cands = (rec["left_output_image"], rec["right_output_image"])
            prompt = rec.get("instruct_prompt") or rec.get("target_prompt")
            reference: str | None = _media(rec["source_image"], cache_dir, f"{pid}_source")
        else:
            key = "video" if kind == "video_generation" else "image"
            cands = (rec[f"left_{key}"], rec[f"right_{key}"])
            prompt, reference = rec["prompt"], None
        return PreferencePair(
            id=pid, task={"video_generation": Task.VIDEO_GENERATION, "image_edition": Task.IMAGE_EDITING}.get(kind, Task.IMAGE_GENERATION),
            prompt=prompt, candidates=(_media(cands[0], cache_dir, f"{pid}_left"), _media(cands[1], cache_dir, f"{pid}_right")),
            label=normalize_label(vote, where), reference=reference, source=f"genai-bench/{kind}",
            meta={"vote_type": vote, "genai_task": kind},
        )  # fmt: skip

    return _convert(records, make, bad)


def _ab(value: Any) -> int:
    """VideoGen-RewardBench labels as human signs: A -> 1, B -> -1, same -> 0."""
    lab = normalize_label(value)
    return {1: 1, 2: -1, "tie": 0}[lab]


def load_videogen_rewardbench(path: str, split: str | None = None, bad: list[SchemaError] | None = None, **_: Any) -> list[PreferencePair]:
    """VideoGen-RewardBench / VideoAlign CSV: ``path_A, path_B, prompt`` and A/B/same labels per
    dimension (``Overall``, ``VQ``, ``MQ``, ``TA``; whichever are present). Rows repeat, so ids are
    row numbers. The pair label is ``Overall`` when present, else the first dimension."""
    records = located_records(path, split, bad=bad)
    index = {w: n for n, (w, _) in enumerate(records)}

    def make(where: str, rec: dict[str, Any]) -> PreferencePair:
        dims = {d: _ab(rec[d]) for d in VIDEOGEN_DIMS if rec.get(d) not in (None, "")}
        if not dims:
            raise SchemaError(f"no label among {VIDEOGEN_DIMS}", where)
        first = next(iter(dims.values()))
        return PreferencePair(
            id=f"row{index[where]:06d}", task=Task.VIDEO_GENERATION, prompt=rec["prompt"],
            candidates=(str(rec["path_A"]), str(rec["path_B"])), label={1: 1, -1: 2, 0: "tie"}[first],
            source="videogen-rewardbench", meta={"labels": dims},
        )  # fmt: skip

    return _convert(records, make, bad)


def load_sharegptvideo(path: str, split: str | None = None, bad: list[SchemaError] | None = None, **_: Any) -> list[PreferencePair]:
    """ShareGPTVideo DPO rows ``id, video, prompt, chosen, rejected``: the chosen answer is candidate 1
    (the runner randomises the order shown to the judge). Ids must be unique (results are keyed by them)."""
    records = located_records(path, split, bad=bad)
    index = {w: n for n, (w, _) in enumerate(records)}

    def make(where: str, rec: dict[str, Any]) -> PreferencePair:
        return PreferencePair(
            id=str(rec.get("id", index[where])), task=Task.VIDEO_UNDERSTANDING, prompt=rec["prompt"],
            candidates=(rec["chosen"], rec["rejected"]), label=1, reference=str(rec["video"]),
            source="sharegptvideo", meta={k: rec[k] for k in ("chosen_score", "rejected_score") if k in rec},
        )  # fmt: skip

    return refuse_duplicate_ids(_convert(records, make, bad), path)


def refuse_duplicate_ids(pairs: list[PreferencePair], path: str) -> list[PreferencePair]:
    """The pairs, or a :class:`SchemaError` naming every id that repeats (results are keyed by id:
    a repeat would score one pair's judgments against another pair's label)."""
    first: dict[str, int] = {}
    clashes: list[str] = []
    for n, p in enumerate(pairs, start=1):
        if p.id in first:
            clashes.append(f"{p.id!r} (records {first[p.id]} and {n})")
        first.setdefault(p.id, n)
    if clashes:
        raise SchemaError(f"duplicate ids: {', '.join(clashes[:5])}{' ...' if len(clashes) > 5 else ''}; ids must be unique", Path(path).name, "id")
    return pairs


def load_pairs(path: str, bad: list[SchemaError] | None = None, **_: Any) -> list[PreferencePair]:
    """Any file in the canonical pair schema (one JSON object per line); repeated ids are refused."""
    pairs = []
    for item in iter_pairs(path, errors="raise" if bad is None else "yield", duplicates="refuse"):
        if isinstance(item, SchemaError):
            if item.field == "id" and "duplicate id" in item.message:
                raise item  # a duplicate is not one bad row: every result of that id would be mixed
            bad.append(item)  # type: ignore[union-attr]
        else:
            pairs.append(item)
    return pairs


@dataclass(frozen=True)
class Benchmark:
    """One registered benchmark: how to load it and what its official numbers mean."""

    name: str
    load: Callable[..., list[PreferencePair]]
    # how an unparsed answer is scored unless the user chooses: "exclude" or "wrong"
    default_unparsed: str
    description: str
    data_format: str = ""
    metric: str = ""
    licence: str = "see the dataset card"
    default_order: str = "random"  # the order convention of the official metric
    media_beside_data: bool = False  # relative media paths resolve against the data file's folder
    tasks: tuple[str, ...] = ()  # values of --task
    variants: tuple[str, ...] = ()  # values of --variant (benchmarks that share a name)


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("vl-rewardbench", load_vl_rewardbench, "exclude", "VL-RewardBench (image understanding)",
                  "JSONL: id, image_path, query, response[2], human_ranking", "Overall (micro) and Macro over general / "
                  "hallucination / reasoning; unparsed excluded; majority vote over samples"),
        Benchmark("genai-bench", load_genai_bench, "wrong", "GenAI-Bench (image generation / editing, video generation)",
                  "hub configs image_generation / image_edition / video_generation, splits test and test_v1 "
                  "(leaderboard: 1,735 / 919 / 1,069); vote_type", "official 4-way accuracy over all pairs "
                  "([[A=B]] right for both tie votes), tau and diff", tasks=GENAI_TASKS),
        Benchmark("videogen-rewardbench", load_videogen_rewardbench, "wrong", "VideoGen-RewardBench (video generation)",
                  "CSV: path_A, path_B, prompt, Overall / VQ / MQ / TA = A, B or same", "accuracy w/o ties and tie-calibrated w/ ties"),
        Benchmark("sharegptvideo", load_sharegptvideo, "wrong", "ShareGPTVideo chosen/rejected pairs (video understanding)",
                  "JSONL: id, video, prompt, chosen, rejected", "accuracy"),
        Benchmark("pairs", load_pairs, "wrong", "any file of canonical preference pairs", "canonical pair JSONL", "accuracy"),
        Benchmark("mmrb2", load_mmrb2, "exclude", "MMRB2 (text-to-image, editing, reasoning; interleaved refused)",
                  "folder with t2i.json, edit.json, interleaved.json, reasoning.json ({'pairs': [...]}) and images/",
                  "both orders; forward and reverse verdicts pooled into one accuracy, empty verdicts leave the "
                  "denominator; overall micro over tasks", "CC BY-NC 4.0 (benchmarking only, not for training)",
                  default_order="both", media_beside_data=True, tasks=("t2i", "edit", "interleaved", "reasoning")),
        Benchmark("multimodal-rewardbench", load_multimodal_rewardbench, "wrong",
                  "Multimodal RewardBench (image understanding, 6 areas)", "all_data.json: ID, Text, Image, Output1, Output2, "
                  "Better, Category", "accuracy, micro over all items and per category (safety split into bias and "
                  "toxicity, reasoning into math and coding, by id prefix); unparsed = coin flip seeded 123", "CC BY-NC",
                  media_beside_data=True),
        Benchmark("mjbench-video", load_mjbench_video, "wrong", "MJ-Bench-Video (video generation, overall preference)",
                  "datas/test.json: caption, video_0_path, video_1_path, overall_preference", "accuracy over 'Video 1/2 better' "
                  "pairs (Same / Hard to judge dropped): strict (undecided = wrong) and tie-aware (undecided = 0.5)"),
        Benchmark("hpdv2", load_hpdv2, "wrong", "HPDv2 test (ranked text-to-image images)",
                  "test.json: prompt, image_path[], rank[]", "inversion score 1 - discordant / C(n, 2) per prompt, mean "
                  "over prompts, from pairwise verdicts on every image pair", media_beside_data=True),
        Benchmark("editreward-bench", load_editreward_bench, "wrong", "EditReward-Bench: --variant tiger (TIGER-Lab, 2/3/4-way "
                  "rankings) or editscore (EditScore, chosen vs rejected)", "tiger: rows id, instruction, source_image, "
                  "candidate_1, candidate_2, ranking, comparison_type, dataset (2pair / 3pair / 4pair); editscore: key[2], "
                  "instruction, input_image, output_images[2] (chosen first), task_type, dimension",
                  "tiger: individual accuracy (A>B / B>A / A=B must match) per subset, group accuracy on 3/4-pair; "
                  "editscore: chosen must win (ties wrong), macro over task types", tasks=EDITREWARD_SUBSETS,
                  variants=("tiger", "editscore")),
        Benchmark("mm-rlhf-rewardbench", load_mm_rlhf_rewardbench, "wrong", "MM-RLHF-RewardBench (image and video understanding)",
                  "mm_reward_bench.jsonl: id, image or video (frame folder), prompt, chosen, rejected",
                  "Acc (chosen must win; ties wrong) and Acc+ (every pair of an id right), per category from the media path",
                  media_beside_data=True),
    )
}  # fmt: skip


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]


def benchmark_table() -> str:
    """The registry as a Markdown table (``unireward eval list``)."""
    rows = ["| benchmark | data format | official metric | licence | default order |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {b.name} | {b.data_format} | {b.metric} | {b.licence} | {b.default_order} |" for b in BENCHMARKS.values()]
    return "\n".join(rows)
