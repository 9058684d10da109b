"""Verdict protocols: how a judge's text names the preferred candidate.

* ``answer``: ours / UnifiedReward-Think, ``<answer>Image 1 is better</answer>``; parsed by
  :func:`unireward.protocol.parse_judgment` (the one parser for that format).
* ``genai-bench``: ``[[A>B]]``, ``[[A>>B]]``, ``[[B>A]]``, ``[[B>>A]]``, ``[[A=B=Good]]``,
  ``[[A=B=Bad]]``, ``[[A=B]]``, found as the official scorer does: a greedy ``\\[\\[.*\\]\\]`` search
  on one line, taken verbatim; anything else inside the brackets is not a known vote.
* ``vl-rewardbench``: free text ending in ``Overall Judgment: Answer X is better``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from unireward.protocol import Judgment, Task, parse_judgment

PROTOCOLS = ("answer", "genai-bench", "vl-rewardbench")
Winner = Literal[1, 2, "tie"] | None

_GENAI_RE = re.compile(r"\[\[.*\]\]")  # greedy, "." stops at newlines: the official semantics
_GENAI_SIDE = {"[[A>B]]": 1, "[[A>>B]]": 1, "[[B>A]]": 2, "[[B>>A]]": 2,
               "[[A=B]]": "tie", "[[A=B=Good]]": "tie", "[[A=B=Bad]]": "tie"}  # fmt: skip
_VLRB_HEAD_RE = re.compile(r"overall\s+judg(?:e)?ment", re.IGNORECASE)
_VLRB_VERDICT_RE = re.compile(r"answer\s*([12])\s*(?:\**\s*)?is\s+(?:better|superior|preferred)", re.IGNORECASE)
_VLRB_NAMED_RE = re.compile(r"answer\s*([12])", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """What a protocol read from one output: ``winner`` 1, 2, ``"tie"`` or ``None`` (unparsed),
    and ``vote``, the protocol's own token (``[[A>B]]``, ``Answer 1 is better``)."""

    winner: Winner
    vote: str | None

    @property
    def parsed(self) -> bool:
        return self.winner is not None


def parse_genai_vote(text: str | None) -> str | None:
    """The official GenAI-Bench vote string, or ``None``.

    >>> parse_genai_vote("reasoning...\\nFinal: [[B>A]]")
    '[[B>A]]'
    >>> parse_genai_vote("1. Model A is better: [[A>B]] 2. Model B is better: [[B>A]]")  # greedy
    '[[A>B]] 2. Model B is better: [[B>A]]'
    >>> parse_genai_vote("no verdict") is None
    True
    """
    if not text:
        return None
    m = _GENAI_RE.search(text)
    return m.group() if m else None


def genai_vote_winner(vote: str | None) -> Winner:
    """Side named by a GenAI-Bench vote string (``None`` for an unknown string).

    >>> genai_vote_winner("[[B>>A]]"), genai_vote_winner("[[A=B=Bad]]"), genai_vote_winner("[[A]]")
    (2, 'tie', None)
    """
    return _GENAI_SIDE.get(vote) if vote is not None else None  # type: ignore[return-value]


def winner_to_genai_vote(winner: Winner) -> str | None:
    """The GenAI-Bench vote a two-way verdict amounts to (a judge without a tie class).

    >>> winner_to_genai_vote(1), winner_to_genai_vote(2), winner_to_genai_vote(None)
    ('[[A>B]]', '[[B>A]]', None)
    """
    return {1: "[[A>B]]", 2: "[[B>A]]", "tie": "[[A=B]]"}.get(winner) if winner is not None else None  # type: ignore[arg-type]


def parse_vlrb_verdict(text: str | None) -> Winner:
    """The answer named after the last "Overall Judgment" heading, or ``None``.

    "Answer X is better/superior" wins; otherwise the heading's text must name exactly one answer.

    >>> parse_vlrb_verdict("...analysis...\\n**Overall Judgment: Answer 2 is better.**")
    2
    >>> parse_vlrb_verdict("### Overall Judgment\\n**Answer 1** is superior because ...")
    1
    >>> parse_vlrb_verdict("Overall Judgment: Answer 1 and Answer 2 are equally good") is None
    True
    """
    if not text:
        return None
    heads = list(_VLRB_HEAD_RE.finditer(text))
    if not heads:
        return None
    tail = text[heads[-1].end():]
    m = _VLRB_VERDICT_RE.search(tail)
    if m:
        return int(m.group(1))  # type: ignore[return-value]
    named = {int(x) for x in _VLRB_NAMED_RE.findall(tail)}
    return named.pop() if len(named) == 1 else None  # type: ignore[return-value]


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    return protocol


def parse_text(protocol: str, text: str | None, task: Task | str = Task.IMAGE_GENERATION) -> Verdict:
    """Read a raw output with ``protocol``.

    >>> parse_text("answer", "<think>x</think><answer>Image 2 is better</answer>", "image_generation")
    Verdict(winner=2, vote='Image 2 is better')
    >>> parse_text("genai-bench", "[[A=B=Good]]")
    Verdict(winner='tie', vote='[[A=B=Good]]')
    """
    check_protocol(protocol)
    if protocol == "answer":
        return from_judgment(parse_judgment(text, task), protocol)
    if protocol == "genai-bench":
        vote = parse_genai_vote(text)
        return Verdict(genai_vote_winner(vote), vote)
    winner = parse_vlrb_verdict(text)
    return Verdict(winner, f"Answer {winner} is better" if winner in (1, 2) else None)


def from_judgment(judgment: Judgment, protocol: str = "answer") -> Verdict:
    """The verdict of a judge's :class:`Judgment` under ``protocol`` (``answer`` reuses its parse)."""
    check_protocol(protocol)
    if protocol == "answer":
        winner = judgment.winner if judgment.ok else None
        return Verdict(winner, judgment.answer if winner is not None else None)  # type: ignore[arg-type]
    return parse_text(protocol, judgment.text, judgment.task)
