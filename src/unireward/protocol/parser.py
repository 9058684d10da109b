"""The one verdict parser. It never raises: any string becomes a :class:`Judgment`.

Every template family names the verdict its judge writes (:data:`unireward.protocol.templates.VERDICTS`);
:func:`parse_judgment` reads each of them into the same fields: ``winner`` (pairwise; ``tie`` when the
judge says both are equally good), ``dimensions`` (per-dimension scores per candidate, on the
protocol's own scale), ``score`` (pointwise, own scale) and ``overall`` (per candidate, in [0, 1]:
pairwise, each candidate's share of the judge's preference, the two summing to 1; pointwise, the
score mapped onto [0, 1]). The UnifiedReward-Think contract (``think``) is read as follows; the
others are described at their readers below.

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

import json
import math
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
    #: per candidate, in [0, 1] (see the module docstring)
    overall: dict[int, float] | None = None
    #: the judge said both candidates are equally good (status "ok", winner None)
    tie: bool = False
    #: verdict-specific extras (Flex: each category's winner)
    details: dict[str, Any] = field(default_factory=dict)
    verdict: str = "think"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def scores(self) -> dict[str, dict[int, float]]:
        """Per dimension, per candidate: ``{"Alignment": {1: 0.4, 2: 0.6}}``."""
        return {d.name: dict(d.scores) for d in self.dimensions}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["task"] = self.task.value
        d["mode"] = self.mode.value
        d["dimensions"] = [{"name": x.name, "scores": {str(k): v for k, v in x.scores.items()}} for x in self.dimensions]
        d["scores"] = {x.name: {str(k): v for k, v in x.scores.items()} for x in self.dimensions}
        d["totals"] = {str(k): v for k, v in self.totals.items()} if self.totals else None
        d["overall"] = {str(k): v for k, v in self.overall.items()} if self.overall else None
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
    family: str | None = None,
) -> Judgment:
    """Parse a judge's output; ``family`` (a template family name) says which verdict to read, the
    UnifiedReward-Think contract by default.

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
    verdict, dims = "think", ()
    if family is not None:
        from unireward.protocol.templates import get_family

        fam = get_family(family, mode)
        verdict, dims, j.mode = fam.verdict, fam.dimensions.get(task.value, ()), fam.mode
    j.verdict = verdict
    if verdict != "think":
        _READERS[verdict](j, candidate_noun(task), dims)
        _finish(j)
        return j
    _parse_think(j)
    _finish(j)
    return j


def _parse_think(j: Judgment) -> None:
    text, task, strict = j.text, j.task, j.strict
    noun = candidate_noun(task)
    pointwise = j.mode is Mode.POINTWISE

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
            return
        region = m.group(2).strip()
    else:
        if answer_m is None and _is_truncated(text):
            j.status, j.reason = "truncated", "unclosed <think> or <answer>"
            return
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
            return
        j.status = "ok"
        return

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
        return
    j.status = "ok"
    if j.totals is not None:
        other = 3 - j.winner
        j.totals_consistent = j.totals[j.winner] > j.totals[other]


# ------------------------------------------------------------------ the other UnifiedReward verdicts

_SNUM = r"([-+]?\d+(?:\.\d+)?)"


def _finish(j: Judgment) -> None:
    """``overall`` for the think verdict, derived the same way the other readers set it."""
    if j.verdict != "think" or not j.ok:
        return
    if j.mode is Mode.POINTWISE:
        j.overall = {1: (j.score - 1.0) / 9.0} if j.score is not None else None
    elif j.totals is not None and sum(j.totals.values()) > 0:
        j.overall = _shares(j.totals[1], j.totals[2])
    elif j.winner is not None:
        j.overall = _one_hot(j.winner)


def _one_hot(winner: int) -> dict[int, float]:
    return {1: float(winner == 1), 2: float(winner == 2)}


def _shares(a: float, b: float) -> dict[int, float]:
    """Each candidate's share of two non-negative scores (even when both are 0).

    >>> _shares(3, 1)
    {1: 0.75, 2: 0.25}
    """
    total = a + b
    return {1: a / total, 2: b / total} if total > 0 else {1: 0.5, 2: 0.5}


def _decide(j: Judgment, overall: dict[int, float]) -> None:
    """Winner from a pairwise ``overall``: the larger share, a tie when equal."""
    j.overall = overall
    if abs(overall[1] - overall[2]) < 1e-9:
        j.tie = True
    else:
        j.winner = 1 if overall[1] > overall[2] else 2
    j.status = "ok"


def _answer_region(text: str) -> str:
    m = _ANSWER_RE.search(text)
    return m.group(1) if m else text


def _read_rank(j: Judgment, noun: str, dims: tuple[str, ...]) -> None:
    """UnifiedReward-2.0 / Edit pair rank: the verdict is free text naming "Image 1 is better",
    "Image 2 is better" or "Both images are equally good" (a tie). Lenient: the last verdict named
    (the conclusion); strict: the text names exactly one verdict, however often.

    >>> j = Judgment("Image 1 shows the cube. Image 2 is better.", Task.IMAGE_GENERATION)
    >>> _read_rank(j, "Image", ()); j.winner, j.overall
    (2, {1: 0.0, 2: 1.0})
    """
    plural = {"Image": "images", "Video": "videos", "Answer": "answers"}[noun]
    verdict_re = re.compile(
        rf"\b{noun}\s*([12])\s+is\s+better\b|\bboth\s+{plural}\s+are\s+equally\s+good\b", re.IGNORECASE
    )
    found = [m.group(1) or "tie" for m in verdict_re.finditer(_answer_region(j.text))]
    if not found:
        j.reason = f"no verdict ('{noun} 1 is better', '{noun} 2 is better', 'Both {plural} are equally good')"
        return
    if j.strict and len(set(found)) != 1:
        j.reason = f"the text names more than one verdict: {sorted(set(found))}"
        return
    last = found[-1]
    if last == "tie":
        j.tie, j.overall, j.status = True, {1: 0.5, 2: 0.5}, "ok"
    else:
        j.winner, j.overall, j.status = int(last), _one_hot(int(last)), "ok"


def _header(line: str) -> str | None:
    """The dimension a header line opens ("Alignment Score:", "**Style Score**:"), else None."""
    m = re.fullmatch(r"\W*([A-Za-z][A-Za-z ]*?)\s+Score\W*", line.strip())
    return m.group(1).strip() if m else None


def _check_dims(j: Judgment, want: tuple[str, ...]) -> bool:
    got = [d.name.lower() for d in j.dimensions]
    if want and (sorted(got) != sorted(w.lower() for w in want)):
        j.reason = f"dimensions {[d.name for d in j.dimensions]}, expected {list(want)}"
        return False
    return True


def _read_pair_scores(j: Judgment, noun: str, dims: tuple[str, ...]) -> None:
    """UnifiedReward-2.0 pair score: per dimension a header ("Alignment Score:") then
    "Image 1: x" / "Image 2: y", each pair in [0, 1] summing to 1. ``overall`` is the mean over
    dimensions. Strict: exactly the expected dimensions, once each, in range, each pair summing to 1
    (within 0.01); lenient: every dimension read with both candidates.
    """
    cand_re = re.compile(rf"^\W*{noun}\s*([12])\s*:\s*{_SNUM}", re.IGNORECASE)
    current: str | None = None
    found: dict[str, dict[int, float]] = {}
    repeated = False
    for line in _answer_region(j.text).splitlines():
        if (name := _header(line)) is not None:
            current = name
            repeated |= name in found
            found.setdefault(name, {})
            continue
        m = cand_re.match(line)
        if m and current is not None:
            found[current].setdefault(int(m.group(1)), float(m.group(2)))
    j.dimensions = [DimensionScore(n, s) for n, s in found.items() if set(s) == {1, 2}]
    if not j.dimensions:
        j.reason = f"no dimension scored for both {noun} 1 and {noun} 2"
        return
    if j.strict:
        if repeated or len(j.dimensions) != len(found) or not _check_dims(j, dims):
            j.reason = j.reason or "a dimension is repeated or lacks a candidate"
            return
        bad = [d.name for d in j.dimensions if not all(0 <= v <= 1 for v in d.scores.values())
               or abs(d.scores[1] + d.scores[2] - 1) > 0.01]  # fmt: skip
        if bad:
            j.reason = f"scores of {bad} are not in [0, 1] or do not sum to 1"
            return
    mean = {c: sum(d.scores[c] for d in j.dimensions) / len(j.dimensions) for c in (1, 2)}
    if min(mean.values()) < 0:
        j.reason = "negative scores"
        return
    _decide(j, _shares(mean[1], mean[2]))


def _read_point_scores(j: Judgment, noun: str, dims: tuple[str, ...]) -> None:
    """UnifiedReward-2.0 pointwise: "Alignment Score (1-5): x" lines. ``score`` is their mean (1-5),
    ``overall`` maps it onto [0, 1]. Strict: exactly the expected dimensions, each once, in [1, 5];
    lenient: every such line whose value is in range.

    >>> j = Judgment("Alignment Score (1-5): 2.6947\\nCoherence Score (1-5): 2.3715\\nStyle Score (1-5): 2.8025",
    ...              Task.IMAGE_GENERATION, Mode.POINTWISE)
    >>> _read_point_scores(j, "Image", ("Alignment", "Coherence", "Style")); round(j.score, 4), round(j.overall[1], 4)
    (2.6229, 0.4057)
    """
    line_re = re.compile(r"^\W*([A-Za-z][A-Za-z ]*?)\s+Score\s*\(\s*1\s*-\s*5\s*\)\s*:\s*" + _SNUM, re.IGNORECASE | re.MULTILINE)
    rows = [(m.group(1).strip(), float(m.group(2))) for m in line_re.finditer(_answer_region(j.text))]
    names = [n for n, _ in rows]
    if j.strict and (len(set(names)) != len(names) or any(not 1 <= v <= 5 for _, v in rows)):
        j.reason = "a dimension is repeated or out of 1-5"
        return
    j.dimensions = [DimensionScore(n, {1: v}) for n, v in rows if 1 <= v <= 5]
    if not j.dimensions:
        j.reason = "no 'X Score (1-5): v' line with a value in 1-5"
        return
    if j.strict and not _check_dims(j, dims):
        return
    j.score = sum(d.scores[1] for d in j.dimensions) / len(j.dimensions)
    j.overall = {1: (j.score - 1) / 4}
    j.status = "ok"


def _read_edit_pair_scores(j: Judgment, noun: str, dims: tuple[str, ...]) -> None:
    """UnifiedReward-Edit pair score: one score per edited image, "positive to negative". Strict: each
    image labelled once ("Image 1: 7.5", "Edited Image 2 score: -1.0"); lenient: labelled scores, else
    what the official script reads (the first two decimal numbers of the text). ``overall`` is the
    softmax of the two scores (each image's share of the preference).

    >>> j = Judgment("Image 1: 3.25\\nImage 2: 1.10", Task.IMAGE_EDITING)
    >>> _read_edit_pair_scores(j, "Image", ()); j.winner, j.dimensions[0].scores
    (1, {1: 3.25, 2: 1.1})
    """
    region = _answer_region(j.text)
    label_re = re.compile(rf"\b{noun}\s*([12])\b[^\n\d+-]{{0,40}}?[:=]\s*\**\s*{_SNUM}", re.IGNORECASE)
    labelled: dict[int, list[float]] = {1: [], 2: []}
    for m in label_re.finditer(region):
        labelled[int(m.group(1))].append(float(m.group(2)))
    if j.strict and [len(v) for v in labelled.values()] != [1, 1]:
        j.reason = f"strict: expected one labelled score per {noun.lower()}, got {labelled}"
        return
    if labelled[1] and labelled[2]:
        s1, s2 = labelled[1][0], labelled[2][0]
    else:
        decimals = re.findall(r"[0-9]+\.[0-9]+", region)  # the official extraction
        if len(decimals) < 2:
            j.reason = "fewer than two scores"
            return
        s1, s2 = float(decimals[0]), float(decimals[1])
    j.dimensions = [DimensionScore(dims[0] if dims else "score", {1: s1, 2: s2})]
    top = max(s1, s2)
    e1, e2 = math.exp(s1 - top), math.exp(s2 - top)
    _decide(j, {1: e1 / (e1 + e2), 2: e2 / (e1 + e2)})


def _read_edit_point_scores(j: Judgment, noun: str, dims: tuple[str, ...]) -> None:
    """UnifiedReward-Edit pointwise (the VIEScore layout): ``"score" : [a, b]``, 0-25 each. As in
    VIEScore, the score is the smaller of the two (an edit is as good as its weaker side);
    ``overall`` is that over 25. Strict: one score list of two values in range and a reasoning field;
    lenient: the first ``score … [a, b]`` in the text.

    >>> j = Judgment('{\\n"reasoning" : "ok",\\n"score" : [20, 15],\\n}', Task.IMAGE_EDITING, Mode.POINTWISE)
    >>> _read_edit_point_scores(j, "Image", ("editing success", "overediting")); j.score, j.overall
    (15.0, {1: 0.6})
    """
    lists = re.findall(r"score\"?\s*[:=]\s*\[\s*" + _SNUM + r"\s*,\s*" + _SNUM + r"\s*\]", j.text, re.IGNORECASE)
    if not lists:
        j.reason = "no score list [a, b]"
        return
    if j.strict and (len(lists) != 1 or not re.search(r"\"reasoning\"\s*:", j.text)):
        j.reason = "strict: expected one reasoning field and one score list"
        return
    a, b = float(lists[0][0]), float(lists[0][1])
    if not (0 <= a <= 25 and 0 <= b <= 25):
        j.reason = f"scores {[a, b]} are not in 0-25"
        return
    names = dims if len(dims) == 2 else ("score 1", "score 2")
    j.dimensions = [DimensionScore(names[0], {1: a}), DimensionScore(names[1], {1: b})]
    j.score = min(a, b)
    j.overall = {1: j.score / 25}
    j.status = "ok"


def _flex_object(text: str) -> tuple[Any, bool]:
    """The JSON object of a Flex answer and whether it parsed as written (else after dropping trailing
    commas); ``None`` when neither works."""
    body = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        return None, False
    body = body[start : end + 1]
    for exact, candidate in ((True, body), (False, re.sub(r",\s*([}\]])", r"\1", body))):
        try:
            obj = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj, exact
    return None, False


def _flex_winner(value: Any, noun: str) -> int | None:
    m = re.fullmatch(rf"\s*{noun}\s*([12])\s*", str(value), re.IGNORECASE)
    return int(m.group(1)) if m else None


def _read_flex(j: Judgment, noun: str, dims: tuple[str, ...]) -> None:
    """UnifiedReward-Flex: one JSON object, ``categories`` → ``dims`` with ``score_1``/``score_2``
    (summing to 10), a ``cat_winner`` per category and the overall ``winner``. ``overall`` is each
    candidate's share of all sub-dimension points; ``totals_consistent`` says whether the winner holds
    the larger share. Strict: valid JSON as written, every sub-dimension's scores in 0-10 summing to 10,
    every winner "Image 1"/"Image 2". Lenient: trailing commas dropped; without parseable JSON, the
    last ``"winner": "Image N"`` and every ``score_1``/``score_2`` pair in the text.
    """
    obj, exact = _flex_object(j.text)
    rows: list[tuple[str, float, float]] = []
    categories: list[dict[str, Any]] = []
    if obj is not None and (exact or not j.strict):
        for cat in obj.get("categories") or []:
            if not isinstance(cat, dict):
                continue
            cname = str(cat.get("name", ""))
            cat_rows = []
            for d in cat.get("dims") or []:
                try:
                    cat_rows.append((f"{cname} / {d.get('name', '')}".strip(" /"), float(d["score_1"]), float(d["score_2"])))
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue
            rows += cat_rows
            categories.append({"name": cname, "winner": _flex_winner(cat.get("cat_winner"), noun),
                               "dims": len(cat_rows)})  # fmt: skip
        winner = _flex_winner(obj.get("winner"), noun)
    elif j.strict:
        j.reason = "strict: the answer is not one valid JSON object"
        return
    else:
        pair_re = re.compile(r"\"name\"\s*:\s*\"([^\"]*)\"[^{}]*?\"score_1\"\s*:\s*" + _SNUM + r"\s*,[^{}]*?\"score_2\"\s*:\s*" + _SNUM)
        rows = [(n, float(a), float(b)) for n, a, b in pair_re.findall(j.text)]
        found = re.findall(rf"\"winner\"\s*:\s*\"\s*{noun}\s*([12])\s*\"", j.text, re.IGNORECASE)
        winner = int(found[-1]) if found else None
    j.dimensions = [DimensionScore(n, {1: a, 2: b}) for n, a, b in rows]
    j.details = {"categories": categories}
    if winner is None:
        j.reason = f"no winner '{noun} 1' or '{noun} 2'"
        return
    if j.strict:
        bad = [n for n, a, b in rows if not (0 <= a <= 10 and 0 <= b <= 10 and abs(a + b - 10) < 1e-6)]
        if not rows or bad or not categories or any(c["winner"] is None for c in categories):
            j.reason = f"strict: sub-dimensions {bad or 'missing'} break the sum-of-10 rule, or a category lacks its winner"
            return
    j.winner, j.status = winner, "ok"
    if rows:
        j.overall = _shares(sum(a for _, a, _ in rows), sum(b for _, _, b in rows))
        j.totals = {1: sum(a for _, a, _ in rows), 2: sum(b for _, _, b in rows)}
        j.totals_consistent = j.totals[winner] > j.totals[3 - winner]
    else:
        j.overall = _one_hot(winner)


_SWAP_RE = re.compile(r"\b(Image|Video|Answer|image|video|answer)(\s*)([12])\b|\b(score|reason)_([12])\b")


def relabel_swapped(text: str) -> str:
    """A judgment written with the candidates swapped, relabelled to the original order: "Image 1" and
    "Image 2" (Video, Answer; Flex's ``score_1``/``reason_1`` keys) trade places, nothing else changes.

    >>> relabel_swapped('Image 1 (9/10), Image 2 (6/10). "score_2": 4 <answer>Image 1 is better</answer>')
    'Image 2 (9/10), Image 1 (6/10). "score_1": 4 <answer>Image 2 is better</answer>'
    """

    def swap(m: re.Match[str]) -> str:
        if m.group(1):
            return f"{m.group(1)}{m.group(2)}{3 - int(m.group(3))}"
        return f"{m.group(4)}_{3 - int(m.group(5))}"

    return _SWAP_RE.sub(swap, text)


_READERS = {
    "rank": _read_rank,
    "pair_scores": _read_pair_scores,
    "point_scores": _read_point_scores,
    "edit_pair_scores": _read_edit_pair_scores,
    "edit_point_scores": _read_edit_point_scores,
    "flex": _read_flex,
}
