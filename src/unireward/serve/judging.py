"""``/v1/judge`` (one pair), ``/v1/score`` (pointwise) and ``/v1/rewards`` (a group's rewards)."""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.

from typing import Any

from fastapi import Request

from unireward.judge.generator import Group, group_rewards
from unireward.protocol.tasks import Mode
from unireward.request import JudgeRequest as TaskRequest  # not the wire schema's JudgeRequest below
from unireward.request import RequestError, count_media, group_share, validate_group
from unireward.rewards.group import pointwise_rewards  # re-exported: its old home
from unireward.serve.decode import MediaDecoder
from unireward.serve.errors import ApiError
from unireward.serve.sampling import parse_sampling
from unireward.serve.scheduler import Scope
from unireward.serve.state import ServerState

media_count = count_media  # its old name here


def public(d: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    if not d.get("swapped_samples"):
        d.pop("swapped_samples", None)
    if warnings:
        d["warnings"] = warnings
    return d


class _Inputs:
    """A request's task, prompt, candidates and reference, validated; media decoded in the pool."""

    def __init__(self, state: ServerState, data: dict[str, Any], n: int | None):
        self.method = data.get("method", "pairwise")
        if self.method not in ("pairwise", "pointwise"):
            raise ApiError(400, f"method must be 'pairwise' or 'pointwise', got {self.method!r}", "bad_parameter", "method")
        self.both_orders = data.get("both_orders", False)
        if not isinstance(self.both_orders, bool):
            raise ApiError(400, "both_orders must be true or false", "bad_parameter", "both_orders")
        key = "candidate" if n == 1 else "candidates"
        cands = [data.get("candidate")] if n == 1 else data.get("candidates")
        if not isinstance(cands, list) or (n is not None and len(cands) != n) or not cands:
            want = "a list of two items" if n == 2 else "a non-empty list"
            raise ApiError(400, f"{key!r} must be {want}", "bad_parameter", key)
        reference = data.get("reference")
        try:  # the rules every judgment request follows; the protocol is checked by the scoped judge
            if n is None:  # a group, judged in pairs or one by one
                self.task = validate_group(data.get("task", ""), data.get("prompt"), cands, reference)
            else:
                mode = Mode.POINTWISE if n == 1 else Mode.PAIRWISE
                self.task = TaskRequest.from_loose(data.get("task", ""), data.get("prompt"), cands, reference,
                                                    mode).validate().task  # fmt: skip
        except RequestError as e:
            field = key if (e.field or "").startswith("candidates") else e.field
            raise ApiError(400, e.message, "bad_task" if field == "task" else "bad_parameter", field) from None
        self.prompt: str = data["prompt"]
        media = (cands if self.task.is_generation else []) + ([reference] if self.task.uses_reference else [])
        n_images, n_videos = count_media(self.task, media)
        lim = state.limits
        if n_images > lim.max_images:
            raise ApiError(413, f"too many images: {n_images}, above the limit of {lim.max_images} (video frames "
                                "count as images; --max-images)", "too_many_images")  # fmt: skip
        self.cands, self.media = cands, media
        self.state = state
        self.data: dict[str, Any] = data
        self.scope = Scope()
        self.warnings: list[str] = []
        # media share the vision budget as the judge shares it: per pair for a group of candidates
        share_images, share_videos = group_share(self.task, cands, reference)
        self.decoder = MediaDecoder(lim, state.judge.budget, state.media_root, state.temporal_patch,
                                    n_images=share_images, n_videos=share_videos, cache=state.media_cache)  # fmt: skip
        # only answers are text: a generation task's candidates are media (paths or data URLs), which
        # the processor turns into vision tokens, never prompt text
        self.text = self.prompt + ("" if self.task.is_generation else "".join(cands))

    def decode(self) -> tuple[list[Any], Any]:
        """(candidates, reference) with media decoded; tokens of the text are checked first."""
        self.state.check_prompt_tokens(self.state.text_tokens(self.text))
        dec, task = self.decoder, self.task
        one = dec.video if task.is_video else dec.image
        ref = one(self.media[-1], "reference") if task.uses_reference else None
        if task.is_generation:
            return [one(c, f"candidates[{i}]") for i, c in enumerate(self.cands)], ref
        return list(self.cands), ref


def register(app: Any, state: ServerState, read_json: Any) -> None:
    async def prepared(request: Request, n: int | None) -> tuple[_Inputs, Any, list[Any], Any]:
        """Validate everything, then decode the media; returns the inputs, a scoped judge, media."""
        data = await read_json(request)
        state.check_model(data)
        inputs = _Inputs(state, data, n)
        scope = Scope()
        sampling = parse_sampling(data, state.limits, chat=False)
        judge = state.scoped_judge(data, sampling, scope)
        inputs.data, inputs.scope, inputs.warnings = data, scope, sampling.warnings
        cands, reference = await state.decode(inputs.decode)
        return inputs, judge, cands, reference

    @app.post("/v1/judge")
    async def judge_pair(request: Request) -> dict[str, Any]:
        with state.admit():
            inp, judge, cands, ref = await prepared(request, 2)
            res = await state.run_judge(request, inp.scope, lambda: judge.compare(inp.task, inp.prompt, *cands, ref))
        return public(res.to_dict(), inp.warnings)

    @app.post("/v1/score")
    async def score(request: Request) -> dict[str, Any]:
        with state.admit():
            inp, judge, cands, ref = await prepared(request, 1)
            res = await state.run_judge(request, inp.scope, lambda: judge.score(inp.task, inp.prompt, cands[0], ref))
        return public(res.to_dict(), inp.warnings)

    @app.post("/v1/rewards")
    async def rewards(request: Request) -> dict[str, Any]:
        """Rewards for a group of N candidates of one prompt (a GRPO group)."""
        with state.admit():
            inp, judge, cands, ref = await prepared(request, None)
            scope, method, both = inp.scope, inp.method, inp.both_orders
            task, prompt = inp.task, inp.prompt
            if method == "pointwise":
                items = [{"task": task, "prompt": prompt, "candidate": c, "reference": ref} for c in cands]
                results = await state.run_judge(request, scope, lambda: judge.score_many(items))
                return public({
                    "method": method,
                    "rewards": pointwise_rewards([r.score if r.status == "ok" else None for r in results]),
                    "judgments": [{"index": i, "score": r.score, "status": r.status, "text": r.text}
                                  for i, r in enumerate(results)],
                }, inp.warnings)  # fmt: skip
            group = Group(task.value, prompt, cands, ref)
            (out,) = await state.run_judge(request, scope, lambda: group_rewards(judge, [group], both_orders=both))
        judgments = [
            {"i": i, "j": j, "winner": None if r.winner is None else (i, j)[r.winner - 1], "preference": r.preference,
             "status": r.status, "text": r.text}
            for (i, j), r in sorted(out.judgments.items())
        ]  # fmt: skip
        return public({"method": method, "rewards": out.rewards, "judgments": judgments}, inp.warnings)
