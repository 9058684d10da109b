"""Sampling settings of a request, read the way vLLM's OpenAI server reads them.

- ``max_tokens`` (or ``max_completion_tokens``) above the server's cap is clamped, as vLLM clamps to
  the room left in the context; the clamp is reported in the response's ``warnings``.
- Keys neither OpenAI nor vLLM define (Pref-GRPO sends ``do_sample``) are ignored with a warning, as
  vLLM ignores them.
- Parameters the server cannot honour (``stream``, ``logprobs``, ``response_format`` other than text,
  tools, penalties, ...) are refused with a 400 naming them, never silently dropped.
- ``n`` must be >= 1; ``temperature=0`` with ``n>1`` returns ``n`` copies of the greedy answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from unireward.serve.errors import ApiError
from unireward.serve.limits import ServerLimits

#: keys the server reads (or accepts at their defaults) on a chat request
_CHAT_KEYS = {
    "model", "messages", "max_tokens", "max_completion_tokens", "max_new_tokens", "n", "temperature",
    "top_p", "seed", "min_tokens", "stop", "stream", "stream_options", "logprobs", "top_logprobs",
    "response_format", "tools", "tool_choice", "functions", "function_call", "parallel_tool_calls",
    "logit_bias", "presence_penalty", "frequency_penalty", "repetition_penalty", "top_k", "min_p",
    "best_of", "echo", "user", "metadata", "store", "service_tier", "stop_token_ids",
    "skip_special_tokens", "include_stop_str_in_output", "ignore_eos", "num_samples", "modalities",
    "reasoning_effort", "prediction", "audio", "chat_template_kwargs", "add_generation_prompt",
}
#: parameter -> its default (unsupported unless left at it)
_UNSUPPORTED = {
    "stream": False, "logprobs": False, "top_logprobs": None, "tools": None, "functions": None,
    "logit_bias": None, "presence_penalty": 0, "frequency_penalty": 0, "repetition_penalty": 1,
    "best_of": 1, "echo": False, "stop_token_ids": None, "ignore_eos": False, "min_p": 0,
    "prediction": None, "audio": None,
}  # fmt: skip
_INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass
class Sampling:
    """What the backend is asked for; ``warnings`` go back to the client."""

    n: int = 1
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    min_tokens: int | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def replicate_greedy(self) -> bool:
        """``n > 1`` at temperature 0: generate once, return ``n`` copies (what vLLM answers)."""
        return self.n > 1 and self.temperature == 0


def _int(data: dict[str, Any], key: str) -> int | None:
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ApiError(400, f"{key} must be an integer, got {type(v).__name__}", "bad_parameter", key)
    return v


def _number(data: dict[str, Any], key: str) -> float | None:
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ApiError(400, f"{key} must be a finite number", "bad_parameter", key)
    return float(v)


def refuse_unsupported(data: dict[str, Any]) -> None:
    """400 naming every parameter set to something the server cannot honour.

    >>> refuse_unsupported({"stream": False, "logprobs": None, "response_format": {"type": "text"}})
    >>> refuse_unsupported({"stream": True, "logprobs": True})
    Traceback (most recent call last):
    ...
    unireward.serve.errors.ApiError: unsupported parameter(s): stream, logprobs (this server answers non-streaming text completions)
    """
    bad = [k for k, default in _UNSUPPORTED.items() if k in data and data[k] not in (default, None, [], {})]
    fmt = data.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        bad.append("response_format")
    choice = data.get("tool_choice")
    if choice not in (None, "none", "auto"):
        bad.append("tool_choice")
    if bad:
        raise ApiError(400, f"unsupported parameter(s): {', '.join(bad)} (this server answers non-streaming text "
                            "completions)", "unsupported_parameter", bad[0])  # fmt: skip


def parse_sampling(data: dict[str, Any], limits: ServerLimits, chat: bool = True) -> Sampling:
    """Validated sampling settings of a request body.

    >>> s = parse_sampling({"max_tokens": 4096, "do_sample": False}, ServerLimits(max_new_tokens=64))
    >>> s.max_tokens, s.warnings
    (64, ['max_tokens 4096 clamped to the server cap of 64', 'ignored unknown parameter(s): do_sample'])
    >>> parse_sampling({"n": 0}, ServerLimits())
    Traceback (most recent call last):
    ...
    unireward.serve.errors.ApiError: n must be at least 1, got 0
    """
    s = Sampling()
    if chat:
        refuse_unsupported(data)
        unknown = sorted(k for k in data if k not in _CHAT_KEYS)
    else:
        unknown = []
    key = next((k for k in ("max_tokens", "max_completion_tokens", "max_new_tokens") if data.get(k) is not None), None)
    if key is not None:
        mt = _int(data, key)
        assert mt is not None
        if mt < 1:
            raise ApiError(400, f"{key} must be at least 1, got {mt}", "bad_parameter", key)
        if mt > limits.max_new_tokens:
            s.warnings.append(f"{key} {mt} clamped to the server cap of {limits.max_new_tokens}")
            mt = limits.max_new_tokens
        s.max_tokens = mt
    n_key = "n" if data.get("n") is not None else "num_samples"
    n = _int(data, n_key)
    if n is not None:
        if n < 1:
            raise ApiError(400, f"n must be at least 1, got {n}", "bad_parameter", "n")
        if n > limits.max_samples:
            raise ApiError(400, f"n is {n}, above the limit of {limits.max_samples}", "too_many_samples", "n")
        s.n = n
    s.temperature = _number(data, "temperature")
    if s.temperature is not None and s.temperature < 0:
        raise ApiError(400, f"temperature must be >= 0, got {s.temperature}", "bad_parameter", "temperature")
    s.top_p = _number(data, "top_p")
    if s.top_p is not None and not 0 < s.top_p <= 1:
        raise ApiError(400, f"top_p must be in (0, 1], got {s.top_p}", "bad_parameter", "top_p")
    top_k = _int(data, "top_k") if chat else None
    if top_k not in (None, 0, -1):
        raise ApiError(400, "unsupported parameter(s): top_k (only -1/0, no top-k cut)", "unsupported_parameter", "top_k")
    s.seed = _int(data, "seed")
    if s.seed is not None and not _INT64[0] <= s.seed <= _INT64[1]:
        raise ApiError(400, "seed must fit in a signed 64-bit integer", "bad_parameter", "seed")
    s.min_tokens = _int(data, "min_tokens")
    if s.min_tokens is not None:
        if s.min_tokens < 0:
            raise ApiError(400, f"min_tokens must be >= 0, got {s.min_tokens}", "bad_parameter", "min_tokens")
        requested = data.get(key) if key else None
        if requested is not None and s.min_tokens > requested:
            raise ApiError(400, f"min_tokens ({s.min_tokens}) must be <= max_tokens ({requested})", "bad_parameter",
                           "min_tokens")  # fmt: skip
        cap = s.max_tokens or limits.max_new_tokens
        if s.min_tokens > cap:
            s.warnings.append(f"min_tokens {s.min_tokens} clamped to {cap}")
            s.min_tokens = cap
    stop = data.get("stop") if chat else None
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(x, str) and x for x in stops) or len(stops) > 16:
            raise ApiError(400, "stop must be a non-empty string or a list of at most 16 of them", "bad_parameter", "stop")
        s.stop = stops
    if unknown:
        s.warnings.append(f"ignored unknown parameter(s): {', '.join(unknown)}")
    return s


def apply_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """``text`` cut before the first stop string (which is not included, as in OpenAI's API).

    >>> apply_stop("<think>a</think><answer>x</answer> more", ["</answer>"])
    ('<think>a</think><answer>x', True)
    >>> apply_stop("abc", ["z"])
    ('abc', False)
    """
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
