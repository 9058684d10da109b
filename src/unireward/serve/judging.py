"""``/v1/judge`` (one pair), ``/v1/score`` (pointwise) and ``/v1/rewards`` (a group's rewards).

Bodies follow :mod:`unireward.serve.protocol`; ``both_orders`` (old spelling ``swap``) judges each
pair in both orders on every route."""

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
from unireward.serve.protocol import JudgeRequest, RewardsRequest, ScoreRequest, parse_request
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


def group_judgments(n: int, method: str, both_orders: bool) -> int:
    """Judgments a group of ``n`` candidates needs: its pairs (each order counts once) or, pointwise,
    its candidates.

    >>> group_judgments(8, "pairwise", False), group_judgments(8, "pairwise", True), group_judgments(8, "pointwise", True)
    (28, 56, 8)
    """
    if method == "pointwise":
        return n
    return n * (n - 1) // 2 * (2 if both_orders else 1)


_REQUESTS = {2: JudgeRequest, 1: ScoreRequest, None: RewardsRequest}


def register(app: Any, state: ServerState, read_json: Any) -> None:
    async def prepared(request: Request, n: int | None) -> tuple[_Inputs, Any]:
        """Validate everything (the wire schema, then the task's own rules); returns the inputs and a
        judge scoped to this request. Media are decoded afterwards, inside the request's admission."""
        data = await read_json(request)
        state.check_model(data)
        req, data = parse_request(_REQUESTS[n], data)
        if n == 2 and req.both_orders is not None:  # one pair: the judge's own vote over both orders
            data["swap"] = req.both_orders
        inputs = _Inputs(state, data, n)
        scope = Scope()
        sampling = parse_sampling(data, state.limits, chat=False)
        judge = state.scoped_judge(data, sampling, scope)
        inputs.data, inputs.scope, inputs.warnings = data, scope, sampling.warnings
        return inputs, judge

    @app.post("/v1/judge")
    async def judge_pair(request: Request) -> dict[str, Any]:
        with state.admit():
            inp, judge = await prepared(request, 2)
            with state.admit(1 if judge.options.swap else 0, new_request=False):  # the second order
                cands, ref = await state.decode(inp.decode)
                res = await state.run_judge(request, inp.scope, lambda: judge.compare(inp.task, inp.prompt, *cands, ref))
        return public(res.to_dict(), inp.warnings)

    @app.post("/v1/score")
    async def score(request: Request) -> dict[str, Any]:
        with state.admit():
            inp, judge = await prepared(request, 1)
            cands, ref = await state.decode(inp.decode)
            res = await state.run_judge(request, inp.scope, lambda: judge.score(inp.task, inp.prompt, cands[0], ref))
        return public(res.to_dict(), inp.warnings)

    @app.post("/v1/rewards")
    async def rewards(request: Request) -> dict[str, Any]:
        """Rewards for a group of N candidates of one prompt (a GRPO group). The group's judgments are
        bounded (``--max-group-pairs``) and each holds a place of ``--max-queue`` until it is done, so
        one group cannot take the server; a client that leaves withdraws all of them."""
        with state.admit():
            inp, judge = await prepared(request, None)
            scope, method, both = inp.scope, inp.method, inp.both_orders
            task, prompt = inp.task, inp.prompt
            n = group_judgments(len(inp.cands), method, both)
            limit = state.limits.max_group_pairs
            if n > limit:
                what = f"{n} pairs" + (" (both orders)" if both else "") if method == "pairwise" else f"{n} judgments"
                raise ApiError(413, f"a group of {len(inp.cands)} candidates needs {what}, above the limit of {limit} "
                                    "(--max-group-pairs)", "group_too_large", "candidates")  # fmt: skip
            gens = n * (2 if judge.options.swap and method == "pairwise" else 1)
            if gens > state.capacity:  # could never be admitted: not worth a retry
                raise ApiError(413, f"a group of {len(inp.cands)} candidates needs {gens} generations at once, more "
                                    f"than the server admits ({state.capacity}: --max-queue {state.limits.max_queue} "
                                    f"+ --batch-size {state.scheduler.max_batch})", "group_too_large", "candidates")  # fmt: skip
            with state.admit(gens - 1, new_request=False):  # its own place is the first
                cands, ref = await state.decode(inp.decode)
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
