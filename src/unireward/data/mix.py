"""Training mixtures: several pair files (or raw sources) sampled by rule into one shuffled file.

The YAML mirrors the official UnifiedReward dataset configs (``datasets:`` with ``json_path``,
``sampling_strategy``, ``image_folder``); our own spelling (``sources:`` with ``path``, ``sampling``,
``media_root``) is accepted too, and an entry may name a converter and its raw input instead of a
converted file::

    seed: 0
    swap_augment: false
    sources:
      - name: hpd
        path: data/hpd.jsonl          # pairs JSONL, or: converter: hpd + input: raw/HPDv2
        sampling: random:25%          # all | first:N | first:N% | random:N | random:N%
        media_root: raw/HPDv2         # relative media paths of this source are joined to it
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unireward.data.schema import PreferencePair, iter_pairs, write_pairs

_RULE = re.compile(r"^(all|(first|end|random):(\d+(?:\.\d+)?)(%?))$")


@dataclass(frozen=True)
class SamplingRule:
    """``all``, ``first:N``, ``end:N`` (last N), ``random:N`` (seeded), each also with ``N%``.

    >>> SamplingRule.parse("random:10%").select(list(range(50)), random.Random(0)).__len__()
    5
    >>> SamplingRule.parse("first:3").select(list("abcdef"), random.Random(0))
    ['a', 'b', 'c']
    """

    kind: str = "all"
    amount: float = 0.0
    percent: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("all", "first", "end", "random"):
            raise ValueError(f"sampling kind must be all, first, end or random, got {self.kind!r}")
        if self.amount < 0 or (self.percent and self.amount > 100):
            raise ValueError(f"sampling amount out of range: {self.amount}{'%' if self.percent else ''}")
        if not self.percent and self.amount != int(self.amount):
            raise ValueError("a sample count must be a whole number")

    @classmethod
    def parse(cls, text: str | None) -> SamplingRule:
        text = (text or "all").strip().replace(" ", "")
        m = _RULE.match(text)
        if not m:
            raise ValueError(f"bad sampling rule {text!r}; use all, first:N, end:N, random:N or random:N%")
        if m.group(1) == "all":
            return cls()
        return cls(kind=m.group(2), amount=float(m.group(3)), percent=m.group(4) == "%")

    def count(self, n: int) -> int:
        if self.kind == "all":
            return n
        k = round(n * self.amount / 100) if self.percent else int(self.amount)
        return min(k, n)

    def select(self, items: list[Any], rng: random.Random) -> list[Any]:
        k = self.count(len(items))
        if self.kind in ("all",):
            return list(items)
        if self.kind == "first":
            return items[:k]
        if self.kind == "end":
            return items[len(items) - k :]
        picked = sorted(rng.sample(range(len(items)), k))  # keep source order within the sample
        return [items[i] for i in picked]


@dataclass
class MixSource:
    name: str
    path: str | None = None
    converter: str | None = None
    input: str | None = None
    sampling: SamplingRule = field(default_factory=SamplingRule)
    media_root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("every mixture source needs a name")
        if isinstance(self.sampling, str):
            self.sampling = SamplingRule.parse(self.sampling)
        if (self.path is None) == (self.converter is None):
            raise ValueError(f"source {self.name!r}: give either a pairs file (path) or a converter with an input")
        if self.converter is not None and not self.input:
            raise ValueError(f"source {self.name!r}: converter {self.converter!r} needs an input")


@dataclass
class MixConfig:
    sources: list[MixSource]
    seed: int = 0
    swap_augment: bool = False
    base_dir: str | None = None  # relative paths in the YAML are relative to the YAML's folder

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("a mixture needs at least one source")
        names = [s.name for s in self.sources]
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise ValueError(f"duplicate source names in mixture: {dup}")

    @classmethod
    def from_dict(cls, d: dict[str, Any], base_dir: str | None = None) -> MixConfig:
        if not isinstance(d, dict):
            raise ValueError("a mixture config must be a mapping")
        entries = d.get("sources", d.get("datasets"))
        if not isinstance(entries, list):
            raise ValueError("a mixture config needs a 'sources' (or 'datasets') list")
        srcs = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise ValueError(f"source #{i + 1} must be a mapping")
            path = e.get("path", e.get("json_path"))
            name = e.get("name") or (e.get("converter") or Path(str(path)).parent.name or f"source{i + 1}")
            known = {"name", "path", "json_path", "converter", "input", "sampling", "sampling_strategy", "media_root", "image_folder", "options"}
            unknown = sorted(set(e) - known)
            if unknown:
                raise ValueError(f"source {name!r}: unknown key(s) {unknown}")
            srcs.append(MixSource(
                name=str(name), path=path, converter=e.get("converter"), input=e.get("input"),
                sampling=e.get("sampling", e.get("sampling_strategy", "all")),
                media_root=e.get("media_root", e.get("image_folder")), options=dict(e.get("options") or {}),
            ))  # fmt: skip
        return cls(sources=srcs, seed=int(d.get("seed", 0)), swap_augment=bool(d.get("swap_augment", False)), base_dir=base_dir)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> MixConfig:
        import yaml

        with open(path, encoding="utf-8") as f:
            return cls.from_dict(yaml.safe_load(f), base_dir=str(Path(path).parent))


def augment_swaps(pairs: Iterable[PreferencePair]) -> Iterator[PreferencePair]:
    """Each pair, then the same pair with candidates swapped and the label flipped.

    Ties are kept once (swapping a tie teaches nothing). A CoT target in ``meta`` names the candidates
    by position: the swapped copy gets it rewritten for the other order
    (:func:`~unireward.protocol.swap.swap_candidates`), or none when the rewrite does not read as the
    swapped label.
    """
    from unireward.protocol.parser import parse_judgment
    from unireward.protocol.swap import swap_candidates

    for p in pairs:
        yield p
        if p.label == "tie":
            continue
        s = p.swapped()
        if "cot" in s.meta:
            cot = swap_candidates(str(s.meta["cot"]))
            meta = {k: v for k, v in s.meta.items() if k != "cot"}
            if parse_judgment(cot, s.task).winner == s.label:
                meta["cot"] = cot
            s.meta = meta
        yield s


def _rebase(pair: PreferencePair, root: str) -> PreferencePair:
    def fix(ref: Any) -> Any:
        if isinstance(ref, list):
            return [fix(r) for r in ref]
        if isinstance(ref, str) and "://" not in ref and not os.path.isabs(ref):
            return os.path.join(root, ref)
        return ref

    if pair.task.is_generation:
        pair.candidates = (fix(pair.candidates[0]), fix(pair.candidates[1]))
    if pair.reference is not None:
        pair.reference = fix(pair.reference)
    return pair


@dataclass
class MixReport:
    out: str
    total: int
    per_source: dict[str, dict[str, int]]
    rejected_rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "total": self.total, "per_source": self.per_source, "bad_rows": self.rejected_rows}


def _load_source(src: MixSource, cfg: MixConfig, workdir: Path) -> tuple[list[PreferencePair], int]:
    def rel(p: str | None) -> str | None:
        if p is None or os.path.isabs(p) or cfg.base_dir is None:
            return p
        return os.path.join(cfg.base_dir, p)

    bad = 0
    if src.converter is not None:
        from unireward.data.converters import convert

        tmp = workdir / f"{src.name}.jsonl"
        rep = convert(src.converter, rel(src.input), tmp, root=rel(src.media_root), **src.options)  # type: ignore[arg-type]
        bad += rep.rejected
        path = tmp
    else:
        path = Path(rel(src.path))  # type: ignore[arg-type]
        if not path.is_file():
            raise FileNotFoundError(f"source {src.name!r}: {path} not found")
    pairs = []
    for item in iter_pairs(path, errors="yield"):
        if isinstance(item, PreferencePair):
            pairs.append(item)
        else:
            bad += 1
    if src.path is not None and src.media_root:
        root = rel(src.media_root)
        pairs = [_rebase(p, root) for p in pairs]  # type: ignore[arg-type]
    return pairs, bad


def mix(cfg: MixConfig, out: str | os.PathLike[str]) -> MixReport:
    """Sample every source by its rule, optionally add swapped copies, shuffle once, write ``out``.

    Per-source counts are written beside the output (``<out>.counts.json``) and returned.
    """
    import json
    import tempfile

    rng = random.Random(cfg.seed)
    out = Path(out)
    rows: list[PreferencePair] = []
    counts: dict[str, dict[str, int]] = {}
    bad_rows: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as work:
        for src in cfg.sources:
            pairs, bad = _load_source(src, cfg, Path(work))
            # Each source gets its own stream so adding a source never changes another one's sample.
            picked = src.sampling.select(pairs, random.Random(f"{cfg.seed}:{src.name}"))
            if cfg.swap_augment:
                picked = list(augment_swaps(picked))
            for p in picked:
                p.meta = {**p.meta, "mix_source": src.name}
            counts[src.name] = {"available": len(pairs), "selected": len(picked)}
            bad_rows[src.name] = bad
            rows.extend(picked)
    seen: set[str] = set()
    for p in rows:  # ids must stay unique across sources
        if p.id in seen:
            p.id = f"{p.meta['mix_source']}/{p.id}"
        seen.add(p.id)
    rng.shuffle(rows)
    n = write_pairs(rows, out)
    report = MixReport(out=str(out), total=n, per_source=counts, rejected_rows=bad_rows)
    out.with_name(out.name + ".counts.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return report
