"""Stage 2: rejection sampling. The cold-started judge samples k judgments per labelled pair.

The rule that routes pairs is explicit and configurable. The paper's: a pair the model judges
correctly gives its correct CoT to the next SFT set; a pair it judges wrongly goes to GRPO.
"Judges correctly" is decided over the k samples by ``judged_by``: ``majority`` (default),
``any`` (pass@k) or ``all``. Samples are appended per chunk, so a killed run resumes where it was.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from unireward.data.schema import PreferencePair, SchemaError, read_pairs
from unireward.media import MediaError, VisionBudget
from unireward.models.family import resolve_budget
from unireward.protocol.parser import parse_judgment
from unireward.request import load_pair_media, pair_messages
from unireward.runs.job import Chunk, Item, Job, JobResult, JobSpec
from unireward.runs.manifest import Manifest, file_fingerprint, model_settings
from unireward.runs.rows import replace_json, replace_rows

log = logging.getLogger(__name__)


@dataclass
class SampleConfig:
    model: str
    pairs: str
    out_dir: str
    media_root: str | None = None
    family: str | None = None
    template_family: str | None = None
    k: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    judged_by: str = "majority"
    max_sft_per_pair: int = 1
    chunk_size: int = 64
    max_batch_size: int = 16
    seed: int = 0
    limit: int | None = None
    #: a VisionBudget, or overrides of the model family's default (see ``models.family.resolve_budget``)
    budget: VisionBudget | dict[str, Any] | None = None
    #: a repeated pair id is refused (its samples would be routed with the other pair); True renames it
    make_unique_ids: bool = False
    overwrite: bool = False
    #: sample from served judges instead of loading ``model`` (its served name): comma-separated
    #: OpenAI base URLs, several making one pool (least in flight, failover, health checks)
    base_url: str | None = None
    api_key_env: str = "UNIREWARD_API_KEY"
    concurrency: int = 8  #: requests in flight per endpoint

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be >= 1")
        if self.temperature <= 0 and self.k > 1:
            raise ValueError("k > 1 samples need temperature > 0")
        if self.judged_by not in ("majority", "any", "all"):
            raise ValueError("judged_by must be 'majority', 'any' or 'all'")
        if self.max_sft_per_pair < 1 or self.chunk_size < 1:
            raise ValueError("max_sft_per_pair and chunk_size must be >= 1")
        if isinstance(self.budget, dict):
            VisionBudget(**self.budget)  # fail on construction; the family's factor is added at run time


def judged_correctly(correct: list[bool], rule: str) -> bool:
    """Whether k samples count as the model judging the pair correctly.

    >>> judged_correctly([True, False, False, True], "majority"), judged_correctly([True, False], "any")
    (False, True)
    >>> judged_correctly([True, True, True], "all")
    True
    """
    if not correct:
        return False
    if rule == "any":
        return any(correct)
    if rule == "all":
        return all(correct)
    return sum(correct) * 2 > len(correct)


def split_samples(rows: list[dict[str, Any]], pairs: dict[str, PreferencePair], rule: str, max_sft: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Route sampled pairs: ``(sft_records, grpo_records, stats)``.

    SFT records carry one distinct correct, strictly formatted sample each (up to ``max_sft`` per pair).
    """
    sft, grpo = [], []
    per_task: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    n = n_err = 0
    for row in rows:
        pair = pairs.get(row["id"])
        if pair is None:
            continue
        t = per_task[pair.task.value]
        if row.get("error"):
            n_err += 1
            continue
        correct = row["correct"]
        n += 1
        t["pairs"] += 1
        t["pass@1"] += sum(correct) / len(correct)
        t["pass@k"] += any(correct)
        t["format"] += sum(row["strict_ok"]) / len(correct)
        if judged_correctly(correct, rule):
            t["judged_correct"] += 1
            seen: set[str] = set()
            for text, ok, good in zip(row["texts"], row["strict_ok"], correct, strict=True):
                if ok and good and text not in seen and len(seen) < max_sft:
                    seen.add(text)
                    sft.append({"pair": pair.to_dict(), "completion": text.strip(), "source": "rejection_sampling"})
        else:
            grpo.append({"pair": pair.to_dict()})
    tasks = {
        task: {"pairs": int(v["pairs"]), "pass@1": v["pass@1"] / v["pairs"], "pass@k": v["pass@k"] / v["pairs"],
               "format": v["format"] / v["pairs"], "judged_correct": int(v["judged_correct"])}
        for task, v in per_task.items() if v["pairs"]
    }  # fmt: skip
    stats = {"pairs": n, "errors": n_err, "sft_records": len(sft), "grpo_pairs": len(grpo), "rule": rule, "per_task": tasks}
    # The set routed to GRPO inherits the model's slot bias (its errors are mostly the other label):
    # its label prior per task, before any balancing, with a warning outside 0.4-0.6.
    from unireward.data.balance import label_prior_check

    stats["grpo_label_prior"] = label_prior_check(PreferencePair.from_dict(r["pair"]) for r in grpo)
    for warning in stats["grpo_label_prior"]["warnings"]:
        log.warning("GRPO set %s; balance its candidate order (order_balance)", warning)
    if n:
        stats["pass@1"] = sum(v["pass@1"] * v["pairs"] for v in tasks.values()) / n
        stats["pass@k"] = sum(v["pass@k"] * v["pairs"] for v in tasks.values()) / n
    return sft, grpo, stats


def run_manifest(cfg: SampleConfig) -> Manifest:
    """What the samples depend on. ``judged_by`` and ``max_sft_per_pair`` only route finished samples
    (changing them re-routes without sampling again), so they stay out."""
    return Manifest("sample", {
        **model_settings(cfg.model), "family": cfg.family, "template_family": cfg.template_family,
        "budget": cfg.budget, "k": cfg.k, "temperature": cfg.temperature, "top_p": cfg.top_p,
        "max_new_tokens": cfg.max_new_tokens, "seed": cfg.seed, "chunk_size": cfg.chunk_size,
        "media_root": cfg.media_root, "pairs_fingerprint": file_fingerprint(cfg.pairs),
        "make_unique_ids": cfg.make_unique_ids,
    })  # fmt: skip


def sample(cfg: SampleConfig, judge: Any | None = None, engine: Any = None) -> dict[str, Any]:
    """Sample, then write ``rs_sft.jsonl``, ``grpo.jsonl`` and ``sample_report.json`` in ``out_dir``.

    Pairs are cut into fixed chunks of the whole list and chunk ``i`` samples with seed
    ``seed + i * chunk_size``, so a run resumed after a kill draws what an uninterrupted one would.
    Input lines that are not valid pairs are named (``bad_lines``), skipped and counted in
    ``failed``, with the pairs whose sampling failed.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples_path = out / "samples.jsonl"
    bad: list[SchemaError] = []
    pairs = read_pairs(cfg.pairs, duplicates="rename" if cfg.make_unique_ids else "refuse", bad=bad)
    pairs = [p for p in pairs if p.label != "tie"]
    if cfg.limit is not None:
        pairs = pairs[: cfg.limit]
    spec = JobSpec("sample", samples_path, run_manifest(cfg), manifest_at=out, key="id",
                   produced=(samples_path, out / "rs_sft.jsonl", out / "grpo.jsonl"), chunk_size=cfg.chunk_size,
                   fixed_chunks=True, overwrite=cfg.overwrite, progress="rejection sampling", unit="pair")  # fmt: skip

    def load() -> Callable[[Chunk], list[dict[str, Any]]]:  # a finished run needs neither the model nor its family
        from unireward.judge import Judge
        from unireward.judge.options import BatchOptions

        nonlocal judge
        if judge is None and cfg.base_url:  # served judges: the family (if given) only sizes the media
            budget = (cfg.budget if isinstance(cfg.budget, VisionBudget) else resolve_budget(cfg.budget, cfg.model, cfg.family)
                      if cfg.family else VisionBudget(**(cfg.budget or {})))  # fmt: skip
            judge = Judge.from_endpoint(
                cfg.base_url, cfg.model, api_key=os.environ.get(cfg.api_key_env), concurrency=cfg.concurrency,
                budget=budget, template_family=cfg.template_family, video_as="frames", max_new_tokens=cfg.max_new_tokens,
            )  # fmt: skip
        budget = judge.backend.budget if judge is not None else resolve_budget(cfg.budget, cfg.model, cfg.family)
        judge = judge or Judge.from_pretrained(
            cfg.model, family=cfg.family, budget=budget, batch=BatchOptions(max_batch_size=cfg.max_batch_size),
            template_family=cfg.template_family, video_as="frames", max_new_tokens=cfg.max_new_tokens,
        )  # fmt: skip
        return lambda chunk: _sample_chunk(cfg, judge, budget, chunk.values, cfg.seed + chunk.start)

    from unireward.runs.ray_engine import make_runner

    if engine is not None and (judge is not None or cfg.base_url):
        raise ValueError("--engine ray loads the model on each worker: give --model, not a loaded judge or --base-url")
    runner = make_runner(load, engine)  # engine: RayOptions for a Ray actor pool; None: this process
    stats: dict[str, Any] = {}

    def route(result: JobResult) -> None:
        sft, grpo, routed = split_samples(result.rows, {p.id: p for p in pairs}, cfg.judged_by, cfg.max_sft_per_pair)
        for name, recs in (("rs_sft.jsonl", sft), ("grpo.jsonl", grpo)):
            replace_rows(out / name, recs)
        stats.update(routed, total_pairs=len(pairs), bad_lines=result.bad_input, failed=result.failed,
                     config={k: v for k, v in asdict(cfg).items() if k != "budget"})  # fmt: skip
        if runner is not None and result.ran:
            stats["workers"] = runner.summary()  # pairs per node and per worker
        if judge is not None:
            from unireward.judge.endpoints import endpoint_summary

            if (per_endpoint := endpoint_summary(judge)) is not None:
                stats["endpoints"] = per_endpoint  # several base URLs: what each endpoint did
        replace_json(out / "sample_report.json", stats)

    Job(spec, [Item(p.id, p) for p in pairs], work=load, bad_input=bad).run(runner, finish=route)
    return stats


def _sample_chunk(cfg: SampleConfig, judge: Any, budget: Any, chunk: list[PreferencePair], seed: int) -> list[dict[str, Any]]:
    rows, ready, msgs = [], [], []
    for pair in chunk:
        try:
            media = load_pair_media(pair, cfg.media_root, budget)
        except MediaError as e:
            rows.append({"id": pair.id, "error": str(e)})
            continue
        ready.append(pair)
        msgs.append(pair_messages(pair, media, cfg.template_family, video_as="frames"))
    gens = judge.generate_detailed(msgs, num_samples=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p,
                                   max_new_tokens=cfg.max_new_tokens, seed=seed) if msgs else []  # fmt: skip
    for pair, gen in zip(ready, gens, strict=True):
        if isinstance(gen, Exception):
            rows.append({"id": pair.id, "error": f"{type(gen).__name__}: {gen}"})
            continue
        parsed = [parse_judgment(t, pair.task, strict=True) for t in gen.texts]
        rows.append({
            "id": pair.id, "texts": gen.texts, "winners": [j.winner for j in parsed],
            "strict_ok": [j.ok for j in parsed], "correct": [j.ok and j.winner == pair.label for j in parsed],
        })  # fmt: skip
    order = {p.id: i for i, p in enumerate(chunk)}
    return sorted(rows, key=lambda r: order[r["id"]])
