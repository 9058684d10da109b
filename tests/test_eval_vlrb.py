"""VL-RewardBench on the real annotations: loading, categories, conventions, the CLI JSON."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import VLRB

from unireward.cli import main
from unireward.eval.benchmarks import load_vl_rewardbench
from unireward.eval.runner import EvalConfig, run_eval
from unireward.judge.base import BaseJudge
from unireward.protocol import parse_judgment


@pytest.fixture(scope="module")
def rows(shared_data):
    return [json.loads(x) for x in open(VLRB)]


@pytest.fixture(scope="module")
def pairs(shared_data):
    return load_vl_rewardbench(str(VLRB))


def test_all_annotations_load_with_the_right_labels(rows, pairs):
    assert len(pairs) == len(rows) == 1250
    assert len({p.id for p in pairs}) == 1250  # repeated ids are made unique
    flipped = [(r, p) for r, p in zip(rows, pairs, strict=True) if r["human_ranking"] == [1, 0]]
    assert len(flipped) == 5
    for r, p in flipped:  # human_ranking[i] == 0 marks the preferred response
        assert p.label == 2 and p.candidates[1] == r["response"][1] and p.meta["item_id"] == r["id"]
    assert Counter(p.label for p in pairs) == {1: 1245, 2: 5}
    assert all(p.reference == r["image_path"] and p.prompt == r["query"] for r, p in zip(rows, pairs, strict=True))


def test_category_counts_both_mappings(pairs):
    assert Counter(p.meta["category"] for p in pairs) == {"hallucination": 749, "reasoning": 318, "general": 183}
    assert Counter(p.meta["category_legacy"] for p in pairs) == {"general": 631, "hallucination": 301, "reasoning": 318}


def test_cli_json_shape_and_shorter_baseline(rows, tmp_path, capsys):
    argv = ["eval", "vl-rewardbench", "--annotations", str(VLRB), "--judge", "baseline:shorter", "--json", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    for mapping in ("official", "legacy"):
        block = out[mapping]
        assert set(block) == {"overall", "macro", "categories"}
        assert set(block["categories"]) == {"general", "hallucination", "reasoning"}
        cats = block["categories"].values()
        assert sum(c["n"] for c in cats) == 1250 and all(isinstance(c["n"], int) for c in cats)
        assert block["macro"] == pytest.approx(sum(c["accuracy"] for c in cats) / 3, abs=1e-3)
        assert block["overall"] == pytest.approx(sum(c["n"] * c["accuracy"] for c in cats) / 1250, abs=1e-3)
    # The shorter answer is chosen whatever the order; only equal lengths depend on it.
    pref = [r["response"][r["human_ranking"].index(0)] for r in rows]
    other = [r["response"][1 - r["human_ranking"].index(0)] for r in rows]
    wins = sum(len(a) < len(b) for a, b in zip(pref, other, strict=True))
    equal = sum(len(a) == len(b) for a, b in zip(pref, other, strict=True))
    assert 100 * wins / 1250 <= out["official"]["overall"] <= 100 * (wins + equal) / 1250
    assert out["official"]["overall"] == out["legacy"]["overall"]  # mappings only regroup items
    assert out["official"]["macro"] != out["legacy"]["macro"]
    legacy_rows = [ln for ln in (tmp_path / "report.md").read_text().splitlines() if ln.startswith("| legacy/")]
    assert len(legacy_rows) == 5 and all(ln.endswith("| legacy (POVID = general) |") for ln in legacy_rows)


def test_candidate_order_matters_on_this_data(tmp_path):
    """1245 of 1250 preferred answers come first: showing them as-is rewards position bias."""
    as_is = run_eval(EvalConfig("vl-rewardbench", str(VLRB), str(tmp_path / "a"), judge="baseline:first", order="as-is"))
    shuffled = run_eval(EvalConfig("vl-rewardbench", str(VLRB), str(tmp_path / "b"), judge="baseline:first"))
    assert as_is["results"]["official"]["overall"] == pytest.approx(99.6)
    assert 45 < shuffled["results"]["official"]["overall"] < 55


class SilentOnReasoning(BaseJudge):
    """Answers 'Answer 1 is better' except on reasoning items, where the output has no verdict."""

    name = "test:silent-on-reasoning"
    needs_media = False

    def compare_batch(self, pairs, media_root=None):
        out = []
        for p in pairs:
            text = "<think>?</think>" if p.id.startswith(("mathverse", "mmmu")) else "<think>.</think><answer>Answer 1 is better</answer>"
            out.append(parse_judgment(text, p.task))
        return out


def test_unparsed_excluded_or_wrong(tmp_path):
    common = dict(benchmark="vl-rewardbench", data=str(VLRB), order="as-is")
    excl = run_eval(EvalConfig(**common, out_dir=str(tmp_path / "x"), unparsed="exclude"), judge=SilentOnReasoning())
    wrong = run_eval(EvalConfig(**common, out_dir=str(tmp_path / "w"), unparsed="wrong"), judge=SilentOnReasoning())
    assert excl["results"]["unparsed_pairs"] == 318
    assert excl["results"]["official"]["categories"]["reasoning"]["accuracy"] is None  # nothing counted
    assert wrong["results"]["official"]["categories"]["reasoning"]["accuracy"] == 0.0
    # 932 judged items, 5 of them prefer answer 2.
    assert excl["results"]["official"]["overall"] == pytest.approx(100 * 927 / 932, abs=1e-3)
    assert wrong["results"]["official"]["overall"] == pytest.approx(100 * 927 / 1250, abs=1e-3)


def test_majority_vote_over_samples(tmp_path):
    r = run_eval(EvalConfig("vl-rewardbench", str(VLRB), str(tmp_path), judge="baseline:random", samples=3, limit=200))
    assert r["n_judgments"] == 600
    preds = [json.loads(x) for x in open(tmp_path / "predictions.jsonl")]
    assert {p["sample"] for p in preds} == {0, 1, 2}
    assert r["results"]["unparsed_pairs"] == 0  # three votes between two answers always decide
