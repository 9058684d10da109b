"""Score judge outputs that already exist, e.g. a GenAI-Bench ``pairwise.jsonl``.

Only the raw ``response`` text and the human label are read. Stored verdicts or correctness
fields (``model_vote``, ``correct``) are ignored on purpose: the point is to re-derive them.
"""

from __future__ import annotations

import os
from typing import Any

from unireward.data.schema import normalize_label
from unireward.eval.benchmarks import read_records
from unireward.eval.protocols import check_protocol, parse_genai_vote, parse_text
from unireward.metrics import genai_bench_scores


def replay(path: str | os.PathLike[str], protocol: str = "genai-bench", task: str = "image_generation") -> dict[str, Any]:
    """Accuracy (percent) of the stored responses in ``path`` under ``protocol``.

    ``genai-bench``: rows need ``response`` and ``human_vote`` (or ``vote_type``); returns the official
    4-way ``accuracy`` (unparsed = wrong, all rows), ``tau`` and ``diff``.
    ``answer`` / ``vl-rewardbench``: rows need ``response`` and ``label`` (1/2/A/B/...); returns
    accuracy over non-tie labels with unparsed answers counted wrong.
    """
    check_protocol(protocol)
    rows = read_records(path)
    if protocol == "genai-bench":
        votes = [parse_genai_vote(r.get("response")) for r in rows]
        human = [r.get("human_vote", r.get("vote_type")) for r in rows]
        if any(h is None for h in human):
            raise ValueError(f"{path}: every row needs 'human_vote' (or 'vote_type')")
        scores = genai_bench_scores(votes, human)
        convention = "official 4-way GenAI-Bench accuracy over all rows (unparsed = wrong); tau 3-way; diff left/right only"
    else:
        hits = n = unparsed = 0
        for i, r in enumerate(rows):
            label = normalize_label(r["label"], i)
            if label == "tie":
                continue
            v = parse_text(protocol, r.get("response"), r.get("task", task))
            n += 1
            unparsed += v.winner is None
            hits += v.winner == label
        scores = {"accuracy": 100.0 * hits / n if n else float("nan"), "n": n, "unparsed": unparsed}
        convention = "two-way accuracy over non-tie labels (unparsed = wrong)"
    return {"file": os.path.basename(str(path)), "protocol": protocol, **scores, "convention": convention}
