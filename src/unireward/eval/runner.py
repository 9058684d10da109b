"""The one evaluation runner: load a benchmark, judge every pair (resumably), score, report.

Predictions are appended to ``predictions.jsonl`` one judgment at a time, keyed by
``pair id | sample | orientation``; a rerun with the same settings skips keys already there, so
an interrupted run continues where it stopped. ``run.json`` records the settings that produced the
predictions and a rerun with different ones is refused instead of silently mixing them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from unireward.data.schema import PreferencePair, SchemaError
from unireward.eval.baselines import build_judge
from unireward.eval.benchmarks import GENAI_TEST_V1_PAIRS, get_benchmark
from unireward.eval.protocols import PROTOCOLS, Verdict, from_judgment, winner_to_genai_vote
from unireward.eval.scoring import (
    score_editreward_editscore,
    score_editreward_tiger,
    score_hpdv2,
    score_mjbench_video,
    score_mm_rlhf,
    score_mmrb2,
    score_multimodal_rewardbench,
)
from unireward.judge.base import BaseJudge
from unireward.manifest import Manifest, begin_run, file_fingerprint, model_fingerprint
from unireward.media import resolve
from unireward.metrics import (
    VLRB_MAPPINGS,
    accuracy_with_ties,
    accuracy_with_ties_videoalign,
    accuracy_without_ties,
    category_accuracy,
    genai_bench_scores,
    majority_vote,
    mmrb1_category,
    position_block,
)
from unireward.protocol import Judgment
from unireward.rows import RowWriter, exclusive, read_rows, replace_rows

log = logging.getLogger(__name__)

ORDERS = ("as-is", "random", "both")
_FLIP_VOTE = {"[[A>B]]": "[[B>A]]", "[[B>A]]": "[[A>B]]", "[[A>>B]]": "[[B>>A]]", "[[B>>A]]": "[[A>>B]]"}


@dataclass
class EvalConfig:
    """Everything that determines a run's numbers (and is written into every report)."""

    benchmark: str
    data: str
    out_dir: str
    judge: str = "baseline:random"
    media_root: str | None = None
    split: str | None = None
    task: str | None = None  # GenAI-Bench config, MMRB2 task, EditReward-Bench subset
    variant: str | None = None  # EditReward-Bench: "tiger" or "editscore"
    protocol: str = "answer"
    order: str | None = None  # candidate order shown to the judge; None = the benchmark's official convention
    seed: int = 0
    samples: int = 1  # judgments per pair and orientation (majority vote on VL-RewardBench)
    unparsed: str | None = None  # "exclude" | "wrong"; None = the benchmark's official choice
    official_compat: bool = False  # VideoGen-RewardBench: VideoAlign's w/-ties loop instead of the exact one
    margin: str = "verdict"  # VideoGen-RewardBench margin: "verdict" (±1) or "totals" (score difference)
    batch_size: int = 8
    limit: int | None = None
    data_kind: str = "real"  # "real" or "synthetic": printed beside every number
    judge_options: dict[str, Any] = field(default_factory=dict)  # model judges: max_new_tokens, temperature, ...
    overwrite: bool = False  # start afresh when out_dir holds predictions made with other settings
    pointwise: bool = False  # score each distinct candidate once (the judge's pointwise protocol) and compare scores
    progress: bool = True  # a progress bar on stderr for model judges (baselines are instant)

    def __post_init__(self) -> None:
        bench = get_benchmark(self.benchmark)
        if self.pointwise:
            self.order = "as-is"  # one score per candidate: no order is shown, so none is varied
        if self.order is None:
            self.order = bench.default_order
        if bench.variants and self.variant not in bench.variants:
            raise ValueError(f"{self.benchmark} needs variant one of {bench.variants}, got {self.variant!r}")
        if not bench.variants and self.variant is not None:
            raise ValueError(f"{self.benchmark} has no variants (got {self.variant!r})")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.unparsed is None:
            self.unparsed = get_benchmark(self.benchmark).default_unparsed
        if self.unparsed not in ("exclude", "wrong"):
            raise ValueError(f"unparsed must be 'exclude' or 'wrong', got {self.unparsed!r}")
        if self.margin not in ("verdict", "totals"):
            raise ValueError(f"margin must be 'verdict' or 'totals', got {self.margin!r}")
        if self.samples < 1 or self.batch_size < 1:
            raise ValueError("samples and batch_size must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be positive")
        if self.data_kind not in ("real", "synthetic"):
            raise ValueError(f"data_kind must be 'real' or 'synthetic', got {self.data_kind!r}")

    def fingerprint(self) -> dict[str, Any]:
        """Settings that change the predictions (not how they are scored)."""
        keys = ("benchmark", "data", "judge", "split", "task", "protocol", "order", "seed", "samples", "judge_options")
        out = {k: getattr(self, k) for k in keys}
        if self.variant is not None:  # only where set, so earlier runs still resume under the same settings
            out["variant"] = self.variant
        if self.pointwise:
            out["pointwise"] = True
        return out


def run_manifest(cfg: EvalConfig, judge_name: str) -> Manifest:
    """The settings the predictions depend on, with fingerprints of the data file and the judge model."""
    data = Path(cfg.data)
    settings = {**cfg.fingerprint(), "judge_name": judge_name,
                "data_fingerprint": file_fingerprint(data) if data.is_file() else None,
                "judge_fingerprint": model_fingerprint(cfg.judge)}  # fmt: skip
    return Manifest("eval", settings)


@dataclass(frozen=True)
class _Item:
    key: str
    pair: PreferencePair
    sample: int
    swapped: bool

    def presented(self) -> PreferencePair:
        p = self.pair.swapped() if self.swapped else self.pair
        return dataclasses.replace(p, id=self.key)


def plan(pairs: list[PreferencePair], order: str, samples: int, seed: int) -> list[_Item]:
    """What the judge is asked, in order. ``random`` flips a seeded coin per pair and sample."""
    items = []
    for p in pairs:
        for s in range(samples):
            if order == "both":
                flips = [False, True]
            elif order == "random":
                flips = [random.Random(f"{seed}\x00{p.id}\x00{s}").random() < 0.5]
            else:
                flips = [False]
            items += [_Item(f"{p.id}|{s}|{'swap' if f else 'orig'}", p, s, f) for f in flips]
    return items


def _missing_media(pair: PreferencePair, root: str | None) -> str | None:
    for path in pair.media_paths():
        full = resolve(path, root)
        if "://" not in full and not os.path.exists(full):
            return f"missing media file: {path}"
    return None


def _record(item: _Item, judgment: Judgment | None, protocol: str, judge_name: str, error: str | None) -> dict[str, Any]:
    # A judgment that failed (media that would not decode, a backend error) is an error, not an
    # unparsed answer: no model output exists to parse.
    error = error or getattr(judgment, "error", None)
    judgment = None if error else judgment
    verdict = Verdict(None, None) if judgment is None else from_judgment(judgment, protocol)
    winner, vote = verdict.winner, verdict.vote
    totals = judgment.totals if judgment is not None and judgment.totals else None
    if item.swapped:  # report everything in the pair's own orientation
        winner = {1: 2, 2: 1}.get(winner, winner)  # type: ignore[arg-type]
        vote = _FLIP_VOTE.get(vote, vote) if vote else vote
        totals = {1: totals[2], 2: totals[1]} if totals else None
    if protocol != "genai-bench":
        vote = winner_to_genai_vote(winner) if item.pair.source.startswith("genai-bench") else vote
    return {
        "key": item.key, "id": item.pair.id, "sample": item.sample, "swapped": item.swapped,
        "winner": winner, "vote": vote, "totals": {str(k): v for k, v in totals.items()} if totals else None,
        "status": "error" if error else (judgment.status if judgment is not None else "error"),
        "reason": error or (judgment.reason if judgment is not None else ""),
        "text": judgment.text if judgment is not None else "", "judge": judge_name,
    }  # fmt: skip


def predict(cfg: EvalConfig, pairs: list[PreferencePair], judge: BaseJudge, engine: Any = None) -> list[dict[str, Any]]:
    """Judge every planned item not already in ``predictions.jsonl``; return all records in plan order."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred_file = out / "predictions.jsonl"
    with exclusive(pred_file):
        begin_run(out, run_manifest(cfg, judge.name), produced=[pred_file, out / "report.json"], overwrite=cfg.overwrite)
        # Error rows are judged again (a transient failure, or media fixed since); judged rows stay.
        rows = read_rows(pred_file, required=("key", "id", "sample", "swapped", "winner", "status"))
        done = {r["key"]: r for r in rows if r["status"] != "error"}
        if cfg.pointwise:
            records, stored = _predict_pointwise(cfg, pairs, judge, pred_file, done)
        else:
            records, _ = _predict(cfg, pairs, judge, pred_file, done, engine)
            stored = records
        if len(done) < len(rows):  # error rows were judged again: keep one line per judgment
            latest = {r["key"]: r for r in rows}
            latest.update((r["key"], r) for r in stored)
            replace_rows(pred_file, latest.values())
        return records


def candidate_key(pair: PreferencePair, k: int, sample: int) -> str:
    """One key per distinct (task, prompt, candidate, reference): a candidate shared by several pairs
    (HPDv2's images, a ranking's edits) is scored once."""
    import hashlib

    blob = json.dumps([pair.task.value, pair.prompt, pair.candidates[k], pair.reference], sort_keys=True)
    return f"score|{hashlib.sha256(blob.encode()).hexdigest()[:20]}|{sample}"


def pointwise_winner(a: float | None, b: float | None) -> object:
    """The verdict two pointwise scores amount to: the higher wins, equal scores tie, a missing
    score leaves no verdict.

    >>> pointwise_winner(7.0, 5.5), pointwise_winner(3, 3), pointwise_winner(None, 2)
    (1, 'tie', None)
    """
    if a is None or b is None:
        return None
    return 1 if a > b else 2 if b > a else "tie"


def _predict_pointwise(cfg: EvalConfig, pairs: list[PreferencePair], judge: BaseJudge, pred_file: Path,
                       done: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """Score every distinct candidate once per sample (``judge.score_many``), then compare the scores of
    each pair; the candidate order plays no part, so every pair record is in the data's order."""
    if not hasattr(judge, "score_many"):
        raise ValueError(f"judge {judge.name} has no pointwise mode (--pointwise needs a model judge with pointwise prompts)")
    wanted: dict[str, tuple[PreferencePair, int, int]] = {}
    for p in pairs:
        for s in range(cfg.samples):
            for k in (0, 1):
                wanted.setdefault(candidate_key(p, k, s), (p, k, s))
    todo = [key for key in wanted if key not in done]
    with RowWriter(pred_file, lock=False) as w:
        for start in range(0, len(todo), cfg.batch_size):
            batch = todo[start : start + cfg.batch_size]
            items, rows = [], {}
            for key in batch:
                p, k, s = wanted[key]
                media = ([p.candidates[k]] if p.task.is_generation else []) + ([p.reference] if p.reference is not None else [])
                missing = next((m for m in media if isinstance(m, str) and "://" not in m and not os.path.exists(resolve(m, cfg.media_root))), None)
                if missing is not None:
                    rows[key] = {"key": key, "id": key, "sample": s, "swapped": False, "winner": None, "score": None,
                                 "status": "error", "reason": f"missing media file: {missing}", "text": ""}  # fmt: skip
                else:
                    items.append({"id": key, "task": p.task.value, "prompt": p.prompt, "candidate": p.candidates[k], "reference": p.reference})
            results = judge.score_many(items, cfg.media_root) if items else []  # type: ignore[attr-defined]
            for item, res in zip(items, results, strict=True):
                err = getattr(res, "error", None)
                rows[item["id"]] = {"key": item["id"], "id": item["id"], "sample": wanted[item["id"]][2], "swapped": False, "winner": None,
                                    "score": None if err else getattr(res, "score", None), "status": "error" if err else res.status,
                                    "reason": err or res.reason, "text": res.text}  # fmt: skip
            w.write([rows[k] for k in batch])
            done.update(rows)
    records = []
    for p in pairs:
        for s in range(cfg.samples):
            a, b = (done[candidate_key(p, k, s)] for k in (0, 1))
            failed = next((r for r in (a, b) if r["status"] == "error"), None)
            records.append({"key": f"{p.id}|{s}|pointwise", "id": p.id, "sample": s, "swapped": False,
                            "winner": None if failed else pointwise_winner(a["score"], b["score"]),
                            "vote": None, "totals": None, "status": "error" if failed else "ok",
                            "reason": failed["reason"] if failed else "", "text": f"scores {a['score']} / {b['score']}", "judge": judge.name})  # fmt: skip
            if p.source.startswith("genai-bench"):
                records[-1]["vote"] = winner_to_genai_vote(records[-1]["winner"])
    return records, [done[k] for k in wanted]



def _judge_batch(cfg: EvalConfig, judge: BaseJudge, batch: list[_Item]) -> list[dict[str, Any]]:
    """The records of one batch of planned judgments (a missing medium is its item's error record)."""
    needs_media = getattr(judge, "needs_media", True)
    errors = {it.key: _missing_media(it.pair, cfg.media_root) if needs_media else None for it in batch}
    ready = [it for it in batch if errors[it.key] is None]
    judgments = judge.compare_batch([it.presented() for it in ready], cfg.media_root) if ready else []
    if len(judgments) != len(ready):
        raise RuntimeError(f"judge {judge.name} returned {len(judgments)} judgments for {len(ready)} pairs")
    by_key = dict(zip((it.key for it in ready), judgments, strict=True))
    return [_record(it, by_key.get(it.key), cfg.protocol, judge.name, errors[it.key]) for it in batch]


@dataclass(frozen=True)
class RemoteJudge:
    """A model judge that is loaded where its batches run (``--engine ray``), named here."""

    name: str
    needs_media: bool = True


def _predict(cfg: EvalConfig, pairs: list[PreferencePair], judge: BaseJudge, pred_file: Path,
             done: dict[str, dict[str, Any]], engine: Any = None) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    items = plan(pairs, cfg.order, cfg.samples, cfg.seed)
    todo = [it for it in items if it.key not in done]
    if done and todo:
        log.info("resuming: %d of %d judgments already done", len(items) - len(todo), len(items))
    needs_media = getattr(judge, "needs_media", True)
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=f"eval {cfg.benchmark}", unit="judgment",
               file=sys.stderr, disable=not (cfg.progress and todo and needs_media))  # fmt: skip
    with bar, RowWriter(pred_file, lock=False) as w:

        def emit(recs: list[dict[str, Any]]) -> None:
            w.write(recs)
            done.update((r["key"], r) for r in recs)
            bar.update(len(recs))

        batches = [todo[start : start + cfg.batch_size] for start in range(0, len(todo), cfg.batch_size)]
        if engine is None:
            for batch in batches:
                emit(_judge_batch(cfg, judge, batch))
        else:  # the same batches through the same function, on a Ray actor pool
            from unireward.runs.job import Chunk, Item
            from unireward.runs.ray_engine import RayRunner

            def load() -> Any:
                model = build_judge(cfg.judge, cfg.seed, **cfg.judge_options)
                return lambda chunk: _judge_batch(cfg, model, list(chunk.values))

            chunks = (Chunk(i, i * cfg.batch_size, tuple(Item(it.key, it) for it in b)) for i, b in enumerate(batches))
            RayRunner(load, engine)(chunks, emit)
    if engine is not None and todo:  # rows arrived as workers finished: the file in plan order, as locally
        keys = {it.key for it in items}
        replace_rows(pred_file, [done[it.key] for it in items if it.key in done]
                     + [r for r in read_rows(pred_file, required=("key",)) if r["key"] not in keys])  # fmt: skip
    return [done[it.key] for it in items], len(todo)


# --- scoring -------------------------------------------------------------------------------------


def _round(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)


def _swap_consistency(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    groups: dict[tuple[str, int], dict[bool, Any]] = defaultdict(dict)
    for r in records:
        groups[(r["id"], r["sample"])][r["swapped"]] = r["winner"]
    both = [g for g in groups.values() if len(g) == 2]
    if not both:
        return None
    consistent = sum(g[False] is not None and g[False] == g[True] for g in both)
    return {"pairs": len(both), "consistent": consistent, "percent": _round(100.0 * consistent / len(both))}


def _vlrb_correct(pairs: list[PreferencePair], by_id: dict[str, list[dict]], swapped: bool | None) -> list[bool | None]:
    """Per pair: the majority verdict over samples (of one orientation, or of all) is right, wrong, or
    ``None`` (no verdict, or a tied vote)."""
    correct: list[bool | None] = []
    for p in pairs:
        w = majority_vote(r["winner"] for r in by_id[p.id] if r["winner"] in (1, 2) and swapped in (None, r["swapped"]))
        correct.append(None if w is None else w == p.label)
    return correct


def _mean_or_none(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


def _score_vlrb(cfg: EvalConfig, pairs: list[PreferencePair], by_id: dict[str, list[dict]]) -> dict[str, Any]:
    # Under both orders each orientation is scored as the official scorer would score a run shown in
    # that order, and the two are averaged: a vote across orders would make a judge that always
    # names slot 1 tie with itself on every pair and vanish from the numbers as "unparsed".
    orientations: list[bool | None] = [False, True] if cfg.order == "both" else [None]
    corrects = [_vlrb_correct(pairs, by_id, o) for o in orientations]
    out: dict[str, Any] = {}
    for mapping in VLRB_MAPPINGS:
        key = "category" if mapping == "official" else "category_legacy"
        rs = [category_accuracy([p.meta[key] for p in pairs], c, cfg.unparsed == "exclude") for c in corrects]
        cats = rs[0]["categories"]
        out[mapping] = {
            "overall": _round(_mean_or_none([r["overall"] for r in rs])), "macro": _round(_mean_or_none([r["macro"] for r in rs])),
            "categories": {c: {"n": v["n"], "accuracy": _round(_mean_or_none([r["categories"][c]["accuracy"] for r in rs]))}
                           for c, v in cats.items()},
        }  # fmt: skip
    out["unparsed_pairs"] = sum(c is None for c in corrects[0]) if len(corrects) == 1 else [sum(c is None for c in x) for x in corrects]
    return out


def _score_genai(cfg: EvalConfig, pairs: list[PreferencePair], by_id: dict[str, list[dict]]) -> dict[str, Any]:
    votes, human = [], []
    for p in pairs:
        for r in by_id[p.id]:  # every sample and orientation is one trial
            votes.append(r["vote"])
            human.append(p.meta["vote_type"])
    s = genai_bench_scores(votes, human)
    out: dict[str, Any] = {k: _round(v) if isinstance(v, float) else v for k, v in s.items()}
    if cfg.split == "test_v1":  # the leaderboard split has known sizes: say when a file is not it
        tasks = Counter(p.meta["genai_task"] for p in pairs)
        out["split_check"] = {t: {"pairs": n, "test_v1_pairs": GENAI_TEST_V1_PAIRS[t], "matches": n == GENAI_TEST_V1_PAIRS[t]}
                              for t, n in sorted(tasks.items())}  # fmt: skip
    return out


def _margin(records: list[dict[str, Any]], kind: str) -> float:
    vals = []
    for r in records:
        if kind == "totals" and r.get("totals"):
            vals.append(float(r["totals"]["1"]) - float(r["totals"]["2"]))
        else:
            vals.append({1: 1.0, 2: -1.0}.get(r["winner"], 0.0))  # tie or unparsed: no preference
    return sum(vals) / len(vals)


def _score_videogen(cfg: EvalConfig, pairs: list[PreferencePair], by_id: dict[str, list[dict]]) -> dict[str, Any]:
    margins = [_margin(by_id[p.id], cfg.margin) for p in pairs]
    with_ties = accuracy_with_ties_videoalign if cfg.official_compat else accuracy_with_ties
    out: dict[str, Any] = {}
    dims = [d for d in ("Overall", "VQ", "MQ", "TA") if any(d in p.meta["labels"] for p in pairs)]
    for d in dims:
        idx = [i for i, p in enumerate(pairs) if d in p.meta["labels"]]
        h = [pairs[i].meta["labels"][d] for i in idx]
        m = [margins[i] for i in idx]
        acc, eps = with_ties(h, m)
        out[d] = {"n": len(idx), "human_ties": sum(x == 0 for x in h), "accuracy_without_ties": _round(100 * accuracy_without_ties(h, m)),
                  "accuracy_with_ties": _round(100 * acc), "epsilon": _round(eps)}  # fmt: skip
    out["unparsed_judgments"] = sum(r["winner"] is None for p in pairs for r in by_id[p.id])
    return out


def _score_pairs(cfg: EvalConfig, pairs: list[PreferencePair], by_id: dict[str, list[dict]]) -> dict[str, Any]:
    hits = total = unparsed = 0
    for p in pairs:
        if p.label == "tie":
            continue
        for r in by_id[p.id]:
            if r["winner"] not in (1, 2):
                unparsed += 1
                if cfg.unparsed == "exclude":
                    continue
            total += 1
            hits += r["winner"] == p.label
    return {"accuracy": _round(100.0 * hits / total) if total else None, "n": total, "unparsed": unparsed}


_SCORERS = {"vl-rewardbench": _score_vlrb, "genai-bench": _score_genai, "videogen-rewardbench": _score_videogen,
            "sharegptvideo": _score_pairs, "pairs": _score_pairs,
            "mmrb2": lambda cfg, pairs, by_id: score_mmrb2(pairs, by_id),
            "multimodal-rewardbench": lambda cfg, pairs, by_id: score_multimodal_rewardbench(pairs, by_id),
            "mjbench-video": lambda cfg, pairs, by_id: score_mjbench_video(pairs, by_id),
            "hpdv2": lambda cfg, pairs, by_id: score_hpdv2(pairs, by_id),
            "editreward-bench": lambda cfg, pairs, by_id: (score_editreward_tiger if cfg.variant == "tiger" else score_editreward_editscore)(pairs, by_id),
            "mm-rlhf-rewardbench": lambda cfg, pairs, by_id: score_mm_rlhf(pairs, by_id)}  # fmt: skip


def headline_value(benchmark: str, results: dict[str, Any]) -> float | None:
    """The official headline number of a benchmark's results, in percent (``overall`` in ``--json``)."""
    if not results:
        return None
    if benchmark == "vl-rewardbench":
        return results["official"]["overall"]
    if benchmark in ("genai-bench", "pairs", "sharegptvideo"):
        return results.get("accuracy")
    if benchmark == "videogen-rewardbench":
        dim = results.get("Overall") or next((v for v in results.values() if isinstance(v, dict)), {})
        return dim.get("accuracy_without_ties")
    return results.get("overall")


def position_group(pair: PreferencePair) -> str:
    """The category or task a pair's position metrics are reported under."""
    if pair.source == "multimodal-rewardbench":
        return mmrb1_category(pair.meta["category"], pair.id)
    m = pair.meta
    return str(m.get("task_name") or m.get("subset") or m.get("task_type") or m.get("category") or m.get("genai_task") or pair.task.value)


def position_report(pairs: list[PreferencePair], records: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``position`` block over all pairs and one per category/task (with its pair count)."""
    label = {p.id: p.label for p in pairs}
    group = {p.id: position_group(p) for p in pairs}
    judged = [{"id": r["id"], "sample": r["sample"], "swapped": r["swapped"], "winner": r["winner"], "label": label[r["id"]]}
              for r in records if r["id"] in label]  # fmt: skip
    rounded = lambda b: {k: _round(v) for k, v in b.items()}  # noqa: E731
    groups: dict[str, Any] = {}
    for g in sorted(set(group.values())):
        block = rounded(position_block(j for j in judged if group[j["id"]] == g))
        groups[g] = {**block, "pairs": sum(v == g for v in group.values())}
    return rounded(position_block(judged)), groups


def conventions(cfg: EvalConfig) -> dict[str, str]:
    """How each number is defined, in words, for the report labels."""
    unparsed = "unparsed answers excluded" if cfg.unparsed == "exclude" else "unparsed answers count as wrong"
    if cfg.benchmark == "vl-rewardbench":
        ties = f"no ties in labels; {unparsed}; majority vote over {cfg.samples} sample(s) x orientations"
        mapping = "official (POVID = hallucination) and legacy (POVID = general)"
    elif cfg.benchmark == "genai-bench":
        ties = ("accuracy: official 4-way ([[A=B]] right for both tie votes), all pairs; tau: 3-way, tie votes one class; "
                "diff: left/right votes only; unparsed = wrong")  # fmt: skip
        mapping = "n/a"
    elif cfg.benchmark == "mmrb2":
        ties = "both orders pooled (MMRB2); empty verdicts leave the denominator, a tie verdict is wrong"
        mapping = "tasks t2i / edit / reasoning (interleaved and multi-image items skipped by name)"
    elif cfg.benchmark == "multimodal-rewardbench":
        ties = "no ties in labels; unparsed or tie verdicts become a coin flip (random.Random(123), file order)"
        mapping = "Category; safety -> bias / toxicity, reasoning -> math / coding by id prefix"
    elif cfg.benchmark == "mjbench-video":
        ties = "human Same / Hard to judge dropped; strict: undecided verdict wrong; tie-aware: undecided = 0.5"
        mapping = "n/a"
    elif cfg.benchmark == "hpdv2":
        ties = "human-tied image pairs not judged, counted in C(n,2), never discordant; tie or unparsed verdict = discordant"
        mapping = "n/a"
    elif cfg.benchmark == "editreward-bench" and cfg.variant == "tiger":
        ties = "2-pair human A=B right only for a tie verdict; unparsed = wrong; group = every comparison of a sample right"
        mapping = "subsets 2pair / 3pair / 4pair; groups by id prefix"
    elif cfg.benchmark == "editreward-bench":
        ties = "chosen is output_images[0]; tie or unparsed verdict = wrong"
        mapping = "task_type (macro) per dimension"
    elif cfg.benchmark == "mm-rlhf-rewardbench":
        ties = "chosen is candidate 1 in the file; tie or unparsed verdict = wrong; Acc+ per id"
        mapping = "category = keyword (mcq, long, short, safety, video) of the media path"
    elif cfg.benchmark == "videogen-rewardbench":
        loop = "VideoAlign's loop (official-compat)" if cfg.official_compat else "exact threshold sweep incl. no model ties"
        ties = f"w/o ties: human ties dropped, margin 0 = wrong; w/ ties: {loop}; margin = {cfg.margin}; unparsed = margin 0"
        mapping = "n/a"
    else:
        ties = f"human ties dropped; {unparsed}; mean over judgments"
        mapping = "n/a"
    return {"tie_convention": ties, "category_mapping": mapping}


def score(cfg: EvalConfig, pairs: list[PreferencePair], records: list[dict[str, Any]], judge_name: str) -> dict[str, Any]:
    """Score the pairs whose every judgment exists; pairs with a failed judgment are counted apart
    (``errors``), never as unparsed or wrong: a rerun retries them."""
    failed = {r["id"] for r in records if r["status"] == "error"}
    scored = [p for p in pairs if p.id not in failed]
    by_id: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r["id"] not in failed:
            by_id[r["id"]].append(r)
    results = _SCORERS[cfg.benchmark](cfg, scored, by_id) if scored else {}
    labels = {
        "benchmark": cfg.benchmark, "split": cfg.split or "test", "task": cfg.task, "data": cfg.data_kind,
        "source": Path(cfg.data).name, "judge": judge_name, "protocol": cfg.protocol, "order": cfg.order,
        "seed": cfg.seed, "samples": cfg.samples, "unparsed": cfg.unparsed, **({"variant": cfg.variant} if cfg.variant else {}),
        "mode": "pointwise (higher score wins, equal scores tie)" if cfg.pointwise else "pairwise",
        **conventions(cfg),
    }  # fmt: skip
    position, groups = position_report(scored, [r for r in records if r["id"] not in failed])
    report: dict[str, Any] = {"overall": headline_value(cfg.benchmark, results), "labels": labels, "results": results,
                              "position": position, "position_groups": groups,
                              "n_pairs": len(pairs), "n_scored": len(scored), "n_judgments": len(records)}  # fmt: skip
    swap = _swap_consistency([r for r in records if r["id"] not in failed])
    if swap is not None:
        report["swap_consistency"] = swap
    report["errors"] = {"judgments": sum(r["status"] == "error" for r in records), "pairs": len(failed),
                        "examples": [f"{r['id']}: {r['reason']}" for r in records if r["status"] == "error"][:5]}  # fmt: skip
    report["unparsed_judgments"] = sum(r["status"] != "error" and r["winner"] is None for r in records)
    return report


def skipped_summary(skipped: list[tuple[str, str]]) -> dict[str, Any]:
    """How many records were not evaluated, for which reason, with the first few named.

    >>> skipped_summary([("t.json:3", "interleaved"), ("t.json:9", "interleaved")])
    {'records': 2, 'reasons': {'interleaved': 2}, 'examples': ['t.json:3: interleaved', 't.json:9: interleaved']}
    """
    reasons: dict[str, int] = defaultdict(int)
    for _, why in skipped:
        reasons[why] += 1
    return {"records": len(skipped), "reasons": dict(reasons), "examples": [f"{w}: {why}" for w, why in skipped[:10]]}


def run_eval(cfg: EvalConfig, judge: BaseJudge | None = None, engine: Any = None) -> dict[str, Any]:
    """Load, judge (resuming), score and write ``report.json``, ``report.md`` and ``report.png``.
    ``engine`` (a :class:`~unireward.runs.ray_engine.RayOptions`) judges on a Ray actor pool."""
    from unireward.eval.report import write_report

    bench = get_benchmark(cfg.benchmark)
    out = Path(cfg.out_dir)
    bad: list[SchemaError] = []  # records that do not fit: named, left out, counted as errors
    skipped: list[tuple[str, str]] = []  # records the protocols do not cover or the official metric drops
    pairs = bench.load(cfg.data, split=cfg.split, cache_dir=out / "media", task=cfg.task, bad=bad, skipped=skipped,
                       **({"variant": cfg.variant} if cfg.variant else {}))
    for e in bad:
        log.warning("%s: left out: %s", cfg.data, e)
    if skipped:
        log.warning("%s: %d records not evaluated (first: %s: %s)", cfg.data, len(skipped), *skipped[0])
    if cfg.media_root is None and bench.media_beside_data:
        data = Path(cfg.data)
        cfg = dataclasses.replace(cfg, media_root=str(data if data.is_dir() else data.parent))
    if cfg.limit is not None:
        pairs = pairs[: cfg.limit]
    if not pairs:
        raise ValueError(f"{cfg.data}: no pairs to evaluate" + (f" ({len(bad)} records could not be read, first: {bad[0]})" if bad else ""))
    if engine is not None:  # the model is loaded by each Ray worker, not here
        if judge is not None or cfg.judge.startswith("baseline:") or cfg.pointwise:
            raise ValueError("--engine ray runs a pairwise model judge (--judge MODEL); baselines, served judges and "
                             "--pointwise run in this process")  # fmt: skip
        judge = RemoteJudge(cfg.judge)  # type: ignore[assignment]
    judge = judge or build_judge(cfg.judge, cfg.seed, **cfg.judge_options)
    records = predict(cfg, pairs, judge, engine)
    report = score(cfg, pairs, records, judge.name)
    report["errors"]["bad_records"] = [str(e) for e in bad]
    report["skipped"] = skipped_summary(skipped)
    write_report(report, out)
    return report
