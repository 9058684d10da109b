"""LLaVA-Critic-113K, pairwise part: image question answering, two responses and a critic verdict.

Layout read: the dataset card of ``lmms-lab/llava-critic-113k`` (config ``pairwise``, parquet under
``pairwise/``; features ``id``, ``source``, ``conversations`` (list of ``{"from", "value"}``) and
``image``). The human turn is LLaVA-Critic's pairwise prompt (``Question: [...]``, ``The first
response: [...]``, ``The second response: [...]``; confirmed from public code using it); the gpt turn
is the critic's free-text judgment. The verdict phrasing of that turn could not be confirmed, so it
is parsed from several phrasings (first/second response better, Response 1/2, [[A]]/[[B]], equally
good); a turn that states none of them is rejected. The critic text is kept in ``meta`` (it is not
in this toolkit's CoT format, so it is not used as an SFT target).
"""

from __future__ import annotations

import re
from typing import Any

from unireward.data.converters.base import ConvertContext, Converter, RowError, require
from unireward.data.schema import PreferencePair
from unireward.protocol.tasks import Task

_FIELDS = re.compile(
    r"Question:\s*\[(?P<q>.*?)\]\s*The first response:\s*\[(?P<a>.*?)\]\s*The second response:\s*\[(?P<b>.*)\]",
    re.DOTALL,
)
_TIE = re.compile(r"\b(equally (good|bad|well|acceptable|effective)|tie\b|\[\[C\]\]|both responses are (equally|similar))", re.I)
_VERDICT = [
    (re.compile(r"\b(first|1st) (response|answer) is (better|superior|preferred|more)", re.I), 1),
    (re.compile(r"\b(second|2nd) (response|answer) is (better|superior|preferred|more)", re.I), 2),
    (re.compile(r"\b(response|answer) ?(1|A) is (better|superior|preferred)", re.I), 1),
    (re.compile(r"\b(response|answer) ?(2|B) is (better|superior|preferred)", re.I), 2),
    (re.compile(r"\[\[A\]\]"), 1),
    (re.compile(r"\[\[B\]\]"), 2),
    (re.compile(r"\b(prefer|choose) the first\b", re.I), 1),
    (re.compile(r"\b(prefer|choose) the second\b", re.I), 2),
]


def critic_verdict(text: str) -> int | str | None:
    """1, 2, "tie" or ``None`` from a critic's judgment; the last statement wins.

    >>> critic_verdict("... Overall Judgment: The second response is better.")
    2
    >>> critic_verdict("Two responses are equally good.")
    'tie'
    >>> critic_verdict("no decision") is None
    True
    """
    best: tuple[int, int | str] | None = None
    for pat, who in _VERDICT:
        for m in pat.finditer(text):
            if best is None or m.start() > best[0]:
                best = (m.start(), who)
    for m in _TIE.finditer(text):
        if best is None or m.start() > best[0]:
            best = (m.start(), "tie")
    return None if best is None else best[1]


class LLaVACriticConverter(Converter):
    name = "llava-critic"
    task = Task.IMAGE_UNDERSTANDING
    hub_id = "lmms-lab/llava-critic-113k"
    hub_config = "pairwise"
    files = ("pairwise/*.parquet", "*.parquet", "*.jsonl", "*.json")

    def convert_record(self, ref: str, rec: dict[str, Any], ctx: ConvertContext) -> list[PreferencePair]:
        (conv,) = require(rec, "conversations")
        if not isinstance(conv, list) or len(conv) < 2:
            raise RowError("conversations: expected a human turn and a gpt turn")
        human = next((t.get("value", "") for t in conv if t.get("from") == "human"), "")
        gpt = next((t.get("value", "") for t in reversed(conv) if t.get("from") == "gpt"), "")
        m = _FIELDS.search(human)
        if not m:
            raise RowError("conversations: human turn is not a pairwise critic prompt")
        answer_b = re.sub(r"\]\s*(ASSISTANT:)?\s*$", "", m.group("b").strip()).strip()
        verdict = critic_verdict(gpt)
        if verdict is None:
            raise RowError("conversations: no verdict found in the gpt turn")
        key = str(rec.get("id") or ref)
        image = rec.get("image")
        if image is None:
            raise RowError("missing field 'image'")
        img = ctx.media(image, "image", f"llava-critic-{key}")
        meta = {"critic": gpt, "origin": rec.get("source")}
        return [self.make(
            id=f"llava-critic-{key}", prompt=m.group("q").strip(), candidates=(m.group("a").strip(), answer_b),
            label=verdict, reference=img, meta=meta,
        )]  # fmt: skip
