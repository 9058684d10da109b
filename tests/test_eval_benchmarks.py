"""MMRB2, Multimodal RewardBench, MJ-Bench-Video and HPDv2: fixtures written in each benchmark's
published format (real JPEG/PNG/mp4 files), run through loader, runner and metric, and checked
against a brute-force computation that reads the raw files and the judge's raw outputs."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image
from serve_util import video_bytes

from unireward.cli import main
from unireward.data.schema import SchemaError
from unireward.eval.benchmarks import get_benchmark
from unireward.eval.runner import EvalConfig, run_eval
from unireward.judge.base import BaseJudge
from unireward.media import resolve
from unireward.protocol import answer_label, parse_judgment

# --- a judge whose verdicts are known from its raw text -------------------------------------------


class HashJudge(BaseJudge):
    """Names candidate 1, candidate 2, or nothing (an unparsable answer), by a hash of what it is
    shown; checks that every media file it is given exists where the runner resolved it."""

    name = "test:hash"
    needs_media = True

    def compare_batch(self, pairs, media_root=None):
        out = []
        for p in pairs:
            for path in p.media_paths():
                assert os.path.exists(resolve(path, media_root)), path
            h = hashlib.sha256(f"{p.id}|{p.candidates}".encode()).digest()[0] % 3
            text = "<think>unsure</think> no verdict" if h == 2 else f"<think>.</think><answer>{answer_label(p.task, h + 1)}</answer>"
            out.append(parse_judgment(text, p.task))
        return out


def shown_verdict(text: str) -> str | None:
    """'A' / 'B' for the candidate named in the raw output, in the order it was shown."""
    m = re.search(r"<answer>\w+ ([12]) is better</answer>", text)
    return None if m is None else "AB"[int(m.group(1)) - 1]


def predictions(out: Path) -> list[dict]:
    return [json.loads(x) for x in open(out / "predictions.jsonl")]


def jpeg(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (96, 80)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="PNG" if path.suffix == ".png" else "JPEG")


# --- MMRB2 ---------------------------------------------------------------------------------------


def _content(*parts):
    return [list(p) for p in parts]


@pytest.fixture()
def mmrb2(tmp_path):
    root = tmp_path / "mmrb2"
    rng = random.Random(0)

    def img(name):
        jpeg(root / name, tuple(rng.randrange(256) for _ in range(3)))
        return name

    def pair(pid, prompt, a, b, chosen):
        return {"id": pid, "response_a": {"model_name": "m1", "response_content": a},
                "response_b": {"model_name": "m2", "response_content": b}, "chosen": chosen,
                "human_annotations": [6, 5, 6], "prompt_source": "src", "prompt_metadata": {"id": 1}, "prompt_content": prompt}  # fmt: skip

    t2i = [pair(f"t{i}", _content(("text", f"a red cube number {i}")), _content(("image", img(f"images/t{i}_0.jpg"))),
                _content(("image", img(f"images/t{i}_1.jpg"))), "AB"[i % 3 == 0]) for i in range(7)]  # fmt: skip
    t2i.append(pair("t_img", _content(("image", img("input_images/x.jpg")), ("text", "like this")),
                    _content(("image", img("images/x0.jpg"))), _content(("image", img("images/x1.jpg"))), "A"))  # fmt: skip
    edit = [pair(f"e{i}", _content(("image", img(f"input_images/e{i}.jpg")), ("text", "make it blue")),
                 _content(("image", img(f"images/e{i}_0.jpg"))), _content(("image", img(f"images/e{i}_1.jpg"))), "BA"[i % 2])
            for i in range(4)]  # fmt: skip
    edit.append(pair("e_multi", _content(("image", img("input_images/m1.jpg")), ("image", img("input_images/m2.jpg")), ("text", "merge")),
                     _content(("image", img("images/m_0.jpg"))), _content(("image", img("images/m_1.jpg"))), "A"))  # fmt: skip
    inter = [pair("i0", _content(("text", "a story")), _content(("text", "once"), ("image", img("images/i0a.jpg"))),
                  _content(("text", "upon"), ("image", img("images/i0b.jpg"))), "A")]  # fmt: skip
    reason = [pair(f"r{i}", _content(("image", img(f"input_images/r{i}.jpg")), ("text", "how many cubes?")),
                   _content(("text", "three")), _content(("text", "Let me count: four")), "AB"[i % 2]) for i in range(3)]  # fmt: skip
    reason.append(pair("r_img", _content(("image", img("input_images/ri.jpg")), ("text", "where?")),
                       _content(("text", "here"), ("image", img("images/crop.jpg"))), _content(("text", "there")), "B"))  # fmt: skip
    for name, rows in (("t2i", t2i), ("edit", edit), ("interleaved", inter), ("reasoning", reason)):
        (root / f"{name}.json").write_text(json.dumps({"pairs": rows}, indent=2))
    return root


def brute_mmrb2(root: Path, preds: list[dict]) -> dict[str, float]:
    """MMRB2's compute_accuracy: forward verdict vs chosen, reverse verdict flipped vs chosen; empty
    verdicts leave the denominator; overall is micro over tasks."""
    by_key = {p["key"]: p for p in preds}
    totals = {}
    for task in ("t2i", "edit", "reasoning"):
        right = n = 0
        for pair in json.loads((root / f"{task}.json").read_text())["pairs"]:
            for orient in ("orig", "swap"):
                rec = by_key.get(f"{task}/{pair['id']}|0|{orient}")
                if rec is None:
                    continue
                v = shown_verdict(rec["text"])
                if v is None:
                    continue
                if orient == "swap":
                    v = {"A": "B", "B": "A"}[v]
                n += 1
                right += v == pair["chosen"]
        totals[task] = (right, n)
    out = {t: 100 * r / n for t, (r, n) in totals.items()}
    out["overall"] = 100 * sum(r for r, _ in totals.values()) / sum(n for _, n in totals.values())
    return out


def test_mmrb2_against_its_scorer(mmrb2, tmp_path, capsys):
    assert main(["eval", "mmrb2", "--data", str(mmrb2), "--judge", "baseline:first", "--json", "--out", str(tmp_path / "f")]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["labels"]["order"] == "both"  # MMRB2's scorer judges both orders
    assert first["overall"] == 50.0 and first["position"]["consistency"] == 0.0
    assert all(t["accuracy"] == 50.0 for t in first["results"]["tasks"].values())
    assert first["results"]["tasks"]["t2i"]["pairs"] == 7 and first["results"]["tasks"]["edit"]["pairs"] == 4
    sk = first["skipped"]
    assert sk["records"] == 4 and any("interleaved" in r for r in sk["reasons"]) and any("2 input images" in r for r in sk["reasons"])
    assert any(e.startswith("t2i.json:") for e in sk["examples"])

    r = run_eval(EvalConfig("mmrb2", str(mmrb2), str(tmp_path / "h"), judge="test:hash"), judge=HashJudge())
    want = brute_mmrb2(mmrb2, predictions(tmp_path / "h"))
    assert r["overall"] == pytest.approx(want["overall"], abs=1e-4)
    for task in ("t2i", "edit", "reasoning"):
        assert r["results"]["tasks"][task]["accuracy"] == pytest.approx(want[task], abs=1e-4)
    assert r["results"]["tasks"]["t2i"]["empty"] > 0  # the hash judge leaves some verdicts empty
    md = (tmp_path / "h" / "report.md").read_text()
    assert "published, not measured here" in md.lower() and "UnifiedReward (Qwen2.5-VL-7B)" in md


def test_mmrb2_malformed_pair_is_named(mmrb2, tmp_path):
    doc = json.loads((mmrb2 / "edit.json").read_text())
    doc["pairs"][2]["chosen"] = "C"
    (mmrb2 / "edit.json").write_text(json.dumps(doc, indent=2))
    with pytest.raises(SchemaError, match=r"edit\.json:\d+.*field 'chosen'"):
        get_benchmark("mmrb2").load(str(mmrb2), task="edit", skipped=[])
    bad: list[SchemaError] = []
    pairs = get_benchmark("mmrb2").load(str(mmrb2), bad=bad, skipped=[])
    assert len(bad) == 1 and len([p for p in pairs if p.meta["task_name"] == "edit"]) == 3
    line = int(re.search(r"edit\.json:(\d+)", str(bad[0])).group(1))
    assert '"id": "e2"' in (mmrb2 / "edit.json").read_text().splitlines()[line]  # the record's first line is its "{"


# --- Multimodal RewardBench ----------------------------------------------------------------------


@pytest.fixture()
def mmrb1(tmp_path):
    root = tmp_path / "data"
    rows = []
    cats = [("safety", "PAIRS-1"), ("safety", "hateful-2"), ("reasoning", "mathvista-3"), ("reasoning", "EMMA-Coding-4"),
            ("correctness", "nocaps-5"), ("preference", "visitbench-6"), ("knowledge", "mmmu-s-7"), ("vqa", "MMBench-8")]  # fmt: skip
    for n, (cat, rid) in enumerate(cats * 2):
        jpeg(root / "images" / f"{n}.jpg", (n * 20, 10, 200))
        rows.append({"ID": f"{rid}-{n}", "Text": f"Question {n}?", "Image": f"images/{n}.jpg", "Output1": "short" if n % 2 else "a long answer",
                     "Output2": "a longer answer here" if n % 2 else "brief", "Better": "Output2" if n % 3 else "Output1", "Category": cat})  # fmt: skip
    (root / "all_data.json").write_text(json.dumps(rows, indent=2))
    return root / "all_data.json"


def test_multimodal_rewardbench_against_its_scorer(mmrb1, tmp_path):
    r = run_eval(EvalConfig("multimodal-rewardbench", str(mmrb1), str(tmp_path / "h"), judge="test:hash", order="as-is"), judge=HashJudge())
    # the official 2_get_accuracy.py: [[A]] / [[B]], else one random.Random(123) coin in file order
    rows = json.loads(mmrb1.read_text())
    preds = {p["id"]: p for p in predictions(tmp_path / "h")}
    rng = random.Random(123)
    accs = defaultdict(list)
    for ex in rows:
        v = shown_verdict(preds[ex["ID"]]["text"])
        pred = v if v else ("A" if rng.random() < 0.5 else "B")
        ok = int(pred == ("B" if ex["Better"] == "Output2" else "A"))
        accs["all"].append(ok)
        cat = ex["Category"]
        if cat == "safety":
            cat = "safety/bias" if ex["ID"].lower().startswith("pairs") else "safety/toxicity"
        elif cat == "reasoning":
            cat = "reasoning/math" if ex["ID"].lower().startswith("math") else "reasoning/coding"
        accs[cat].append(ok)
    assert r["overall"] == pytest.approx(100 * sum(accs["all"]) / len(accs["all"]), abs=1e-4)
    assert set(r["results"]["categories"]) == set(accs) - {"all"}
    for cat, oks in accs.items():
        if cat != "all":
            assert r["results"]["categories"][cat]["accuracy"] == pytest.approx(100 * sum(oks) / len(oks), abs=1e-4)
    assert r["results"]["coin_flips"] > 0
    assert r["labels"]["tie_convention"].startswith("no ties") and "123" in r["labels"]["tie_convention"]
    both = run_eval(EvalConfig("multimodal-rewardbench", str(mmrb1), str(tmp_path / "f"), judge="baseline:first", order="both"))
    assert both["overall"] == 50.0 and both["position"]["consistency"] == 0.0
    assert set(both["position_groups"]) == set(accs) - {"all"}


def test_multimodal_rewardbench_bad_label_is_named(mmrb1):
    rows = json.loads(mmrb1.read_text())
    rows[3]["Better"] = "Output3"
    mmrb1.write_text(json.dumps(rows, indent=2))
    with pytest.raises(SchemaError, match=r"all_data\.json:\d+.*field 'Better'"):
        get_benchmark("multimodal-rewardbench").load(str(mmrb1))


# --- MJ-Bench-Video ------------------------------------------------------------------------------


@pytest.fixture()
def mjvideo(tmp_path):
    videos = tmp_path / "videos" / "test"
    videos.mkdir(parents=True)
    prefs = ["Video 1 better", "Video 2 Better", "Same", "Hard to judge", "video 1 better", "Video 2 better", "Video 1 Better", "Same"]
    rows = []
    for n, pref in enumerate(prefs):
        for k in (0, 1):
            (videos / f"{n}_{k}.mp4").write_bytes(video_bytes(8, (64, 48)))
        rows.append({"caption": f"a dog runs {n}", "video_0_path": f"test/{n}_0.mp4", "video_1_path": f"test/{n}_1.mp4",
                     "video_0_label": {"object": 1}, "video_1_label": {"object": 1}, "category_preference": {"Alignment": "Same"},
                     "overall_preference": pref, "discard": False, "video_0_total_score": 1, "video_1_total_score": 0})  # fmt: skip
    (tmp_path / "test.json").write_text(json.dumps(rows, indent=4))
    return tmp_path / "test.json", tmp_path / "videos"


def test_mjbench_video_strict_and_tie_aware(mjvideo, tmp_path):
    data, videos = mjvideo
    r = run_eval(EvalConfig("mjbench-video", str(data), str(tmp_path / "h"), judge="test:hash", media_root=str(videos), order="both"),
                 judge=HashJudge())  # fmt: skip
    rows = json.loads(data.read_text())
    assert r["n_pairs"] == 5 and r["skipped"]["records"] == 3  # Same x2 and Hard to judge dropped, as the official scripts do
    strict = aware = n = 0
    for p in predictions(tmp_path / "h"):
        idx = int(p["id"].removeprefix("mj"))
        want = 1 if rows[idx]["overall_preference"].lower() == "video 1 better" else 2
        v = shown_verdict(p["text"])
        w = None if v is None else (("AB".index(v) + 1) if not p["swapped"] else 2 - "AB".index(v))
        n += 1
        strict += w == want
        aware += (w == want) + 0.5 * (w is None)
    assert r["results"]["accuracy_strict"] == pytest.approx(100 * strict / n, abs=1e-4)
    assert r["results"]["accuracy_tie_aware"] == pytest.approx(100 * aware / n, abs=1e-4)
    first = run_eval(EvalConfig("mjbench-video", str(data), str(tmp_path / "f"), judge="baseline:first", media_root=str(videos), order="both"))
    assert first["overall"] == 50.0 and first["position"]["consistency"] == 0.0


def test_mjbench_video_unknown_preference_is_named(mjvideo):
    data, _ = mjvideo
    rows = json.loads(data.read_text())
    rows[1]["overall_preference"] = "Video 3 better"
    data.write_text(json.dumps(rows, indent=4))
    with pytest.raises(SchemaError, match=r"test\.json:\d+.*field 'overall_preference'"):
        get_benchmark("mjbench-video").load(str(data), skipped=[])


# --- HPDv2 ---------------------------------------------------------------------------------------


@pytest.fixture()
def hpdv2(tmp_path):
    root = tmp_path / "HPD"
    rows = []
    for n, ranks in enumerate([[1, 2, 3, 4], [2, 1, 1, 3], [3, 1, 2], [1, 2]]):
        paths = []
        for k in range(len(ranks)):
            jpeg(root / "test" / f"{n}_{k}.png", (40 * k, 90, 30 * n), (64, 64))
            paths.append(f"{n}_{k}.png")
        rows.append({"prompt": f"a painting of a fox {n}", "image_path": paths, "rank": ranks,
                     "raw_annotation": [{"rank": ranks, "user_hash": "u1"}]})  # fmt: skip
    (root / "test.json").write_text(json.dumps(rows, indent=2))
    return root


def test_hpdv2_inversion_score_against_hpsv2_formula(hpdv2, tmp_path):
    r = run_eval(EvalConfig("hpdv2", str(hpdv2 / "test.json"), str(tmp_path / "h"), judge="test:hash", media_root=str(hpdv2 / "test"),
                            order="both"), judge=HashJudge())  # fmt: skip
    rows = json.loads((hpdv2 / "test.json").read_text())
    preds = defaultdict(list)
    for p in predictions(tmp_path / "h"):
        preds[p["id"]].append(p)
    scores = []
    for n, row in enumerate(rows):
        ranks, k = row["rank"], len(row["rank"])
        disc = 0.0
        for i, j in itertools.combinations(range(k), 2):
            if ranks[i] == ranks[j]:
                continue  # HPSv2: a human tie is never discordant
            pid = next(q for q in preds if q.endswith(f":{i}-{j}") and _group_of(q, hpdv2) == n)
            recs = preds[pid]
            better = 1 if ranks[i] < ranks[j] else 2
            wrong = 0
            for p in recs:
                v = shown_verdict(p["text"])
                w = None if v is None else ("AB".index(v) + 1 if not p["swapped"] else 2 - "AB".index(v))
                wrong += w != better
            disc += wrong / len(recs)
        scores.append(1 - disc / (k * (k - 1) / 2))
    assert r["overall"] == pytest.approx(100 * sum(scores) / len(scores), abs=1e-4)
    assert r["results"]["prompts"] == 4
    assert r["n_pairs"] == 6 + 5 + 3 + 1  # the tied pair of prompt 1 is not judged
    first = run_eval(EvalConfig("hpdv2", str(hpdv2 / "test.json"), str(tmp_path / "f"), judge="baseline:first", order="both"))
    assert first["position"]["accuracy"] == 50.0 and first["position"]["consistency"] == 0.0
    assert first["results"]["pairwise_accuracy"] == 50.0


def _group_of(pid: str, root: Path) -> int:
    """Which record (prompt) a pair id belongs to: ids are ``p<record>:<i>-<j>``."""
    return int(pid.split(":")[0][1:])


class RedScoreJudge(BaseJudge):
    """Pointwise: an image's score is its mean red value, read from the file; counts its calls."""

    name = "test:red"
    needs_media = True

    def __init__(self):
        self.scored: list[str] = []

    def compare_batch(self, pairs, media_root=None):
        raise AssertionError("a pointwise run must not ask for pairwise verdicts")

    def score_many(self, items, media_root=None):
        from types import SimpleNamespace

        out = []
        for it in items:
            self.scored.append(it["candidate"])
            red = Image.open(resolve(it["candidate"], media_root)).convert("RGB").getpixel((0, 0))[0]
            out.append(SimpleNamespace(score=float(red), status="ok", reason="", text=f"score {red}", error=None))
        return out


def test_hpdv2_pointwise_scores_each_image_once(hpdv2, tmp_path):
    judge = RedScoreJudge()
    r = run_eval(EvalConfig("hpdv2", str(hpdv2 / "test.json"), str(tmp_path / "p"), judge="test:red", media_root=str(hpdv2 / "test"),
                            pointwise=True), judge=judge)  # fmt: skip
    rows = json.loads((hpdv2 / "test.json").read_text())
    assert sorted(judge.scored) == sorted(x for row in rows for x in row["image_path"])  # 11 images, not 15 pairs
    assert r["labels"]["order"] == "as-is" and r["labels"]["mode"].startswith("pointwise")

    def hps_inversion(p1, p2):  # HPSv2's formula on a model ranking p1 and the human ranks p2
        n = len(p1)
        cnt = sum((p1[i] > p1[j] and p2[i] < p2[j]) or (p1[i] < p1[j] and p2[i] > p2[j]) for i in range(n - 1) for j in range(i + 1, n))
        return 1 - cnt / (n * (n - 1) / 2)

    want = []
    for row in rows:
        reds = [Image.open(hpdv2 / "test" / x).convert("RGB").getpixel((0, 0))[0] for x in row["image_path"]]
        order = sorted(range(len(reds)), key=lambda k: -reds[k])
        want.append(hps_inversion([order.index(k) for k in range(len(reds))], row["rank"]))
    assert r["overall"] == pytest.approx(100 * sum(want) / len(want), abs=1e-4)
    again = RedScoreJudge()
    assert run_eval(EvalConfig("hpdv2", str(hpdv2 / "test.json"), str(tmp_path / "p"), judge="test:red", media_root=str(hpdv2 / "test"),
                               pointwise=True), judge=again)["overall"] == r["overall"] and again.scored == []  # resumed: nothing rescored


def test_hpdv2_rank_length_mismatch_is_named(hpdv2):
    rows = json.loads((hpdv2 / "test.json").read_text())
    rows[2]["rank"] = [1, 2]
    (hpdv2 / "test.json").write_text(json.dumps(rows, indent=2))
    with pytest.raises(SchemaError, match=r"test\.json:\d+.*field 'rank'"):
        get_benchmark("hpdv2").load(str(hpdv2 / "test.json"))


def test_random_baseline_gives_chance_on_large_files(tmp_path):
    """Baselines need no media: 1,500 MMRB2 t2i pairs and 300 HPDv2 prompts of 4 images, both orders."""
    root = tmp_path / "mmrb2"
    root.mkdir()
    img = lambda n: [["image", f"images/{n}.jpg"]]  # noqa: E731
    rows = [{"id": f"t{i}", "prompt_content": [["text", f"caption {i}"]], "response_a": {"response_content": img(f"{i}a")},
             "response_b": {"response_content": img(f"{i}b")}, "chosen": "AB"[i % 5 == 0]} for i in range(1500)]  # fmt: skip
    (root / "t2i.json").write_text(json.dumps({"pairs": rows}))
    r = run_eval(EvalConfig("mmrb2", str(root), str(tmp_path / "m"), judge="baseline:random"))
    assert 47.0 < r["overall"] < 53.0 and 47.0 < r["position"]["consistency"] < 53.0
    assert 47.0 < r["position"]["first_slot_rate"] < 53.0 and r["position"]["label_first_rate"] == pytest.approx(80.0)
    hpd = [{"prompt": f"p{n}", "image_path": [f"{n}_{k}.jpg" for k in range(4)], "rank": [1, 2, 3, 4]} for n in range(300)]
    (tmp_path / "test.json").write_text(json.dumps(hpd))
    h = run_eval(EvalConfig("hpdv2", str(tmp_path / "test.json"), str(tmp_path / "h"), judge="baseline:random", order="both"))
    assert 47.0 < h["overall"] < 53.0 and h["n_pairs"] == 1800
    f = run_eval(EvalConfig("hpdv2", str(tmp_path / "test.json"), str(tmp_path / "f"), judge="baseline:first", order="as-is"))
    assert f["overall"] == 100.0 and f["results"]["ranking_exact"] == 100.0  # every rank lists the best image first


def test_eval_list_names_every_benchmark_and_the_nc_licences(capsys):
    assert main(["eval", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name in ("mmrb2", "multimodal-rewardbench", "mjbench-video", "hpdv2", "genai-bench", "vl-rewardbench"):
        assert rows[name]["data_format"] and rows[name]["metric"]
    assert "CC BY-NC" in rows["mmrb2"]["licence"] and "CC BY-NC" in rows["multimodal-rewardbench"]["licence"]
    assert rows["mmrb2"]["default_order"] == "both"
