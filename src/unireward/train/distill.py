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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unireward.data.schema import PreferencePair, SchemaError, read_pairs
from unireward.judge.openai_http import ChatClient, ChatError, encode_messages
from unireward.media import MediaError, VisionBudget
from unireward.protocol.parser import Judgment, parse_judgment
from unireward.request import load_pair_media, pair_messages
from unireward.runs.job import Chunk, Emit, Item, Job, JobResult, JobSpec
from unireward.runs.manifest import Manifest, file_fingerprint
from unireward.runs.rows import has_rows, replace_json, replace_rows

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
    tasks: tuple[str, ...] = ("image_generation",)  # task names, or ("all",)
    limit: int | None = None
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 4
    backoff: float = 0.5
    max_tokens: int = 2048
    temperature: float = 0.0
    budget: VisionBudget = field(default_factory=VisionBudget)
    #: drop answers whose <think> is empty or whose "Total score" lines contradict the verdict
    filter_reasoning: bool = True
    #: a repeated pair id is refused (its answer would be attached to the other pair); True renames it
    make_unique_ids: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not self.base_url:
            raise ValueError("base_url is required (an OpenAI-compatible endpoint)")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise ValueError("concurrency >= 1, max_retries >= 0 and timeout > 0 are required")
        if isinstance(self.budget, dict):
            self.budget = VisionBudget(**self.budget)
        self.tasks = parse_tasks(self.tasks)


def parse_tasks(tasks: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Task names from a comma list or sequence; ``all`` means every task; unknown names are refused.

    >>> parse_tasks("image_generation, video_generation")
    ('image_generation', 'video_generation')
    >>> len(parse_tasks("all"))
    4
    >>> parse_tasks("image_gen")
    Traceback (most recent call last):
    ...
    ValueError: unknown task(s) ['image_gen']; choose from all, image_generation, video_generation, image_understanding, video_understanding
    """
    from unireward.protocol.tasks import THINK_TASKS

    # the tasks the Think prompts cover (image_editing has no CoT prompt to distil with)
    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
    valid = [t.value for t in THINK_TASKS]
    if not names:
        raise ValueError(f"no task given; choose from all, {', '.join(valid)}")
    if "all" in names:
        return tuple(valid)
    unknown = [t for t in names if t not in valid]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from all, {', '.join(valid)}")
    return tuple(dict.fromkeys(names))


@dataclass
class DistillReport:
    pairs: int = 0
    asked: int = 0
    cached: int = 0
    kept: int = 0
    wrong_verdict: int = 0
    bad_format: int = 0
    empty_reasoning: int = 0
    inconsistent_totals: int = 0
    failed: int = 0
    media_errors: int = 0
    ties_skipped: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    per_task_kept: dict[str, int] = field(default_factory=dict)
    #: per-endpoint counts when several teacher endpoints were given
    endpoints: list[dict[str, Any]] | None = None
    #: input lines that are not valid pairs (``row FILE:LINE: reason``), skipped
    bad_lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reasoning_problem(j: Judgment) -> str | None:
    """Why a well-formed, correct answer is still unfit to train on, or ``None``.

    >>> from unireward.protocol import parse_judgment
    >>> reasoning_problem(parse_judgment("<think> </think><answer>Image 1 is better</answer>", "image_generation"))
    'empty_reasoning'
    >>> t = "<think>Total score:\\nImage 1: 5=5\\nImage 2: 9=9</think><answer>Image 1 is better</answer>"
    >>> reasoning_problem(parse_judgment(t, "image_generation"))
    'inconsistent_totals'
    """
    if not (j.think or "").strip():
        return "empty_reasoning"
    if j.totals_consistent is False:
        return "inconsistent_totals"
    return None


def _cache_done(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    # A later "ok" row wins over an earlier failure; failures are asked again on resume.
    done: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("status") == "ok" or row["id"] not in done:
            done[row["id"]] = row
    return {k: v for k, v in done.items() if v.get("status") == "ok"}


class TeacherRefused(RuntimeError):
    """The endpoint refused the credentials (HTTP 401/403): no point in asking the other pairs."""


async def _ask_all(client: ChatClient, jobs: Iterator[tuple[PreferencePair, list[dict[str, Any]]]], emit: Emit,
                   cfg: DistillConfig) -> None:  # fmt: skip
    """Ask for every job; ``jobs`` builds each request (media loaded and encoded) only when it is about
    to be sent, and at most twice ``concurrency`` requests are built and unanswered at once, so memory
    follows the concurrency, not the number of pairs. Each answer is emitted the moment it arrives."""

    async def one(pair: PreferencePair, messages: list[dict[str, Any]]) -> None:
        try:
            resp = await client.achat(messages, request_name=pair.id, max_tokens=cfg.max_tokens, temperature=cfg.temperature)
            row = {"id": pair.id, "status": "ok", "text": resp.text, "usage": resp.usage, "finish_reason": resp.finish_reason}
        except ChatError as e:
            if e.status in (401, 403):
                raise TeacherRefused(f"{cfg.base_url} refused the request (HTTP {e.status}): check ${cfg.api_key_env} and --model") from e
            row = {"id": pair.id, "status": "failed", "error": str(e)}
        emit([row])  # single-threaded event loop: appends never interleave

    in_flight: set[asyncio.Future[None]] = set()
    try:
        first = next(jobs, None)
        if first is not None:  # the first request alone: a refused key stops the run before the other requests
            await one(*first)
        for pair, messages in jobs:
            in_flight.add(asyncio.ensure_future(one(pair, messages)))
            if len(in_flight) >= 2 * cfg.concurrency:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for d in done:
                    d.result()  # a refused key stops here
        if in_flight:
            await asyncio.gather(*in_flight)
    finally:
        for f in in_flight:
            f.cancel()


def _is_local(url: str) -> bool:
    """Whether an endpoint is on this machine (a local server usually needs no key).

    >>> _is_local("http://127.0.0.1:8000/v1"), _is_local("https://api.openai.com/v1")
    (True, False)
    """
    from urllib.parse import urlparse

    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def run_manifest(cfg: DistillConfig) -> Manifest:
    """What the teacher's answers depend on; ``tasks`` and ``limit`` only choose pairs and stay out."""
    return Manifest("distill", {
        "teacher_model": cfg.model, "template_family": cfg.template_family, "budget": cfg.budget,
        "max_tokens": cfg.max_tokens, "temperature": cfg.temperature, "media_root": cfg.media_root,
        "pairs_fingerprint": file_fingerprint(cfg.pairs), "filter_reasoning": cfg.filter_reasoning,
        "make_unique_ids": cfg.make_unique_ids,
    })  # fmt: skip


class TeacherRunner:
    """The chunk runner of ``distill``: one pair per chunk, up to ``concurrency`` requests in flight
    (an async client instead of a loop over chunks). A pair whose media cannot be loaded is not
    asked; it is listed in ``media_failures`` and left without a row (so the next run tries again)."""

    def __init__(self, cfg: DistillConfig, api_key: str | None, report: DistillReport):
        self.cfg, self.api_key, self.report = cfg, api_key, report
        self.media_failures: list[dict[str, Any]] = []

    def _jobs(self, chunks: Iterator[Chunk]) -> Iterator[tuple[PreferencePair, list[dict[str, Any]]]]:
        cfg = self.cfg
        for chunk in chunks:
            for pair in chunk.values:
                try:
                    media = load_pair_media(pair, cfg.media_root, cfg.budget)
                except MediaError as e:
                    self.report.media_errors += 1
                    self.media_failures.append({"id": pair.id, "error": str(e)})
                    continue
                self.report.asked += 1
                yield pair, encode_messages(pair_messages(pair, media, cfg.template_family, video_as="frames"))

    def __call__(self, chunks: Iterator[Chunk], emit: Emit) -> None:
        from unireward.judge.endpoints import endpoint_summary, make_client

        cfg = self.cfg
        # several comma-separated URLs: one pool (least in flight, failover, health checks)
        client = make_client(
            cfg.base_url, cfg.model, api_key=self.api_key, concurrency=cfg.concurrency,
            timeout=cfg.timeout, max_retries=cfg.max_retries, backoff=cfg.backoff,
        )  # fmt: skip
        asyncio.run(_ask_all(client, self._jobs(chunks), emit, cfg))  # type: ignore[arg-type]
        self.report.endpoints = endpoint_summary(client)


def distill(cfg: DistillConfig) -> DistillReport:
    """Ask the teacher about every labelled pair not yet answered; write ``cold_start.jsonl``.

    Input lines that are not valid pairs are named (``bad_lines`` in the report) and skipped.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache, cold = out / "teacher_cache.jsonl", out / "cold_start.jsonl"
    api_key = os.environ.get(cfg.api_key_env)
    if not api_key and not all(_is_local(u) for u in cfg.base_url.split(",") if u.strip()):
        raise ValueError(f"{cfg.base_url} needs an API key: set ${cfg.api_key_env} (or name another variable with --api-key-env)")
    report = DistillReport()
    bad: list[SchemaError] = []
    all_pairs = read_pairs(cfg.pairs, duplicates="rename" if cfg.make_unique_ids else "refuse", bad=bad)
    report.bad_lines = [str(b) for b in bad]
    pairs = [p for p in all_pairs if p.task.value in cfg.tasks]
    if cfg.limit is not None:
        pairs = pairs[: cfg.limit]
    if not pairs:
        found = sorted({p.task.value for p in all_pairs})
        raise ValueError(f"{cfg.pairs}: no pair of task(s) {', '.join(cfg.tasks)} (the file holds {', '.join(found) or 'none'})")
    report.pairs = len(pairs)
    report.ties_skipped = sum(1 for p in pairs if p.label == "tie")
    # a later "ok" row wins over an earlier failure; failures are asked again on resume
    spec = JobSpec("distill", cache, run_manifest(cfg), manifest_at=out, produced=(cache, cold), key="id",
                   required=("status",), chunk_size=1, overwrite=cfg.overwrite, progress="distill", unit="pair",
                   failed=lambda row: row.get("status") != "ok")  # fmt: skip
    runner = TeacherRunner(cfg, api_key, report)

    def select(result: JobResult) -> None:
        report.cached = result.skipped
        replace_rows(out / "media_errors.jsonl", runner.media_failures)  # this run's failures, as before
        kept = _select(cfg, pairs, result.rows, report)
        if not kept and has_rows(cold):
            raise ValueError(f"no judgment was kept ({report.to_dict()}); {cold} keeps its earlier records")
        replace_rows(cold, kept)
        replace_json(out / "distill_report.json", report.to_dict())

    Job(spec, [Item(p.id, p) for p in pairs if p.label != "tie"], bad_input=report.bad_lines).run(runner, finish=select)
    return report


def _select(cfg: DistillConfig, pairs: list[PreferencePair], rows: list[dict[str, Any]], report: DistillReport) -> list[dict[str, Any]]:
    """The cold-start records: strict format, verdict == label, and (by default) sound reasoning."""
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
        j = parse_judgment(row.get("text") or "", pair.task, strict=True)
        problem = reasoning_problem(j) if cfg.filter_reasoning and j.ok and j.winner == pair.label else None
        if not j.ok:
            report.bad_format += 1
        elif j.winner != pair.label:
            report.wrong_verdict += 1
        elif problem is not None:
            setattr(report, problem, getattr(report, problem) + 1)
        else:
            kept.append({"pair": pair.to_dict(), "completion": row["text"].strip(), "source": f"teacher:{cfg.model}"})
            per_task[pair.task.value] += 1
    report.kept = len(kept)
    report.per_task_kept = dict(per_task)
    return kept
