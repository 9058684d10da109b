"""The one verdict parser. It never raises: any string becomes a :class:`Judgment`.

Two modes:

* ``lenient`` accepts what the official evaluation accepts: the content of the first
  ``<answer>…</answer>`` (or, without tags, the text after ``</think>``, else the whole text) names
  exactly one of the two allowed verdicts.
* ``strict`` accepts only ``<think>…</think>`` followed by ``<answer>…</answer>``, each exactly once,
  nothing but whitespace outside them, and the answer exactly one allowed verdict. This is the
  shape the strict format reward pays for; it closes the usual reward hacks (several blocks,
  trailing text, extra words in the answer).

Text that ends inside an opened ``<think>`` or ``<answer>`` is ``truncated`` (usually ``max_new_tokens``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from unireward.protocol.tasks import Mode, Task, answer_label, candidate_noun

Status = Literal["ok", "invalid", "truncated"]

_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
# No leading whitespace: the official format reward is anchored at the very start, and a strict
# output must also pass it (strict_format_reward <= format_reward).
_STRICT_RE = re.compile(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_NUM = r"(\d{1,3}(?:\.\d+)?)"
# "Image 1 (9/10)" (the official examples) or "Image 1: 9/10" (the wording of the official instructions)
_DIM_SCORE_RE = re.compile(
    r"(Image|Video|Answer)\s*([12])\s*(?:\(\s*" + _NUM + r"\s*/\s*10\s*\)|:\s*" + _NUM + r"\s*/\s*10\b)"
)
_POINT_DIM_RE = re.compile(r"\(\s*" + _NUM + r"\s*/\s*10\s*\)")
# A total is "Image 1: <anything up to '='> = 17" or "Image 1: 17", and the number must end it: then a
# separator, "/40", "points", the end of the line or the next "Image 2:". That reads totals on their
# own lines or several on one ("..., Image 2: 13", or the "\\Answer 2: 29" run-on of the official LLaVA
# script's prompt), and refuses addends ("9+8", "9, 8, 8 -> 25") and asides ("3 points ahead").
_CANDIDATE = r"(?:Image|Video|Answer)\s*[12]\s*:"
_TOTAL_RE = re.compile(
    r"(Image|Video|Answer)\s*([12])\s*:\s*((?:(?!" + _CANDIDATE + r")[^=\n])*=\s*)?" + _NUM
    + r"(?=\s*(?:/\s*\d+)?\s*(?:points?)?\s*(?:\(out of \d+\))?\s*(?:[;.\\]|,(?!\s*\d)|$|" + _CANDIDATE + "))",
    re.MULTILINE,
)
_POINT_ANSWER_RE = re.compile(r"^(?:overall\s+score\s*:\s*)?" + _NUM + r"(?:\s*/\s*10)?$", re.IGNORECASE)
_FIRST_NUM_RE = re.compile(r"(?<![\d.])(-?)" + _NUM)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


@dataclass(frozen=True)
class DimensionScore:
    """Scores one dimension line gives: ``{1: 9.0, 2: 7.0}`` (pointwise: ``{1: 8.0}``)."""

    name: str
    scores: dict[int, float]


@dataclass
class Judgment:
    text: str
    task: Task
    mode: Mode = Mode.PAIRWISE
    strict: bool = False
    status: Status = "invalid"
    winner: int | None = None
    score: float | None = None
    think: str | None = None
    answer: str | None = None
    dimensions: list[DimensionScore] = field(default_factory=list)
    totals: dict[int, float] | None = None
    totals_consistent: bool | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["task"] = self.task.value
        d["mode"] = self.mode.value
        d["dimensions"] = [{"name": x.name, "scores": {str(k): v for k, v in x.scores.items()}} for x in self.dimensions]
        d["totals"] = {str(k): v for k, v in self.totals.items()} if self.totals else None
        return d


def _dimensions(think: str, noun: str, pointwise: bool) -> list[DimensionScore]:
    out: list[DimensionScore] = []
    for line in think.splitlines():
        if "total score" in line.lower():
            continue
        name = re.sub(r"^\s*(?:\d+\.|\[|-|\*)*\s*", "", line.split(":", 1)[0]).strip(" []*") if ":" in line else ""
        if pointwise:
            found = _POINT_DIM_RE.findall(line)
            if found:
                out.append(DimensionScore(name, {1: float(found[-1])}))
            continue
        scores: dict[int, float] = {}
        for kind, idx, paren, colon in _DIM_SCORE_RE.findall(line):
            if kind == noun:
                scores.setdefault(int(idx), float(paren or colon))
        if scores:
            out.append(DimensionScore(name, scores))
    return out


def _totals(think: str, noun: str) -> dict[int, float] | None:
    """The two stated totals after the last "Total score".

    >>> _totals("Total score:\\nImage 1: 9+8=17\\nImage 2: 7+6=13", "Image")
    {1: 17.0, 2: 13.0}
    >>> _totals("Total score: Image 1: 17, Image 2: 13.", "Image")
    {1: 17.0, 2: 13.0}
    >>> _totals("Total score:\\\\Answer 1: 8+7=15\\\\Answer 2: 9+6=15", "Answer")
    {1: 15.0, 2: 15.0}
    >>> _totals("Total score: Image 1: 9+8, Image 2: 7+6", "Image") is None
    True
    >>> _totals("Total score:\\nImage 1: 9 (semantic) + 8 (aesthetics) = 17 points\\nImage 2: 13/20", "Image")
    {1: 17.0, 2: 13.0}

    The first total of each candidate counts: a recap after them ("Image 1: 9/10 ...") does not.
    """
    lower = think.lower()
    at = lower.rfind("total score")
    if at < 0:
        return None
    found: dict[int, float] = {}
    for kind, idx, _expr, val in _TOTAL_RE.findall(think[at:]):
        if kind == noun:
            found.setdefault(int(idx), float(val))
    return found if len(found) == 2 else None


def _pointwise_score(answer: str, strict: bool) -> float | None:
    answer = answer.strip()
    m = _POINT_ANSWER_RE.match(answer)
    if m is None:
        if strict:
            return None
        m = _FIRST_NUM_RE.search(answer)
        if m is None or m.group(1):  # a negative number is out of range, not its absolute value
            return None
        return _in_range(float(m.group(2)))
    return _in_range(float(m.group(1)))


def _in_range(value: float) -> float | None:
    return value if 1.0 <= value <= 10.0 else None


def _is_truncated(text: str) -> bool:
    """True when the text ends inside a block: the last opening tag is never closed (usually
    ``max_new_tokens``). A block left open *before* a complete later block is malformed, not cut off.

    >>> _is_truncated("<think>a</think><answer>Image 1"), _is_truncated("<think>a <answer>x</answer>")
    (True, False)
    """
    last_open, close_tag = max((text.rfind(o), c) for o, c in (("<think>", "</think>"), ("<answer>", "</answer>")))
    return last_open >= 0 and text.find(close_tag, last_open) < 0


def parse_judgment(
    text: Any,
    task: Task | str,
    strict: bool = False,
    mode: Mode | str = Mode.PAIRWISE,
) -> Judgment:
    """Parse a judge's output.

    >>> out = '''<think>
    ... 1. Semantic consistency: Image 1 (9/10) - good; Image 2 (6/10) - off
    ... Total score:
    ... Image 1: 9=9
    ... Image 2: 6=6
    ... </think>
    ... <answer>Image 1 is better</answer>'''
    >>> j = parse_judgment(out, "image_generation", strict=True)
    >>> j.status, j.winner, j.totals, j.totals_consistent
    ('ok', 1, {1: 9.0, 2: 6.0}, True)
    >>> parse_judgment("<think>hmm</think><answer>Image 2 is better</answer> trust me", "image_generation").winner
    2
    >>> parse_judgment("<think>hmm</think><answer>Image 2 is better</answer> trust me", "image_generation", strict=True).status
    'invalid'
    >>> parse_judgment("<think>long reasoning", "image_generation").status
    'truncated'
    >>> parse_judgment("<think>ok</think><answer>Overall score: 7.5/10</answer>", "image_generation", mode="pointwise").score
    7.5
    """
    try:
        task = Task.parse(task)
    except ValueError:
        task = Task.IMAGE_GENERATION
        bad_task = True
    else:
        bad_task = False
    mode = Mode(mode)
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    j = Judgment(text=text, task=task, mode=mode, strict=strict)
    if bad_task:
        j.reason = "unknown task"
        return j
    noun = candidate_noun(task)
    pointwise = mode is Mode.POINTWISE

    think_m = _THINK_RE.search(text)
    j.think = think_m.group(1).strip() if think_m else None
    answer_m = _ANSWER_RE.search(text)
    j.answer = answer_m.group(1).strip() if answer_m else None
    if j.think is not None:
        j.dimensions = _dimensions(j.think, noun, pointwise)
        if not pointwise:
            j.totals = _totals(j.think, noun)

    if strict:
        m = _STRICT_RE.fullmatch(text)
        counts_ok = all(text.count(tag) == 1 for tag in _TAGS)
        if m is None or not counts_ok:
            if _is_truncated(text):
                j.status, j.reason = "truncated", "unclosed <think> or <answer>"
            else:
                j.reason = "not exactly one <think> block followed by one <answer> block"
            return j
        region = m.group(2).strip()
    else:
        if answer_m is None and _is_truncated(text):
            j.status, j.reason = "truncated", "unclosed <think> or <answer>"
            return j
        if answer_m is not None:
            region = j.answer or ""
        elif "</think>" in text:
            region = text.rsplit("</think>", 1)[1].strip()
        else:
            region = text.strip()

    if pointwise:
        j.score = _pointwise_score(region, strict)
        if j.score is None:
            j.reason = "answer is not a score between 1 and 10"
            return j
        j.status = "ok"
        return j

    labels = {w: answer_label(task, w) for w in (1, 2)}
    exact = [w for w, lab in labels.items() if region == lab]
    if exact:
        j.winner = exact[0]
    elif not strict:
        present = [w for w, lab in labels.items() if lab.lower() in region.lower()]
        if len(present) == 1:
            j.winner = present[0]
    if j.winner is None:
        j.reason = "answer does not name exactly one allowed verdict"
        return j
    j.status = "ok"
    if j.totals is not None:
        other = 3 - j.winner
        j.totals_consistent = j.totals[j.winner] > j.totals[other]
    return j
