"""Official metrics of MMRB2, Multimodal RewardBench, MJ-Bench-Video and HPDv2 over judged records.

Each scorer takes the scored pairs and, per pair id, its judgment records (``winner`` in the
pair's own order, ``swapped``, ``sample``) in plan order, and returns percent values; the
arithmetic itself lives in :mod:`unireward.metrics` as pure functions.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from unireward.data.schema import PreferencePair
from unireward.metrics import (
    coin_for_unparsed,
    inversion_score,
    mmrb1_category,
    pooled_accuracy,
    ranking_from_wins,
    tie_aware_accuracy,
)

Records = dict[str, list[dict[str, Any]]]


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def score_mmrb2(pairs: list[PreferencePair], by_id: Records) -> dict[str, Any]:
    """Per task: forward and reverse verdicts pooled (empty ones leave the denominator); overall is
    micro over tasks (MMRB2's compute_accuracy.py), ``mean_of_tasks`` the README's "Avg."."""
    per: dict[str, list[tuple[object, object]]] = defaultdict(list)
    for p in pairs:
        per[p.meta["task_name"]] += [(r["winner"], p.label) for r in by_id[p.id]]
    tasks, right_all, total_all = {}, 0, 0
    for task, judged in sorted(per.items()):
        right, total = pooled_accuracy(judged)
        right_all, total_all = right_all + right, total_all + total
        tasks[task] = {"pairs": sum(p.meta["task_name"] == task for p in pairs), "evaluated": total, "empty": len(judged) - total,
                       "accuracy": _r(100.0 * right / total) if total else None}  # fmt: skip
    accs = [t["accuracy"] for t in tasks.values() if t["accuracy"] is not None]
    return {"overall": _r(100.0 * right_all / total_all) if total_all else None,
            "mean_of_tasks": _r(sum(accs) / len(accs)) if accs else None, "tasks": tasks}  # fmt: skip


def score_multimodal_rewardbench(pairs: list[PreferencePair], by_id: Records, seed: int = 123) -> dict[str, Any]:
    """Accuracy per judgment, unparsed verdicts replaced by one seeded coin drawn in file order;
    ``overall`` is micro over all judgments, categories as the official script splits them."""
    rows = [(mmrb1_category(p.meta["category"], p.id), r["winner"], p.label) for p in pairs for r in by_id[p.id]]
    verdicts = coin_for_unparsed([w for _, w, _ in rows], seed)
    cats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (cat, _, label), v in zip(rows, verdicts, strict=True):
        for key in ("all", cat):
            cats[key][0] += v == label
            cats[key][1] += 1
    out = {c: {"n": n, "accuracy": _r(100.0 * k / n)} for c, (k, n) in sorted(cats.items()) if c != "all"}
    k, n = cats["all"]
    return {"overall": _r(100.0 * k / n) if n else None, "categories": out,
            "coin_flips": sum(w not in (1, 2) for _, w, _ in rows)}  # fmt: skip


def score_mjbench_video(pairs: list[PreferencePair], by_id: Records) -> dict[str, Any]:
    """Strict (undecided = wrong) and tie-aware (undecided = 0.5) accuracy over every judgment."""
    verdicts = [r["winner"] for p in pairs for r in by_id[p.id]]
    labels = [p.label for p in pairs for _ in by_id[p.id]]
    strict, aware = tie_aware_accuracy(verdicts, labels)
    return {"overall": _r(strict), "accuracy_strict": _r(strict), "accuracy_tie_aware": _r(aware), "n_pairs": len(pairs),
            "undecided_judgments": sum(v not in (1, 2) for v in verdicts)}  # fmt: skip


def score_hpdv2(pairs: list[PreferencePair], by_id: Records) -> dict[str, Any]:
    """Per prompt ``1 - discordant / C(n, 2)``: a judged pair is discordant by the share of its
    judgments that are wrong (ties and unparsed verdicts are wrong), pairs the humans tied never;
    the mean over prompts is ``overall``. Rankings are derived from the pair verdicts (Copeland) and
    ``ranking_exact`` is the share of prompts whose derived order equals the human one where the
    humans ranked every image apart."""
    groups: dict[str, list[PreferencePair]] = defaultdict(list)
    for p in pairs:
        groups[p.meta["group"]].append(p)
    scores, exact, strict_groups, right, judged = [], 0, 0, 0, 0
    for members in groups.values():
        n = members[0].meta["n_images"]
        discordant = 0.0
        wins: dict[tuple[int, int], float] = {}
        for p in members:
            recs = by_id[p.id]
            wrong = sum(r["winner"] != p.label for r in recs) / len(recs)
            discordant += wrong
            right += sum(r["winner"] == p.label for r in recs)
            judged += len(recs)
            wins[(p.meta["i"], p.meta["j"])] = sum(r["winner"] == 1 for r in recs) / len(recs)
        scores.append(inversion_score(n, discordant))
        ranks = members[0].meta["ranks"]
        if len(set(ranks)) == n:
            strict_groups += 1
            human = [sorted(ranks).index(x) for x in ranks]
            exact += ranking_from_wins(n, wins) == human
    return {"overall": _r(100.0 * sum(scores) / len(scores)) if scores else None, "prompts": len(scores),
            "pairwise_accuracy": _r(100.0 * right / judged) if judged else None,
            "ranking_exact": _r(100.0 * exact / strict_groups) if strict_groups else None}  # fmt: skip


def _right(r: dict[str, Any], p: PreferencePair) -> bool:
    return r["winner"] == p.label  # a tie verdict is right only on a human tie; unparsed is wrong


def score_editreward_tiger(pairs: list[PreferencePair], by_id: Records) -> dict[str, Any]:
    """TIGER EditReward-Bench as its pairwise-judge scripts score it: per subset the individual
    accuracy (the judge's A>B / B>A / A=B must equal the human ranking; unparsed = wrong) and, for
    3-pair and 4-pair, the group accuracy (every comparison of an original sample right); overall is
    the individual accuracy over all comparisons."""
    subsets: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    groups: dict[str, dict[str, bool]] = defaultdict(dict)
    for p in pairs:
        sub = p.meta["subset"]
        for r in by_id[p.id]:
            ok = _right(r, p)
            subsets[sub][0] += ok
            subsets[sub][1] += 1
            g = groups[sub]
            g[p.meta["group"]] = g.get(p.meta["group"], True) and ok
    out: dict[str, Any] = {}
    for sub, (k, n) in sorted(subsets.items()):
        block: dict[str, Any] = {"comparisons": sum(p.meta["subset"] == sub for p in pairs), "accuracy": _r(100.0 * k / n)}
        if sub != "2pair":
            gs = groups[sub]
            block.update(groups=len(gs), group_accuracy=_r(100.0 * sum(gs.values()) / len(gs)))
        out[sub] = block
    k = sum(v[0] for v in subsets.values())
    n = sum(v[1] for v in subsets.values())
    return {"overall": _r(100.0 * k / n) if n else None, "subsets": out}


def score_editreward_editscore(pairs: list[PreferencePair], by_id: Records) -> dict[str, Any]:
    """EditScore's EditReward-Bench: a judgment is right when it prefers the chosen edit (ties and
    unparsed verdicts are wrong); accuracy per task type, macro over task types per dimension, and
    ``overall`` = macro over task types with all dimensions pooled."""
    cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for p in pairs:
        for r in by_id[p.id]:
            for key in ((p.meta["dimension"], p.meta["task_type"]), ("all", p.meta["task_type"])):
                cells[key][0] += _right(r, p)
                cells[key][1] += 1
    dims: dict[str, Any] = {}
    for dim in sorted({d for d, _ in cells}):
        types = {t: _r(100.0 * k / n) for (d, t), (k, n) in sorted(cells.items()) if d == dim}
        accs = [v for v in types.values() if v is not None]
        dims[dim] = {"macro": _r(sum(accs) / len(accs)) if accs else None, "task_types": types}
    overall = dims.pop("all", {}).get("macro")
    return {"overall": overall, "dimensions": dims}


def score_mm_rlhf(pairs: list[PreferencePair], by_id: Records) -> dict[str, Any]:
    """MM-RLHF-RewardBench: Acc over judgments (chosen must win; ties and unparsed wrong) and Acc+
    (share of ids whose every pair is right), overall and per category (keyword of the media path)."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    ids: dict[str, dict[str, bool]] = defaultdict(dict)
    for p in pairs:
        for r in by_id[p.id]:
            ok = _right(r, p)
            for cat in ("all", p.meta["category"]):
                acc[cat][0] += ok
                acc[cat][1] += 1
                ids[cat][p.meta["group"]] = ids[cat].get(p.meta["group"], True) and ok
    cats = {c: {"n": n, "accuracy": _r(100.0 * k / n), "acc_plus": _r(100.0 * sum(ids[c].values()) / len(ids[c]))}
            for c, (k, n) in sorted(acc.items()) if c != "all"}  # fmt: skip
    k, n = acc["all"]
    return {"overall": _r(100.0 * k / n) if n else None,
            "acc_plus": _r(100.0 * sum(ids["all"].values()) / len(ids["all"])) if ids["all"] else None, "categories": cats}  # fmt: skip
