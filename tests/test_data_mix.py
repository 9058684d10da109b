"""Mixtures: sampling rules, per-source counts, seeded shuffling, swap augmentation, official YAML shape."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from unireward.data.mix import MixConfig, MixSource, SamplingRule, augment_swaps, mix
from unireward.data.schema import PreferencePair, read_pairs, write_pairs


def _pairs(prefix: str, n: int, task: str = "image_generation") -> list[PreferencePair]:
    return [
        PreferencePair(id=f"{prefix}{i}", task=task, prompt=f"caption {i}", candidates=(f"{prefix}/{i}a.png", f"{prefix}/{i}b.png"),
                       label=1 + i % 2, source=prefix)
        for i in range(n)
    ]  # fmt: skip


@pytest.fixture()
def files(tmp_path):
    write_pairs(_pairs("a", 40), tmp_path / "a.jsonl")
    write_pairs(_pairs("b", 10), tmp_path / "b.jsonl")
    return tmp_path


@pytest.mark.parametrize(
    "rule,n,expected",
    [("all", 40, 40), ("first:5", 40, 5), ("first:50", 40, 40), ("random:25%", 40, 10), ("random:7", 40, 7), ("end:3", 40, 3), ("first:10%", 40, 4)],
)
def test_sampling_rule_counts(rule, n, expected):
    assert len(SamplingRule.parse(rule).select(list(range(n)), random.Random(0))) == expected


@pytest.mark.parametrize("bad", ["some", "random:", "first:-1", "random:150%", "random:2.5", "top:3"])
def test_bad_sampling_rules_are_refused(bad):
    with pytest.raises(ValueError):
        SamplingRule.parse(bad)


def test_mix_counts_shuffle_and_determinism(files):
    cfg = MixConfig(sources=[MixSource("a", path=str(files / "a.jsonl"), sampling="random:50%"),
                             MixSource("b", path=str(files / "b.jsonl"), sampling="first:4")], seed=3)  # fmt: skip
    rep = mix(cfg, files / "mix.jsonl")
    assert rep.total == 24
    assert rep.per_source == {"a": {"available": 40, "selected": 20}, "b": {"available": 10, "selected": 4}}
    out = read_pairs(files / "mix.jsonl")
    assert sorted(p.id for p in out if p.source == "b") == ["b0", "b1", "b2", "b3"]
    assert [p.source for p in out] != sorted(p.source for p in out)  # shuffled, not concatenated
    assert json.loads((files / "mix.jsonl.counts.json").read_text())["total"] == 24
    mix(cfg, files / "again.jsonl")
    assert (files / "mix.jsonl").read_text() == (files / "again.jsonl").read_text()
    cfg.seed = 4
    mix(cfg, files / "other.jsonl")
    assert (files / "mix.jsonl").read_text() != (files / "other.jsonl").read_text()


def test_adding_a_source_keeps_the_others_sample(files):
    one = MixConfig(sources=[MixSource("a", path=str(files / "a.jsonl"), sampling="random:5")])
    two = MixConfig(sources=[MixSource("b", path=str(files / "b.jsonl")), MixSource("a", path=str(files / "a.jsonl"), sampling="random:5")])
    mix(one, files / "1.jsonl")
    mix(two, files / "2.jsonl")
    ids = lambda f: {p.id for p in read_pairs(files / f) if p.source == "a"}  # noqa: E731
    assert ids("1.jsonl") == ids("2.jsonl")


def test_swap_augmentation_doubles_and_flips(files):
    pairs = _pairs("a", 4) + [PreferencePair(id="t", task="image_generation", prompt="x", candidates=("1", "2"), label="tie")]
    pairs[0].meta["cot"] = "<think>..</think><answer>Image 1 is better</answer>"
    out = list(augment_swaps(pairs))
    assert len(out) == 9
    orig, sw = out[0], out[1]
    assert sw.candidates == orig.candidates[::-1] and sw.label == 3 - orig.label and sw.id == orig.id + "#swap"
    assert sw.meta["cot"] == "<think>..</think><answer>Image 2 is better</answer>"  # rewritten for the other order
    pairs[1].meta["cot"] = f"<think>..</think><answer>Image {pairs[1].label} is better</answer>"
    assert list(augment_swaps(pairs[1:2]))[1].meta["cot"].endswith(f"Image {3 - pairs[1].label} is better</answer>")
    pairs[2].meta["cot"] = "no verdict here"  # nothing to rewrite to the swapped label: the copy has no CoT
    assert "cot" not in list(augment_swaps(pairs[2:3]))[1].meta
    cfg = MixConfig(sources=[MixSource("b", path=str(files / "b.jsonl"))], swap_augment=True)
    assert mix(cfg, files / "s.jsonl").total == 20


def test_official_yaml_shape_and_media_root(files):
    (files / "cfg").mkdir()
    conf = {"datasets": [{"json_path": "../a.jsonl", "sampling_strategy": "first:2", "image_folder": "media/A"}]}
    (files / "cfg" / "mix.yaml").write_text(yaml.safe_dump(conf))
    rep = mix(MixConfig.from_yaml(files / "cfg" / "mix.yaml"), files / "m.jsonl")
    assert rep.total == 2
    p = read_pairs(files / "m.jsonl")[0]
    assert p.candidates[0].replace("\\", "/").endswith("cfg/media/A/a/0a.png")


def test_converter_entries_and_validation(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("m", Path(__file__).parent / "fixtures/sources/materialize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    mod.materialize("hpd", tmp_path / "hpd")
    cfg = MixConfig.from_dict({"sources": [{"name": "hpd", "converter": "hpd", "input": str(tmp_path / "hpd")}]})
    rep = mix(cfg, tmp_path / "m.jsonl")
    assert rep.total == 3 and rep.rejected_rows == {"hpd": 1}
    with pytest.raises(ValueError, match="unknown key"):
        MixConfig.from_dict({"sources": [{"path": "x", "weight": 2}]})
    with pytest.raises(ValueError, match="either"):
        MixSource("x")
    with pytest.raises(ValueError, match="duplicate"):
        MixConfig(sources=[MixSource("a", path="x"), MixSource("a", path="y")])


def test_repo_mixture_config_parses():
    from pathlib import Path

    cfg = MixConfig.from_yaml(Path(__file__).parents[1] / "configs/mixtures/unifiedreward_think.yaml")
    assert [s.name for s in cfg.sources][:2] == ["hpd", "oip"] and len(cfg.sources) == 8
