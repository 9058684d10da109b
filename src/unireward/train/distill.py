"""Stage 1a: distil chain-of-thought judgments from a teacher behind an OpenAI-compatible endpoint.

Every answer (or final failure) is appended to ``teacher_cache.jsonl`` the moment it arrives, so a
killed run resumes without asking again for anything already answered. Only answers in the
strict format whose verdict equals the human label become cold-start SFT records.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from unireward.data.schema import PreferencePair, read_pairs
from unireward.judge.openai_http import ChatClient, ChatError, encode_messages
from unireward.judge.request import load_pair_media, pair_messages
from unireward.media import MediaError, VisionBudget
from unireward.protocol.parser import parse_judgment
from unireward.rows import append_rows, read_rows, replace_json, replace_rows

log = logging.getLogger(__name__)


@dataclass
class DistillConfig:
    pairs: str
    out_dir: str
    base_url: str
    model: str = "gpt-4o"
    api_key_env: str = "OPENAI_API_KEY"
    media_root: str | None = None
    template_family: str | None = None
    tasks: tuple[str, ...] = ("image_generation",)
    limit: int | None = None
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 4
    backoff: float = 0.5
    max_tokens: int = 2048
    temperature: float = 0.0
    budget: VisionBudget = field(default_factory=VisionBudget)

    def __post_init__(self) -> None:
        if not self.base_url:
            raise ValueError("base_url is required (an OpenAI-compatible endpoint)")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise ValueError("concurrency >= 1, max_retries >= 0 and timeout > 0 are required")
        if isinstance(self.budget, dict):
            self.budget = VisionBudget(**self.budget)


@dataclass
class DistillReport:
    asked: int = 0
    cached: int = 0
    kept: int = 0
    wrong_verdict: int = 0
    bad_format: int = 0
    failed: int = 0
    media_errors: int = 0
    ties_skipped: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    per_task_kept: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cache_done(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    # A later "ok" row wins over an earlier failure; failures are asked again on resume.
    done: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("status") == "ok" or row["id"] not in done:
            done[row["id"]] = row
    return {k: v for k, v in done.items() if v.get("status") == "ok"}


async def _ask_all(client: ChatClient, jobs: list[tuple[PreferencePair, list[dict[str, Any]]]], cache: Path, cfg: DistillConfig) -> None:
    bar = tqdm(total=len(jobs), desc="distill", unit="pair")

    async def one(pair: PreferencePair, messages: list[dict[str, Any]]) -> None:
        try:
            resp = await client.achat(messages, request_name=pair.id, max_tokens=cfg.max_tokens, temperature=cfg.temperature)
            row = {"id": pair.id, "status": "ok", "text": resp.text, "usage": resp.usage, "finish_reason": resp.finish_reason}
        except ChatError as e:
            row = {"id": pair.id, "status": "failed", "error": str(e)}
        append_rows(cache, [row])  # single-threaded event loop: appends never interleave
        bar.update(1)

    await asyncio.gather(*(one(p, m) for p, m in jobs))
    bar.close()


def distill(cfg: DistillConfig) -> DistillReport:
    """Ask the teacher about every labelled pair not yet answered; write ``cold_start.jsonl``."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "teacher_cache.jsonl"
    report = DistillReport()
    pairs = [p for p in read_pairs(cfg.pairs) if p.task.value in cfg.tasks]
    if cfg.limit is not None:
        pairs = pairs[: cfg.limit]
    done = _cache_done(read_rows(cache, required=("id",)))
    report.cached = sum(1 for p in pairs if p.id in done)

    jobs = []
    media_failures: list[dict[str, Any]] = []
    for pair in pairs:
        if pair.label == "tie":
            report.ties_skipped += 1
            continue
        if pair.id in done:
            continue
        try:
            media = load_pair_media(pair, cfg.media_root, cfg.budget)
        except MediaError as e:
            report.media_errors += 1
            media_failures.append({"id": pair.id, "error": str(e)})
            continue
        jobs.append((pair, encode_messages(pair_messages(pair, media, cfg.template_family, video_as="frames"))))
    if media_failures:
        append_rows(out / "media_errors.jsonl", media_failures)
    report.asked = len(jobs)
    if jobs:
        client = ChatClient(
            cfg.base_url, cfg.model, api_key=os.environ.get(cfg.api_key_env), concurrency=cfg.concurrency,
            timeout=cfg.timeout, max_retries=cfg.max_retries, backoff=cfg.backoff,
        )  # fmt: skip
        asyncio.run(_ask_all(client, jobs, cache, cfg))

    rows = read_rows(cache, required=("id",))
    done = _cache_done(rows)
    failed_ids = {r["id"] for r in rows if r.get("status") == "failed"} - set(done)
    kept: list[dict[str, Any]] = []
    per_task: Counter[str] = Counter()
    for pair in pairs:
        if pair.label == "tie":
            continue
        if pair.id in failed_ids:
            report.failed += 1
            continue
        row = done.get(pair.id)
        if row is None:
            continue
        usage = row.get("usage") or {}
        report.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        report.completion_tokens += int(usage.get("completion_tokens") or 0)
        j = parse_judgment(row["text"], pair.task, strict=True)
        if not j.ok:
            report.bad_format += 1
        elif j.winner != pair.label:
            report.wrong_verdict += 1
        else:
            kept.append({"pair": pair.to_dict(), "completion": row["text"].strip(), "source": f"teacher:{cfg.model}"})
            per_task[pair.task.value] += 1
    report.kept = len(kept)
    report.per_task_kept = dict(per_task)
    replace_rows(out / "cold_start.jsonl", kept)
    replace_json(out / "distill_report.json", report.to_dict())
    return report
