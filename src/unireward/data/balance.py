"""Balanced candidate order for training sets.

A judge trained on pairs whose preferred candidate sits mostly in one slot learns the slot. And
rejection sampling hands a slot-biased judge's errors to GRPO, a set skewed to the other label, where a
constant answer maximises ``1[answer == label]`` and, once a group agrees, its advantage is 0.
``order_balance`` fixes every training set's order:

- ``none``: the pairs as they come;
- ``swap_half``: per task and per label, a seeded half of the pairs is shown the other way round, so
  each label appears in each slot equally (to one pair) and the label prior is 1/2;
- ``both_orders``: every pair followed by its swapped copy (J1-style; GRPO keeps the two in one batch).

A swapped pair gets the id ``<id>#swap`` (:meth:`PreferencePair.swapped`); a record's chain of
thought is rewritten with :func:`~unireward.protocol.swap.swap_candidates` and kept only if the parser
reads it to the swapped label (otherwise the record stays unswapped, and is counted).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from unireward.data.schema import PreferencePair
from unireward.protocol.parser import parse_judgment
from unireward.protocol.swap import swap_candidates

ORDER_BALANCE = ("none", "swap_half", "both_orders")
SWAP_SUFFIX = "#swap"


def check_mode(mode: str) -> str:
    """``mode`` if it is an order-balance mode, else a ``ValueError`` naming the choices.

    >>> check_mode("swap_half")
    'swap_half'
    >>> check_mode("half")
    Traceback (most recent call last):
    ...
    ValueError: order_balance must be one of none, swap_half, both_orders, got 'half'
    """
    if mode not in ORDER_BALANCE:
        raise ValueError(f"order_balance must be one of {', '.join(ORDER_BALANCE)}, got {mode!r}")
    return mode


def base_id(pair_id: str) -> str:
    """The id of the pair a (possibly swapped) pair was made from.

    >>> base_id("p7#swap"), base_id("p7")
    ('p7', 'p7')
    """
    return pair_id.removesuffix(SWAP_SUFFIX)


def _rank(seed: int, pair_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{pair_id}".encode()).hexdigest()


def swap_choice(pairs: Iterable[PreferencePair], seed: int) -> set[str]:
    """The ids to show swapped: in each (task, label) group of ``n`` pairs, the ``n // 2`` ranked first
    by a hash of (seed, id). Independent of the input order; ties are never swapped.

    >>> ps = [PreferencePair(f"p{i}", "image_generation", "x", ("a.png", "b.png"), 1) for i in range(5)]
    >>> len(swap_choice(ps, seed=0)), swap_choice(ps, 0) == swap_choice(ps[::-1], 0)
    (2, True)
    """
    groups: dict[tuple[str, Any], list[str]] = defaultdict(list)
    for p in pairs:
        if p.label != "tie":
            groups[(p.task.value, p.label)].append(p.id)
    chosen: set[str] = set()
    for ids in groups.values():
        chosen.update(sorted(ids, key=lambda i: _rank(seed, i))[: len(ids) // 2])
    return chosen


def balance_pairs(pairs: list[PreferencePair], mode: str, seed: int = 0) -> list[PreferencePair]:
    """The pairs in the order ``mode`` asks for (input order kept; a swapped copy follows its pair).

    >>> ps = [PreferencePair(f"p{i}", "image_generation", "x", ("a.png", "b.png"), 2) for i in range(4)]
    >>> [p.label for p in balance_pairs(ps, "swap_half")]
    [2, 1, 1, 2]
    >>> [p.id for p in balance_pairs(ps[:2], "both_orders")]
    ['p0', 'p0#swap', 'p1', 'p1#swap']
    """
    check_mode(mode)
    if mode == "none":
        return list(pairs)
    if mode == "both_orders":
        return [q for p in pairs for q in ((p,) if p.label == "tie" else (p, p.swapped()))]
    chosen = swap_choice(pairs, seed)
    return [p.swapped() if p.id in chosen else p for p in pairs]


def swap_record(record: dict[str, Any], text_key: str = "completion") -> dict[str, Any] | None:
    """A training record (``{"pair": ..., "completion": ...}``) for the swapped pair, or ``None`` when
    its completion cannot be rewritten to a text the strict parser reads as the swapped label."""
    pair = PreferencePair.from_dict(record["pair"])
    swapped = pair.swapped()
    out = {**record, "pair": swapped.to_dict()}
    if text_key in record:
        text = swap_candidates(record[text_key])
        j = parse_judgment(text, swapped.task, strict=True)
        if not (j.ok and j.winner == swapped.label):
            return None
        out[text_key] = text
    return out


def balance_records(records: list[dict[str, Any]], mode: str, seed: int = 0, text_key: str = "completion") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(records, stats)``: SFT or GRPO records with their pairs (and chains of thought) balanced by
    ``mode``; ``stats`` has the per-task slot counts before and after, and how many records could not
    be swapped (kept as they were)."""
    check_mode(mode)
    pairs = [PreferencePair.from_dict(r["pair"]) for r in records]
    before = slot_counts(pairs)
    unswappable = 0
    out: list[dict[str, Any]] = []
    chosen = swap_choice(pairs, seed) if mode == "swap_half" else set()
    for rec, pair in zip(records, pairs, strict=True):
        want_swap = pair.label != "tie" and (mode == "both_orders" or pair.id in chosen)
        swapped = swap_record(rec, text_key) if want_swap else None
        if want_swap and swapped is None:
            unswappable += 1
        if mode == "both_orders":
            out += [rec] if swapped is None else [rec, swapped]
        else:
            out.append(swapped or rec)
    after = slot_counts([PreferencePair.from_dict(r["pair"]) for r in out])
    stats = {"mode": mode, "seed": seed, "records": len(out), "swapped": sum(r["pair"]["id"].endswith(SWAP_SUFFIX) for r in out),
             "unswappable": unswappable, "before": before, "after": after}  # fmt: skip
    return out, stats


def slot_counts(pairs: Iterable[PreferencePair]) -> dict[str, dict[str, Any]]:
    """Per task: how many pairs have the preferred candidate in slot 1 and in slot 2, and the share in
    slot 1 (the label prior; ties are not counted).

    >>> ps = [PreferencePair(f"p{i}", "image_generation", "x", ("a.png", "b.png"), 1 + (i % 3 == 0)) for i in range(6)]
    >>> slot_counts(ps)
    {'image_generation': {'label_1': 4, 'label_2': 2, 'label_1_share': 0.667}}
    """
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for p in pairs:
        if p.label != "tie":
            counts[p.task.value][int(p.label)] += 1
    out = {}
    for task in sorted(counts):
        c = counts[task]
        n = c[1] + c[2]
        out[task] = {"label_1": c[1], "label_2": c[2], "label_1_share": round(c[1] / n, 3) if n else None}
    return out


def label_prior_check(pairs: Iterable[PreferencePair], low: float = 0.4, high: float = 0.6) -> dict[str, Any]:
    """Per-task label prior of a set (share of pairs preferring slot 1) and a warning for each task
    outside ``[low, high]``: on such a set a constant answer earns most of an accuracy reward.

    >>> ps = [PreferencePair(f"p{i}", "image_generation", "x", ("a.png", "b.png"), 1 + (i < 7)) for i in range(10)]
    >>> label_prior_check(ps)["warnings"]
    ['image_generation: 3 of 10 pairs prefer slot 1 (label prior 0.30, outside 0.4-0.6)']
    """
    counts = slot_counts(pairs)
    warnings = [
        f"{task}: {c['label_1']} of {c['label_1'] + c['label_2']} pairs prefer slot 1 (label prior {c['label_1_share']:.2f}, outside {low}-{high})"
        for task, c in counts.items() if c["label_1_share"] is not None and not low <= c["label_1_share"] <= high
    ]  # fmt: skip
    return {"per_task": counts, "bounds": [low, high], "warnings": warnings}
