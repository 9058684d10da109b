"""Exporters: TRL, verl/EasyR1 and LLaMA-Factory layouts built from the one prompt builder."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unireward.cli import main
from unireward.data.converters import convert
from unireward.data.export import ExportConfig, export_pairs, sft_target
from unireward.data.schema import PreferencePair, read_pairs
from unireward.protocol.templates import render_text
from unireward.rewards import compute_score

_spec = importlib.util.spec_from_file_location("materialize", Path(__file__).parent / "fixtures/sources/materialize.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    base = tmp_path_factory.mktemp("src")
    out = {}
    for name, folder in (("imagegen-cot-5k", "imagegen_cot"), ("videodpo", "videodpo"), ("sharegptvideo-dpo", "sharegptvideo"), ("hpd", "hpd")):
        src = _mod.materialize(folder, base / folder)
        convert(name, src, base / f"{name}.jsonl")
        out[name] = read_pairs(base / f"{name}.jsonl")
    return out


def _jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_trl_sft_and_grpo_rows(sources, tmp_path):
    pairs = sources["imagegen-cot-5k"] + sources["hpd"]
    rep = export_pairs(pairs, tmp_path, ExportConfig(format="trl"))
    sft, grpo = _jsonl(tmp_path / "sft.jsonl"), _jsonl(tmp_path / "grpo.jsonl")
    assert rep.rows == len(sft) == len(grpo) == 6 and rep.with_cot == 3
    row = sft[0]
    parts = row["prompt"][0]["content"]
    assert [p["type"] for p in parts] == ["image", "image", "text"] and "image" not in parts[0]
    assert parts[2]["text"] == render_text("image_generation", pairs[0].prompt)  # the one prompt builder
    assert len(row["images"]) == 2 and all((tmp_path / p).is_file() for p in row["images"])  # relative to the folder
    assert row["completion"][0]["content"][0]["text"] == pairs[0].meta["cot"]
    hpd_rows = [r for r in sft if r["id"].startswith("hpd")]
    assert {r["completion"][0]["content"][0]["text"] for r in hpd_rows} <= {"Image 1 is better", "Image 2 is better"}
    g = {r["id"]: r for r in grpo}
    for p in pairs:
        assert g[p.id]["label"] == p.label_text and g[p.id]["task"] == "image_generation"


def test_videos_become_frames_for_trl(sources, tmp_path):
    rep = export_pairs(sources["videodpo"], tmp_path, ExportConfig(format="trl", frames=4, trl_kinds=("grpo",)))
    rows = _jsonl(tmp_path / "grpo.jsonl")
    assert rep.rows == 3
    for r in rows:
        types = [p["type"] for p in r["prompt"][0]["content"]]
        assert types == ["image"] * 8 + ["text"] and len(r["images"]) == 8
        assert r["label"] in ("Video 1 is better", "Video 2 is better")
    with pytest.raises(ValueError, match="frames"):
        ExportConfig(format="trl", video_as="video")


def test_ties_are_skipped_and_swap_doubles(sources, tmp_path):
    pairs = sources["sharegptvideo-dpo"]  # 2 decided pairs + 1 tie
    rep = export_pairs(pairs, tmp_path, ExportConfig(format="trl", swap=True))
    assert rep.skipped["tie"] == 1 and rep.rows == 4
    rows = {r["id"]: r for r in _jsonl(tmp_path / "grpo.jsonl")}
    for pid, r in rows.items():
        if pid.endswith("#swap"):
            assert r["label"] != rows[pid[: -len("#swap")]]["label"]


def test_sft_target_ignores_a_cot_that_disagrees():
    p = PreferencePair(id="a", task="video_understanding", prompt="q", candidates=("x", "y"), label=1, reference="v.mp4",
                       meta={"cot": "<think>t</think><answer>Answer 2 is better</answer>"})  # fmt: skip
    assert sft_target(p) == "Answer 1 is better"


def test_verl_parquet_and_reward(sources, tmp_path):
    pairs = sources["hpd"] + sources["videodpo"]
    export_pairs(pairs, tmp_path, ExportConfig(format="verl", video_as="video"))
    rows = pq.read_table(tmp_path / "train.parquet").to_pylist()
    assert len(rows) == 6
    img = next(r for r in rows if r["extra_info"]["task"] == "image_generation")
    vid = next(r for r in rows if r["extra_info"]["task"] == "video_generation")
    assert img["prompt"][0]["content"].startswith("<image><image>Given a caption") and len(img["images"]) == 2
    assert img["images"][0]["image"].endswith(".jpg") and img["videos"] == []
    assert (img["images"][0]["min_pixels"], img["images"][0]["max_pixels"]) == (3136, 147456)  # the judge's budget
    assert vid["prompt"][0]["content"].startswith("<video><video>") and len(vid["videos"]) == 2
    assert vid["videos"][0]["nframes"] == 8 and Path(vid["videos"][0]["video"]).is_absolute()
    gt = img["reward_model"]["ground_truth"]
    assert compute_score(img["data_source"], f"<think>x</think><answer>{gt}</answer>", gt)["score"] == 2.0


def test_easyr1_flavor_and_embedded_images(sources, tmp_path):
    export_pairs(sources["hpd"], tmp_path, ExportConfig(format="verl", flavor="easyr1", embed_images=True))
    row = pq.read_table(tmp_path / "train.parquet").to_pylist()[0]
    assert row["problem"].count("<image>") == 2 and row["answer"] == row["reward_model"]["ground_truth"]
    assert row["images"][0]["bytes"].startswith(b"\x89PNG") and "videos" not in row


def test_llamafactory(sources, tmp_path):
    pairs = sources["imagegen-cot-5k"] + sources["sharegptvideo-dpo"]
    export_pairs(pairs, tmp_path, ExportConfig(format="llamafactory"))
    data = json.loads((tmp_path / "unireward.json").read_text())
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["unireward"]["formatting"] == "sharegpt" and info["unireward"]["columns"]["images"] == "images"
    assert len(data) == 5
    for rec in data:
        human, gpt = rec["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        assert human["value"].count("<image>") == len(rec["images"]) > 0
    assert data[0]["conversations"][1]["value"].startswith("<think>")


def test_cli_convert_stats_export(tmp_path, capsys):
    src = _mod.materialize("hpd", tmp_path / "hpd", with_media=False)
    assert main(["data", "convert", "--source", "hpd", str(src), "--out", str(tmp_path / "p.jsonl")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["written"] == 3 and rep["rejected"] == 1
    assert main(["data", "stats", str(tmp_path / "p.jsonl")]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["by_label"] == {"1": 1, "2": 2} and st["by_source"] == {"hpd": 3}
    assert st["media"] == {"checked": 6, "missing": 6, "missing_examples": st["media"]["missing_examples"]}
    _mod.materialize("hpd", tmp_path / "hpd2")
    main(["data", "convert", "--source", "hpd", str(tmp_path / "hpd2"), "--out", str(tmp_path / "q.jsonl")])
    capsys.readouterr()
    assert main(["data", "export", str(tmp_path / "q.jsonl"), "--format", "llamafactory", "--out", str(tmp_path / "lf")]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 3


def _easyr1_reward():
    """The reward file loaded the way EasyR1 loads it: by path, as a module of its own."""
    import unireward.integrations.easyr1 as entry

    spec = importlib.util.spec_from_file_location("custom_reward_fn", entry.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.compute_score


def _easyr1_read(path):
    """A faithful reading of EasyR1's RLHFDataset: parquet through `datasets`, the image branch whenever
    the `images` key exists, the prompt string split on its media tokens, `answer` as ground truth."""
    import datasets

    out = []
    for example in datasets.load_dataset("parquet", data_files=str(path), split="train"):
        kind = "images" if "images" in example else "videos" if "videos" in example else None
        token = {"images": "<image>", "videos": "<video>"}[kind]
        media = example[kind]
        assert len(example["problem"].split(token)) - 1 == len(media)
        assert all(os.path.isfile(m) for m in media), media
        out.append({"kind": kind, "media": media, "ground_truth": example["answer"]})
    return out


def test_exports_load_from_another_directory(sources, tmp_path, monkeypatch):
    """Each consumer's way of resolving paths, from a working directory other than the export's."""
    import datasets
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    from unireward.data.export import load_trl_dataset

    big = tmp_path / "media" / "big.png"
    big.parent.mkdir()
    Image.new("RGB", (1360, 752), "red").save(big)
    wide = PreferencePair(id="big", task="image_generation", prompt="a red field", candidates=("big.png", "big.png"), label=1)
    pairs = sources["hpd"] + [wide]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    for fmt, flavor in (("trl", "verl"), ("verl", "verl"), ("verl", "easyr1"), ("llamafactory", "verl")):
        export_pairs(pairs, f"out_{fmt}_{flavor}", ExportConfig(format=fmt, flavor=flavor, media_root=str(big.parent)))
    export_pairs(sources["videodpo"], "out_easyr1_video", ExportConfig(format="verl", flavor="easyr1", video_as="video"))
    out = tmp_path / "a"
    monkeypatch.chdir(tmp_path / "b")

    ds = load_trl_dataset(out / "out_trl_verl" / "sft.jsonl")  # relative to the file's folder
    assert ds[len(pairs) - 1]["images"][0].size == (1360, 752)

    rows = pq.read_table(out / "out_verl_verl" / "train.parquet").to_pylist()
    cell = rows[-1]["images"][0]
    assert Path(cell["image"]).is_file()
    # verl hands the dict to qwen-vl-utils, which sizes the image within the row's bounds
    h, w = smart_resize(752, 1360, factor=28, min_pixels=cell["min_pixels"], max_pixels=cell["max_pixels"])
    assert h * w <= 147456 and h * w // (28 * 28) < 190  # visual tokens per image at the judge's budget

    read = _easyr1_read(out / "out_verl_easyr1" / "train.parquet")
    assert {r["kind"] for r in read} == {"images"}
    video = _easyr1_read(out / "out_easyr1_video" / "train.parquet")
    assert {r["kind"] for r in video} == {"videos"} and all(m.endswith(".mp4") for r in video for m in r["media"])
    with pytest.raises(ValueError, match="cannot mix image rows and video rows"):
        export_pairs(sources["hpd"] + sources["videodpo"], "mixed", ExportConfig(format="verl", flavor="easyr1", video_as="video"))

    reward = _easyr1_reward()
    inputs = [{"response": f"<think>x</think><answer>{r['ground_truth']}</answer>", "response_length": 12,
               "ground_truth": r["ground_truth"]} for r in read]  # fmt: skip
    assert all(s == {"overall": 2.0, "format": 1.0, "accuracy": 1.0} for s in reward(inputs))  # batch mode
    assert reward({**inputs[0], "response": "no tags"})["overall"] == 0.0  # sequential mode

    # LLaMA-Factory: dataset_info.json names the file; media_dir defaults to the dataset folder, and
    # each path is joined to it when that makes a file
    lf = out / "out_llamafactory_verl"
    info = json.loads((lf / "dataset_info.json").read_text())["unireward"]
    data = datasets.load_dataset("json", data_files=str(lf / info["file_name"]), split="train")
    for rec in data:
        images = rec[info["columns"]["images"]]
        assert images and all(os.path.isfile(os.path.join(str(lf), m)) for m in images)
        assert not any(os.path.isabs(m) for m in images)


def _easyr1_manager(path: str):
    """EasyR1's own dispatch (its AutoRewardManager after v0.3.2): the file loaded by path, its
    ``REWARD_TYPE`` attribute (default "batch") choosing how the scores are asked for."""
    spec = importlib.util.spec_from_file_location("custom_reward_fn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    kind = getattr(module, "REWARD_TYPE", "batch")

    def compute(inputs):
        if kind == "batch":
            return module.compute_score(inputs)
        if kind == "sequential":
            return [module.compute_score(x) for x in inputs]
        raise ValueError(f"Unsupported reward type: {kind}.")

    return kind, compute


def test_easyr1_reads_the_reward_type_from_the_file():
    import unireward.integrations.easyr1 as batch_entry
    import unireward.integrations.easyr1_sequential as seq_entry

    good = {"response": "<think>t</think><answer>Image 1 is better</answer>", "response_length": 9,
            "ground_truth": "Image 1 is better"}  # fmt: skip
    inputs = [good, {**good, "response": "<answer>Image 2 is better</answer>"}]
    seen = {}
    for entry in (batch_entry, seq_entry):
        kind, compute = _easyr1_manager(entry.__file__)
        seen[kind] = [s["overall"] for s in compute(inputs)]
    assert seen == {"batch": [2.0, 0.0], "sequential": [2.0, 0.0]}


def test_a_moved_trl_or_llamafactory_export_still_loads(sources, tmp_path):
    """Media outside the export folder are brought into it: no path climbs out (``../src/...``), so
    the folder loads after a move."""
    import shutil

    import datasets

    from unireward.data.export import load_trl_dataset

    pairs = sources["hpd"] + sources["videodpo"]
    export_pairs(pairs, tmp_path / "trl", ExportConfig(format="trl"))
    export_pairs(pairs, tmp_path / "lf", ExportConfig(format="llamafactory", video_as="video"))
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("trl", "lf"):
        shutil.move(str(tmp_path / name), str(moved / name))
    for kind in ("sft", "grpo"):
        rows = _jsonl(moved / "trl" / f"{kind}.jsonl")
        assert all(not p.startswith("..") and not os.path.isabs(p) for r in rows for p in r["images"])
        ds = load_trl_dataset(moved / "trl" / f"{kind}.jsonl")
        assert len(ds) == len(pairs) and all(im.size[0] > 0 for r in ds for im in r["images"])
    info = json.loads((moved / "lf" / "dataset_info.json").read_text())["unireward"]
    data = datasets.load_dataset("json", data_files=str(moved / "lf" / info["file_name"]), split="train")
    paths = [m for rec in data for m in rec["images"] + (rec.get("videos") or [])]
    assert paths and all(not m.startswith("..") and os.path.isfile(moved / "lf" / m) for m in paths)


def test_a_refused_easyr1_export_leaves_no_folder(sources, tmp_path):
    out = tmp_path / "easyr1_mixed"
    with pytest.raises(ValueError, match="cannot mix image rows and video rows"):
        export_pairs(sources["hpd"] + sources["videodpo"], out, ExportConfig(format="verl", flavor="easyr1", video_as="video"))
    assert not out.exists()
    kept = tmp_path / "existing"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(ValueError):
        export_pairs(sources["hpd"] + sources["videodpo"], kept, ExportConfig(format="verl", flavor="easyr1", video_as="video"))
    assert (kept / "notes.txt").read_text() == "mine"  # a folder it did not create is left as it was


def test_parquet_exports_hold_plain_arrow_types(sources, tmp_path):
    """A consumer reads the parquet in its own environment (its own pyarrow, datasets, transformers):
    the files hold only plain Arrow types (strings, integers, lists, structs, bytes), no extension
    types and no pandas metadata that would tie them to our versions."""
    import pyarrow as pa

    def plain(t: pa.DataType) -> bool:
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return plain(t.value_type)
        if pa.types.is_struct(t):
            return all(plain(t.field(i).type) for i in range(t.num_fields))
        return any(f(t) for f in (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer,
                                  pa.types.is_floating, pa.types.is_boolean, pa.types.is_binary, pa.types.is_null))  # fmt: skip

    for name, cfg in (("verl", ExportConfig(format="verl")), ("easyr1", ExportConfig(format="verl", flavor="easyr1")),
                      ("embedded", ExportConfig(format="verl", embed_images=True))):  # fmt: skip
        export_pairs(sources["hpd"], tmp_path / name, cfg)
        schema = pq.read_schema(tmp_path / name / "train.parquet")
        assert all(plain(f.type) for f in schema), (name, schema)
        assert not (schema.metadata or {}).get(b"pandas"), name
