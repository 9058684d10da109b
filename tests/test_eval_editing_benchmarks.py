"""EditReward-Bench (TIGER-Lab and EditScore variants), MM-RLHF-RewardBench and GenAI-Bench test_v1:
fixtures in the released on-disk formats (parquet with embedded PNG bytes as the hub stores Image
columns, JSON lines with real image files and a frame folder), loader -> runner -> metric, checked
against brute-force re-implementations of the official scoring."""

from __future__ import annotations

import io
import json
from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_eval_benchmarks import HashJudge, predictions, shown_verdict

from unireward.cli import main
from unireward.data.schema import SchemaError
from unireward.eval.benchmarks import get_benchmark
from unireward.eval.runner import EvalConfig, run_eval


def png(color, size=(72, 64)) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


# --- TIGER-Lab EditReward-Bench ------------------------------------------------------------------


def tiger_rows():
    rows = []
    twos = ["A>B", "B>A", "A=B", "A>B", "B>A"]
    for n, r in enumerate(twos):
        rows.append(("2pair", f"s2{n:03d}_0", "AvsB", r))
    orders = {"3pair": ["ACB", "BAC"], "4pair": ["DCBA", "ABCD"]}
    for sub, perms in orders.items():
        for g, perm in enumerate(perms):
            letters = sorted(perm)
            k = 0
            for i in range(len(letters)):
                for j in range(i + 1, len(letters)):
                    a, b = letters[i], letters[j]
                    winner = a if perm.index(a) < perm.index(b) else b
                    loser = b if winner == a else a
                    rows.append((sub, f"{sub[0]}g{g}_{k}", f"{a}vs{b}", f"{winner}>{loser}"))
                    k += 1
    return rows


@pytest.fixture()
def tiger(tmp_path):
    rows = tiger_rows()
    table = {
        "id": [r[1] for r in rows], "instruction": [f"make the sky {i} times bluer" for i in range(len(rows))],
        "source_image": [png((10, 10, 10)) for _ in rows], "candidate_1": [png((200, i, 0)) for i in range(len(rows))],
        "candidate_2": [png((0, i, 200)) for i in range(len(rows))], "ranking": [r[3] for r in rows],
        "comparison_type": [r[2] for r in rows], "dataset": [r[0] for r in rows],
        "model_1": ["m1"] * len(rows), "model_2": ["m2"] * len(rows),
    }  # fmt: skip
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.table(table), path)
    return path


def brute_tiger(path, preds):
    """The official pairwise-judge scoring: model vote string == human ranking; group = id prefix."""
    rows = pq.read_table(path).to_pylist()
    by_id = defaultdict(list)
    for p in preds:
        by_id[p["id"]].append(p)
    ok_sub, groups = defaultdict(list), defaultdict(lambda: defaultdict(list))
    for row in rows:
        a, b = row["comparison_type"].split("vs")
        human = row["ranking"].replace("A<B", "B>A")
        for p in by_id[row["id"]]:
            v = shown_verdict(p["text"])
            if v is None:
                vote = "Unknown"
            else:
                first = (v == "A") != p["swapped"]  # the candidate_1 image won
                vote = f"{a}>{b}" if first else f"{b}>{a}"
            ok = vote == human
            ok_sub[row["dataset"]].append(ok)
            groups[row["dataset"]][row["id"].split("_")[0]].append(ok)
    acc = {s: 100 * sum(v) / len(v) for s, v in ok_sub.items()}
    group = {s: 100 * sum(all(x) for x in g.values()) / len(g) for s, g in groups.items()}
    overall = 100 * sum(sum(v) for v in ok_sub.values()) / sum(len(v) for v in ok_sub.values())
    return acc, group, overall


def test_tiger_against_its_scripts(tiger, tmp_path):
    r = run_eval(EvalConfig("editreward-bench", str(tiger), str(tmp_path / "h"), judge="test:hash", variant="tiger", order="both"),
                 judge=HashJudge())  # fmt: skip
    acc, group, overall = brute_tiger(tiger, predictions(tmp_path / "h"))
    assert r["overall"] == pytest.approx(overall, abs=1e-4)
    subs = r["results"]["subsets"]
    assert subs["2pair"]["comparisons"] == 5 and subs["3pair"]["comparisons"] == 6 and subs["4pair"]["comparisons"] == 12
    for s in ("2pair", "3pair", "4pair"):
        assert subs[s]["accuracy"] == pytest.approx(acc[s], abs=1e-4)
    for s in ("3pair", "4pair"):
        assert subs[s]["groups"] == 2 and subs[s]["group_accuracy"] == pytest.approx(group[s], abs=1e-4)
    assert r["labels"]["variant"] == "tiger"
    assert set(r["position_groups"]) == {"2pair", "3pair", "4pair"}
    # the images came from the parquet's embedded bytes, extracted once under the run folder
    assert len(list((tmp_path / "h" / "media").glob("*.png"))) == 3 * 23


def test_tiger_first_baseline_and_subset(tiger, tmp_path, capsys):
    argv = ["eval", "editreward-bench", "--variant", "tiger", "--data", str(tiger), "--judge", "baseline:first", "--order", "both",
            "--task", "4pair", "--json", "--out", str(tmp_path / "f")]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_pairs"] == 12 and out["overall"] == 50.0 and out["position"]["consistency"] == 0.0
    assert out["results"]["subsets"]["4pair"]["group_accuracy"] == 0.0  # never all six right in both orders
    assert main(["eval", "editreward-bench", "--data", str(tiger), "--judge", "baseline:first"]) != 0  # the variant is required
    assert "--variant" in capsys.readouterr().err


def test_tiger_bad_ranking_is_named(tiger, tmp_path):
    t = pq.read_table(tiger).to_pydict()
    t["ranking"][7] = "A>D"  # not the letters this row compares
    bad_file = tmp_path / "bad.parquet"
    pq.write_table(pa.table(t), bad_file)
    with pytest.raises(SchemaError, match=r"bad\.parquet:row 7.*field 'ranking'"):
        get_benchmark("editreward-bench").load(str(bad_file), variant="tiger", cache_dir=tmp_path / "m")


# --- EditScore EditReward-Bench ------------------------------------------------------------------


@pytest.fixture()
def editscore(tmp_path):
    types = ["background_change", "color_alter", "subject_add"]
    dims = ["prompt_following", "consistency", "overall"]
    rows = [{"key": [f"k{n}a", f"k{n}b"], "instruction": f"edit {n}", "input_image": png((n, 0, 0)),
             "output_images": [png((0, n, 0)), png((0, 0, n))], "task_type": types[n % 3], "dimension": dims[(n // 3) % 3]}
            for n in range(18)]  # fmt: skip
    path = tmp_path / "editscore.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_editscore_macro_over_task_types(editscore, tmp_path):
    r = run_eval(EvalConfig("editreward-bench", str(editscore), str(tmp_path / "h"), judge="test:hash", variant="editscore",
                            order="random"), judge=HashJudge())  # fmt: skip
    rows = pq.read_table(editscore).to_pylist()
    preds = {p["id"]: p for p in predictions(tmp_path / "h")}
    cells = defaultdict(list)
    for row in rows:
        p = preds[f"{row['key'][0]}|{row['key'][1]}|{row['dimension']}"]
        v = shown_verdict(p["text"])
        ok = v is not None and ((v == "A") != p["swapped"])  # the chosen (index 0) edit won
        cells[(row["dimension"], row["task_type"])].append(ok)
        cells[("all", row["task_type"])].append(ok)
    def macro(dim):
        accs = [100 * sum(v) / len(v) for (d, _), v in cells.items() if d == dim]
        return sum(accs) / len(accs)
    assert r["overall"] == pytest.approx(macro("all"), abs=1e-4)
    for dim in ("prompt_following", "consistency", "overall"):
        assert r["results"]["dimensions"][dim]["macro"] == pytest.approx(macro(dim), abs=1e-4)
    assert r["position"]["label_first_rate"] == 100.0  # chosen always first: the file is one-sided
    as_is = run_eval(EvalConfig("editreward-bench", str(editscore), str(tmp_path / "a"), judge="baseline:first", variant="editscore",
                                order="as-is"))  # fmt: skip
    assert as_is["overall"] == 100.0  # ... which is why an unshuffled run rewards position bias
    both = run_eval(EvalConfig("editreward-bench", str(editscore), str(tmp_path / "b"), judge="baseline:first", variant="editscore",
                               order="both"))  # fmt: skip
    assert both["overall"] == 50.0 and both["position"]["consistency"] == 0.0


# --- MM-RLHF-RewardBench -------------------------------------------------------------------------


@pytest.fixture()
def mmrlhf(tmp_path):
    rows = []
    for n in range(10):
        cat = ["mcq", "long", "short", "safety"][n % 4]
        img = tmp_path / "images" / cat / f"{n}.jpg"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (80, 60), (n * 20, 50, 90)).save(img)
        for k in range(1 + n % 3):  # several pairs share an id
            rows.append({"id": f"q{n}", "image": f"images/{cat}/{n}.jpg", "prompt": f"question {n}?", "chosen": f"good {k}",
                         "rejected": f"bad answer {k}"})  # fmt: skip
    frames = tmp_path / "videos" / "video" / "v0"
    frames.mkdir(parents=True)
    for f in range(4):
        Image.new("RGB", (64, 48), (f * 60, 0, 0)).save(frames / f"{f:03d}.jpg")
    rows += [{"id": "vid0", "video": "videos/video/v0", "prompt": "what moves?", "chosen": "a red square", "rejected": "nothing"}] * 2
    path = tmp_path / "mm_reward_bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mm_rlhf_acc_and_acc_plus(mmrlhf, tmp_path):
    r = run_eval(EvalConfig("mm-rlhf-rewardbench", str(mmrlhf), str(tmp_path / "h"), judge="test:hash", order="both"), judge=HashJudge())
    rows = [json.loads(x) for x in open(mmrlhf)]
    preds = defaultdict(list)
    for p in predictions(tmp_path / "h"):
        preds[p["id"]].append(p)
    seen, oks, per_id, per_cat = defaultdict(int), [], defaultdict(list), defaultdict(list)
    for row in rows:
        seen[row["id"]] += 1
        media = row.get("image") or row.get("video")
        cat = next((k for k in ("mcq", "long", "short", "safety", "video") if k in media), "other")
        for p in preds[f"{row['id']}#{seen[row['id']]}"]:
            v = shown_verdict(p["text"])
            ok = v is not None and ((v == "A") != p["swapped"])
            oks.append(ok)
            per_id[row["id"]].append(ok)
            per_cat[cat].append(ok)
    assert r["overall"] == pytest.approx(100 * sum(oks) / len(oks), abs=1e-4)
    assert r["results"]["acc_plus"] == pytest.approx(100 * sum(all(v) for v in per_id.values()) / len(per_id), abs=1e-4)
    assert r["results"]["categories"]["video"]["n"] == 4 and set(r["results"]["categories"]) == set(per_cat)
    for cat, v in per_cat.items():
        assert r["results"]["categories"][cat]["accuracy"] == pytest.approx(100 * sum(v) / len(v), abs=1e-4)
    first = run_eval(EvalConfig("mm-rlhf-rewardbench", str(mmrlhf), str(tmp_path / "f"), judge="baseline:first", order="both"))
    assert first["overall"] == 50.0 and first["results"]["acc_plus"] == 0.0 and first["position"]["consistency"] == 0.0


def test_mm_rlhf_missing_media_field_is_named(tmp_path):
    path = tmp_path / "mm_reward_bench.jsonl"
    path.write_text(json.dumps({"id": "a", "image": "x.jpg", "prompt": "p", "chosen": "c", "rejected": "r"}) + "\n"
                    + json.dumps({"id": "b", "prompt": "p", "chosen": "c", "rejected": "r"}) + "\n")  # fmt: skip
    with pytest.raises(SchemaError, match=r"mm_reward_bench\.jsonl:2.*field 'image'"):
        get_benchmark("mm-rlhf-rewardbench").load(str(path))


# --- GenAI-Bench test_v1 -------------------------------------------------------------------------


def test_genai_bench_test_v1_names_the_split_and_checks_its_size(tmp_path, tiny_images):
    rows = [{"left_image": tiny_images[i % 4].name, "right_image": tiny_images[(i + 1) % 4].name, "prompt": f"p{i}",
             "vote_type": ["leftvote", "rightvote", "tievote", "bothbad_vote"][i % 4]} for i in range(8)]  # fmt: skip
    data = tmp_path / "image_generation.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_eval(EvalConfig("genai-bench", str(data), str(tmp_path / "o"), judge="baseline:first", split="test_v1", order="both",
                            media_root=str(tiny_images[0].parent)))  # fmt: skip
    assert r["labels"]["split"] == "test_v1"
    assert r["results"]["split_check"] == {"image_generation": {"pairs": 8, "test_v1_pairs": 1735, "matches": False}}
    # official 4-way accuracy: the 2-way judge can never be right on tie votes (half the file) -> 25
    assert r["overall"] == 25.0
    assert r["position"]["accuracy"] == 50.0 and r["position"]["consistency"] == 0.0  # over decided votes only
