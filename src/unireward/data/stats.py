"""Counts of a pairs file: per task, label and source, plus bad rows and missing media."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from unireward.data.schema import PreferencePair, iter_pairs
from unireward.media import resolve


@dataclass
class PairStats:
    total: int = 0
    bad_rows: int = 0
    by_task: Counter[str] = field(default_factory=Counter)
    by_label: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    label_by_task: dict[str, Counter[str]] = field(default_factory=dict)
    with_cot: int = 0
    media_checked: int = 0
    media_missing: int = 0
    missing_examples: list[str] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)

    def add(self, p: PreferencePair, root: str | None, check_media: bool) -> None:
        self.total += 1
        task, label = p.task.value, str(p.label)
        self.by_task[task] += 1
        self.by_label[label] += 1
        self.by_source[p.source or "?"] += 1
        self.label_by_task.setdefault(task, Counter())[label] += 1
        self.with_cot += "cot" in p.meta
        if check_media:
            for m in p.media_paths():
                if "://" in m:
                    continue
                self.media_checked += 1
                if not os.path.exists(resolve(m, root)):
                    self.media_missing += 1
                    if len(self.missing_examples) < 5:
                        self.missing_examples.append(m)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total, "bad_rows": self.bad_rows, "by_task": dict(self.by_task),
            "by_label": dict(self.by_label), "by_source": dict(self.by_source),
            "label_by_task": {k: dict(v) for k, v in self.label_by_task.items()}, "with_cot": self.with_cot,
            "media": {"checked": self.media_checked, "missing": self.media_missing, "missing_examples": self.missing_examples},
            "first_errors": self.first_errors,
        }  # fmt: skip


def pair_stats(path: str | os.PathLike[str], root: str | None = None, check_media: bool = True) -> PairStats:
    """Statistics of a pairs JSONL; media paths are resolved against ``root``."""
    st = PairStats()
    for item in iter_pairs(path, errors="yield"):
        if isinstance(item, PreferencePair):
            st.add(item, root, check_media)
        else:
            st.bad_rows += 1
            if len(st.first_errors) < 5:
                st.first_errors.append(str(item))
    return st
