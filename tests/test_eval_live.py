"""A live run of the tiny model through the same runner."""

from __future__ import annotations

import json

from unireward.data.schema import PreferencePair, write_pairs
from unireward.eval.runner import EvalConfig, run_eval


def test_tiny_model_end_to_end(tmp_path, tiny_model, tiny_images):
    colours = [p.stem for p in tiny_images]
    pairs = [
        PreferencePair(id=f"g{i}", task="image_generation", prompt=f"a plain {colours[i]} picture",
                       candidates=(tiny_images[i].name, tiny_images[(i + 1) % 4].name), label=1, source="synthetic")  # fmt: skip
        for i in range(4)
    ]
    write_pairs(pairs, tmp_path / "pairs.jsonl")
    cfg = EvalConfig("pairs", str(tmp_path / "pairs.jsonl"), str(tmp_path / "out"), judge=str(tiny_model),
                     media_root=str(tiny_images[0].parent), order="both", batch_size=4, data_kind="synthetic",
                     judge_options={"max_new_tokens": 16})  # fmt: skip
    report = run_eval(cfg)  # the judge is built from the spec, as the CLI does
    records = [json.loads(x) for x in open(tmp_path / "out" / "predictions.jsonl")]
    assert len(records) == report["n_judgments"] == 8
    assert all(r["status"] != "error" for r in records)  # every image was found and sent to the model
    assert report["labels"]["data"] == "synthetic" and "swap_consistency" in report
    assert (tmp_path / "out" / "report.png").exists()


def test_tiny_model_pointwise_scores_each_candidate_once(tmp_path, tiny_model, tiny_images):
    idx = [(0, 1), (1, 2), (0, 2)]  # three pairs over three distinct images
    pairs = [
        PreferencePair(id=f"p{a}{b}", task="image_generation", prompt="a plain picture",
                       candidates=(tiny_images[a].name, tiny_images[b].name), label=1, source="synthetic")  # fmt: skip
        for a, b in idx
    ]
    write_pairs(pairs, tmp_path / "pairs.jsonl")
    cfg = EvalConfig("pairs", str(tmp_path / "pairs.jsonl"), str(tmp_path / "out"), judge=str(tiny_model),
                     media_root=str(tiny_images[0].parent), pointwise=True, batch_size=4, data_kind="synthetic",
                     judge_options={"max_new_tokens": 16})  # fmt: skip
    report = run_eval(cfg)
    rows = [json.loads(x) for x in open(tmp_path / "out" / "predictions.jsonl")]
    assert len(rows) == 3 and all(r["key"].startswith("score|") and r["status"] != "error" for r in rows)
    assert report["n_judgments"] == 3 and report["labels"]["mode"].startswith("pointwise")
    assert report["position"]["accuracy_reverse"] is None  # no order was shown, so none was varied
