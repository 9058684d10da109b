"""The wire schema of ``/v1/judge``, ``/v1/score`` and ``/v1/rewards``: request and response models.

The server validates every body with these models before it reads anything else, and
:class:`unireward.rewards.RemoteGroupReward` builds its requests and reads the answers with them, so
client and server share one schema. Keys the models do not name (sampling settings such as
``max_tokens``, ``temperature``, ``n``, ``seed``) are kept and read by :mod:`unireward.serve.sampling`,
which knows OpenAI's and vLLM's spellings.

One name means "judge each pair in both orders" on every route: ``both_orders``; the older spelling
``swap`` is accepted as an alias (a body giving both with different values is refused).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from unireward.serve.errors import ApiError

#: the spellings of "judge both orders", canonical first
BOTH_ORDERS = ("both_orders", "swap")


class _Wire(BaseModel):
    """Unknown keys are kept (sampling settings travel beside the named fields)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _JudgeBase(_Wire):
    model: str | None = None
    task: str
    prompt: str
    reference: Any = None
    both_orders: StrictBool | None = Field(default=None, validation_alias=AliasChoices(*BOTH_ORDERS))
    template_family: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_both_orders(cls, data: Any) -> Any:
        if isinstance(data, dict) and all(k in data for k in BOTH_ORDERS) and data["swap"] != data["both_orders"]:
            raise ValueError("both_orders and its old spelling swap disagree; send one of them")
        return data

    def body(self) -> dict[str, Any]:
        """The JSON body a client sends (unset fields left out)."""
        return self.model_dump(exclude_none=True)


class JudgeRequest(_JudgeBase):
    """``POST /v1/judge``: one pair (two media, or two answers about ``reference``)."""

    candidates: list[Any] = Field(min_length=2, max_length=2)


class ScoreRequest(_JudgeBase):
    """``POST /v1/score``: one candidate on its own (``both_orders`` has no meaning here)."""

    candidate: Any


class RewardsRequest(_JudgeBase):
    """``POST /v1/rewards``: a group of candidates of one prompt; one reward per candidate."""

    candidates: list[Any] = Field(min_length=1)
    method: Literal["pairwise", "pointwise"] = "pairwise"


class PairJudgment(_Wire):
    """One judged pair of a group: candidates ``i`` and ``j`` shown in that order (``i`` as Image 1)."""

    i: int
    j: int
    winner: int | None  # the index of the preferred candidate, None for a tie or no verdict
    preference: float | None = None  # the share of votes for ``i``
    status: str
    text: str


class PointJudgment(_Wire):
    index: int
    score: float | None
    status: str
    text: str


class RewardsResponse(_Wire):
    method: Literal["pairwise", "pointwise"]
    rewards: list[float]
    judgments: list[PairJudgment] | list[PointJudgment]
    warnings: list[str] = []


class JudgeResponse(_Wire):
    """A judgment (``/v1/judge``, ``/v1/score``): the named fields, and every other field of
    :meth:`unireward.judge.judge.JudgeResult.to_dict` kept as it is."""

    task: str
    mode: str
    status: str
    text: str
    winner: int | None = None
    score: float | None = None
    warnings: list[str] = []


def _message(err: ValidationError) -> tuple[str, str | None]:
    """The first problem of a body, named by its field.

    >>> try:
    ...     RewardsRequest.model_validate({"task": "t", "prompt": "p", "candidates": [], "swap": "yes"})
    ... except ValidationError as e:
    ...     _message(e)
    ('both_orders: must be true or false', 'both_orders')
    """
    first = err.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    field = loc[0] if loc else None
    if field in BOTH_ORDERS:
        field = "both_orders"
    msg = first.get("msg", "invalid")
    if first.get("type") == "bool_type":
        msg = "must be true or false"
    elif first.get("type") == "missing":
        msg = "is required"
    msg = msg.removeprefix("Value error, ")
    where = ".".join([field or "", *loc[1:]]) if field else ""
    return (f"{where}: {msg}" if where else msg), field


def parse_request(model: type[_JudgeBase], data: dict[str, Any]) -> tuple[_JudgeBase, dict[str, Any]]:
    """Validate ``data`` against ``model``; returns the model and the body with ``both_orders`` under
    its one name (the old ``swap`` spelling removed). A bad body is a 400 naming the field.

    >>> req, body = parse_request(JudgeRequest, {"task": "image_generation", "prompt": "p", "candidates": ["a", "b"],
    ...                                          "swap": True, "max_tokens": 8})
    >>> req.both_orders, "swap" in body, body["max_tokens"]
    (True, False, 8)
    """
    try:
        req = model.model_validate(data)
    except ValidationError as e:
        message, field = _message(e)
        raise ApiError(400, message, "bad_parameter", field) from None
    body = {k: v for k, v in data.items() if k not in BOTH_ORDERS}
    if req.both_orders is not None:
        body["both_orders"] = req.both_orders
    return req, body
