"""The :class:`Judge`: load a model (or point at an endpoint) once, then compare and score."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from unireward.data.schema import PreferencePair
from unireward.judge.backends import Backend, Generation, HTTPBackend, SamplingParams, TransformersBackend
from unireward.judge.base import BaseJudge
from unireward.judge.options import BatchOptions, JudgeOptions
from unireward.media import MediaError, VisionBudget
from unireward.protocol.parser import Judgment, parse_judgment, relabel_swapped
from unireward.protocol.tasks import Mode, Task
from unireward.protocol.templates import family_modes, get_family
from unireward.request import JudgeRequest, load_medium
from unireward.rewards.group import majority_share, swap_agreement, unswap

__all__ = ["Judge", "JudgeResult", "load_medium"]  # load_medium: its old home, now unireward.request


@dataclass
class JudgeResult(Judgment):
    """A :class:`Judgment` with how it was reached.

    The inherited fields (``text``, ``think``, ``answer``, ``dimensions``, ``overall``, …) are those
    of a representative sample that agrees with the combined verdict, always in the original
    candidate order: a representative judged with the candidates swapped is relabelled ("Image 1" and
    "Image 2" trade places, ``swapped_representative`` says so), and the verbatim texts of both
    orders stay in ``samples`` and ``swapped_samples``. ``votes`` are every sample's verdict in the
    original order (``None``: no verdict or a tie); ``preference`` is the share of valid votes for
    candidate 1 (pointwise: the mean score); ``agreement`` is 1.0/0.0 when both orders were judged
    and their verdicts agree/disagree. ``sample_scores`` are the pointwise samples' scores.
    """

    id: str | None = None
    votes: list[int | None] = field(default_factory=list)
    sample_scores: list[float | None] = field(default_factory=list)
    preference: float | None = None
    agreement: float | None = None
    samples: list[str] = field(default_factory=list)
    swapped_samples: list[str] = field(default_factory=list)
    swapped_representative: bool = False
    template_family: str | None = None  # the protocol that read this judgment (defaults resolved)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["task"] = self.task.value
        return d

    @classmethod
    def failed(
        cls, task: Task, message: str, mode: Mode = Mode.PAIRWISE, id: str | None = None
    ) -> JudgeResult:
        return cls(text="", task=task, mode=mode, status="invalid", reason=message, error=message, id=id)


class Judge(BaseJudge):
    """A pairwise / pointwise CoT judge over a backend (local transformers model or HTTP endpoint).

    Usage (needs the checkpoint)::

        judge = Judge.from_pretrained("CodeGoat24/UnifiedReward-Think-qwen-7b", swap=True)
        result = judge.compare("image_generation", "a red cube", "a.png", "b.png")
        result.winner, result.agreement, result.think
    """

    def __init__(
        self, backend: Backend, options: JudgeOptions | None = None, budget: VisionBudget | None = None
    ):
        self.backend = backend
        self.options = options or JudgeOptions()
        self.budget = budget or backend.budget
        self.name = backend.name

    # ------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(
        cls,
        model_id: str | os.PathLike[str],
        family: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        budget: VisionBudget | None = None,
        batch: BatchOptions | None = None,
        **opts: Any,
    ) -> Judge:
        """Load a local or hub checkpoint; ``opts`` are :class:`JudgeOptions` fields. A released
        checkpoint (``unireward zoo``) answers in its own protocol unless ``opts`` name one."""
        from unireward.models.zoo import protocol_options

        backend = TransformersBackend.load(
            str(model_id), family=family, device=device, dtype=dtype, budget=budget, batch=batch
        )
        if "template_family" not in opts and "pointwise_family" not in opts:
            opts = {**protocol_options(model_id), **opts}
        return cls(backend, JudgeOptions(**opts))

    @classmethod
    def from_endpoint(
        cls,
        base_url: str | Sequence[str],
        model: str,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 4,
        budget: VisionBudget | None = None,
        **opts: Any,
    ) -> Judge:
        """A judge served by an OpenAI-compatible endpoint (vLLM, ``unireward serve``, a hosted model).

        Several base URLs (a list, or comma-separated) make one pool: least-in-flight dispatch,
        failover and health checks (:mod:`unireward.judge.endpoints`); ``concurrency`` is per endpoint."""
        from unireward.judge.endpoints import make_client

        client = make_client(
            base_url, model, api_key=api_key, concurrency=concurrency, timeout=timeout, max_retries=max_retries
        )
        if "template_family" not in opts and "pointwise_family" not in opts:  # a released judge's protocol
            from unireward.models.zoo import protocol_options

            opts = {**protocol_options(model), **opts}
        return cls(HTTPBackend(client, budget=budget), JudgeOptions(**opts))

    # ------------------------------------------------------------ public API

    def compare(
        self, task: Task | str, prompt: str, a: Any, b: Any, reference: Any = None, template_family: str | None = None
    ) -> JudgeResult:
        """Judge one pair: ``a``/``b`` are media (generation tasks), edits of the source image
        ``reference`` (``image_editing``), or answers about ``reference`` (understanding tasks).
        ``template_family`` picks the protocol (``unifiedreward-2.0``, ``unifiedreward-edit``,
        ``unifiedreward-flex``, …) for this call; by default the judge's option."""
        _check_family(template_family, Mode.PAIRWISE)
        family = self._family(Mode.PAIRWISE, template_family)
        req = JudgeRequest.from_loose(task, prompt, (a, b), reference, template_family=family)
        return self._run_pairwise([req], None)[0]

    def compare_batch(
        self, pairs: Sequence[PreferencePair], media_root: str | os.PathLike[str] | None = None
    ) -> list[Judgment]:
        family = self._family(Mode.PAIRWISE)
        return list(self._run_pairwise([JudgeRequest.from_pair(p, family) for p in pairs], media_root))

    def compare_many(
        self, items: Sequence[dict[str, Any]], media_root: str | os.PathLike[str] | None = None
    ) -> list[JudgeResult]:
        """Like :meth:`compare_batch` for loose dicts ``{task, prompt, candidates, reference?, id?}``."""
        return self._run_pairwise([self._from_dict(d, Mode.PAIRWISE) for d in items], media_root)

    def score(
        self, task: Task | str, prompt: str, candidate: Any, reference: Any = None, template_family: str | None = None
    ) -> JudgeResult:
        """Pointwise: one medium (generation), one edit of the source image ``reference``
        (``image_editing``) or one answer about ``reference``. ``score`` is on the protocol's scale
        (1-10 for the default family), ``overall`` maps it onto [0, 1]."""
        _check_family(template_family, Mode.POINTWISE)
        family = self._family(Mode.POINTWISE, template_family)
        req = JudgeRequest.from_loose(task, prompt, (candidate,), reference, Mode.POINTWISE, template_family=family)
        return self._run_pointwise([req], None)[0]

    def score_many(
        self, items: Sequence[dict[str, Any]], media_root: str | os.PathLike[str] | None = None
    ) -> list[JudgeResult]:
        """Pointwise for dicts ``{task, prompt, candidate, reference?, id?}``."""
        return self._run_pointwise([self._from_dict(d, Mode.POINTWISE) for d in items], media_root)

    def generate(
        self,
        messages_list: list[list[dict[str, Any]]],
        num_samples: int = 1,
        temperature: float | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
        min_new_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[list[str]]:
        """Raw texts, ``num_samples`` per request. Unset arguments come from the judge's options;
        several samples with no temperature anywhere sample at 1.0. Raises on the first failed request
        (use :meth:`generate_detailed` to get per-request errors instead)."""
        out = []
        for i, g in enumerate(
            self.generate_detailed(
                messages_list, num_samples, temperature, top_p, max_new_tokens, min_new_tokens, seed
            )
        ):
            if isinstance(g, Exception):
                raise RuntimeError(f"request {i}: {g}") from g
            out.append(g.texts)
        return out

    def generate_detailed(
        self,
        messages_list: list[list[dict[str, Any]]],
        num_samples: int = 1,
        temperature: float | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
        min_new_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[Generation | Exception]:
        return self.backend.generate(
            messages_list, self._params(num_samples, temperature, top_p, max_new_tokens, min_new_tokens, seed)
        )

    # ------------------------------------------------------------ internals

    def _params(
        self,
        num_samples: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
        min_new_tokens: int | None = None,
        seed: int | None = None,
    ) -> SamplingParams:
        o = self.options
        k = o.num_samples if num_samples is None else num_samples
        t = o.temperature if temperature is None else temperature
        if k > 1 and t == 0:
            t = 1.0
        return SamplingParams(
            num_samples=k, temperature=t, top_p=o.top_p if top_p is None else top_p,
            max_new_tokens=o.max_new_tokens if max_new_tokens is None else max_new_tokens,
            min_new_tokens=min_new_tokens, seed=o.seed if seed is None else seed,
        )  # fmt: skip

    def _family(self, mode: Mode, name: str | None = None) -> str:
        """The protocol of a request: ``name`` when given, else the judge's for the mode; pointwise
        falls back to the pairwise family's own pointwise prompts (``unifiedreward-edit``,
        ``unifiedreward-2.0``) when it has them. Always a registered name (defaults resolved)."""
        if name is None:
            o = self.options
            if mode is Mode.PAIRWISE:
                name = o.template_family
            elif o.pointwise_family is None and o.template_family is not None and "pointwise" in family_modes(o.template_family):
                name = o.template_family
            else:
                name = o.pointwise_family
        return get_family(name, mode).name

    def _from_dict(self, d: dict[str, Any], mode: Mode) -> JudgeRequest:
        """A request from a loose dict ``{task, prompt, candidates | candidate, reference?, id?, template_family?}``."""
        family = d.get("template_family")
        _check_family(family, mode)
        cands = (d["candidate"],) if mode is Mode.POINTWISE else d["candidates"]
        id = None if d.get("id") is None else str(d["id"])
        return JudgeRequest.from_loose(d["task"], str(d["prompt"]), cands, d.get("reference"), mode, id,
                                       self._family(mode, family))  # fmt: skip

    def _run_pairwise(self, items: list[JudgeRequest], root: Any) -> list[JudgeResult]:
        swap = self.options.swap
        requests: list[list[dict[str, Any]]] = []
        slots: list[
            tuple[int, int] | None
        ] = []  # per item: index of its forward request and backward (or -1)
        results: list[JudgeResult | None] = [None] * len(items)
        for n, item in enumerate(items):
            try:
                loaded = item.load(self.budget, root)
                fwd = len(requests)
                requests.append(loaded.messages(video_as=self.options.video_as))
                bwd = -1
                if swap:  # the same media, candidates in the other order (an edit's source stays first)
                    bwd = len(requests)
                    requests.append(loaded.swapped().messages(video_as=self.options.video_as))
                slots.append((fwd, bwd))
            except (MediaError, ValueError, OSError) as e:
                results[n] = JudgeResult.failed(item.task, str(e), id=item.id)
                slots.append(None)
        gens = self.backend.generate(requests, self._params()) if requests else []
        for n, item in enumerate(items):
            slot = slots[n]
            if slot is None:
                continue
            fwd_gen, bwd_gen = gens[slot[0]], gens[slot[1]] if slot[1] >= 0 else None
            results[n] = self._combine_pairwise(item, fwd_gen, bwd_gen)
        return [r for r in results if r is not None]

    def _combine_pairwise(
        self, item: JudgeRequest, fwd: Generation | Exception, bwd: Generation | Exception | None
    ) -> JudgeResult:
        for g in (fwd, bwd):
            if isinstance(g, Exception):
                return JudgeResult.failed(item.task, f"{type(g).__name__}: {g}", id=item.id)
        family = item.template_family

        def parse(text: str) -> Judgment:
            return parse_judgment(text, item.task, strict=self.options.strict, family=family)

        fj = [parse(t) for t in fwd.texts]  # type: ignore[union-attr]
        bj = [parse(t) for t in bwd.texts] if bwd is not None else []  # type: ignore[union-attr]
        f_votes = [j.winner for j in fj]
        b_votes = [unswap(j.winner) for j in bj]
        winner, share = majority_share(f_votes + b_votes)
        agreement = (
            swap_agreement(majority_share(f_votes)[0], majority_share(b_votes)[0]) if bwd is not None else None
        )
        all_ties = share is None and any(j.tie for j in fj + bj)
        rep = next((j for j in fj if j.ok and j.winner == winner and (winner is not None or j.tie)), None)
        swapped_rep = False
        if rep is None:
            back = next((j for j in bj if j.ok and unswap(j.winner) == winner and (winner is not None or j.tie)), None)
            if back is not None:  # speak of the candidates in the original order
                rep, swapped_rep = parse(relabel_swapped(back.text)), True
        base = rep or fj[0]
        res = JudgeResult(**{f: getattr(base, f) for f in Judgment.__dataclass_fields__})
        res.winner = winner
        res.tie = winner is None and all_ties
        res.status = "ok" if winner is not None or res.tie else base.status if base.status != "ok" else "invalid"
        if winner is None and share is not None:
            res.reason = f"votes are split evenly ({f_votes + b_votes})"
        if res.tie:
            res.preference = 0.5
        res.id, res.votes, res.agreement = item.id, f_votes + b_votes, agreement
        if share is not None:
            res.preference = share
        res.samples, res.swapped_samples = list(fwd.texts), list(bwd.texts) if bwd is not None else []  # type: ignore[union-attr]
        res.swapped_representative, res.template_family = swapped_rep, get_family(family, Mode.PAIRWISE).name
        return res

    def _run_pointwise(self, items: list[JudgeRequest], root: Any) -> list[JudgeResult]:
        requests: list[list[dict[str, Any]]] = []
        slots: list[int] = []
        results: list[JudgeResult | None] = [None] * len(items)
        for n, item in enumerate(items):
            try:
                messages = item.load(self.budget, root).messages(video_as=self.options.video_as)
                slots.append(len(requests))
                requests.append(messages)
            except (MediaError, ValueError, OSError) as e:
                results[n] = JudgeResult.failed(item.task, str(e), Mode.POINTWISE, id=item.id)
                slots.append(-1)
        gens = self.backend.generate(requests, self._params()) if requests else []
        for n, item in enumerate(items):
            if slots[n] < 0:
                continue
            g = gens[slots[n]]
            if isinstance(g, Exception):
                results[n] = JudgeResult.failed(
                    item.task, f"{type(g).__name__}: {g}", Mode.POINTWISE, id=item.id
                )
                continue
            family = item.template_family
            js = [
                parse_judgment(t, item.task, strict=self.options.strict, mode=Mode.POINTWISE, family=family)
                for t in g.texts
            ]
            valid = [j for j in js if j.ok and j.score is not None]
            base = next((j for j in js if j.ok), js[0])
            res = JudgeResult(**{f: getattr(base, f) for f in Judgment.__dataclass_fields__})
            res.id, res.samples, res.template_family = item.id, list(g.texts), get_family(family, Mode.POINTWISE).name
            res.sample_scores = [j.score for j in js]
            if valid:  # the mean over samples, on the protocol's scale and on [0, 1]
                res.score = res.preference = sum(j.score for j in valid) / len(valid)  # type: ignore[misc]
                res.overall = {1: sum(j.overall[1] for j in valid) / len(valid)}  # type: ignore[index]
                res.status = "ok"
            results[n] = res
        return [r for r in results if r is not None]


def _check_family(name: str | None, mode: Mode) -> None:
    """Fail early, naming the choices, on a template family that is not registered."""
    if name is not None:
        try:
            get_family(name, mode)
        except KeyError as e:
            raise ValueError(e.args[0]) from None
