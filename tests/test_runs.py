"""Reruns, resume and failures, command by command: a rerun with other settings is refused naming
the keys, failures make the exit status non-zero, and each bad input is named and survived."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from unireward.cli import main
from unireward.data.schema import PreferencePair, SchemaError, read_pairs, write_pairs
from unireward.rows import RowWriter, read_rows


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


def _image_pairs(path: Path, images: list[Path], n: int, missing: Path | None = None) -> Path:
    pairs = [
        PreferencePair(f"p{i}", "image_generation", f"square {i}",
                       (str(images[i % 4]) if missing is None else str(missing / f"{i}.png"), str(images[(i + 1) % 4])), 1 + i % 2)
        for i in range(n)
    ]  # fmt: skip
    write_pairs(pairs, path)
    return path


# --- judge -----------------------------------------------------------------------------------------


def test_judge_reruns_refuse_other_settings_a_second_writer_and_the_input_as_output(
    tiny_model: Path, tiny_images: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = _image_pairs(tmp_path / "pairs.jsonl", tiny_images, 3)
    out = tmp_path / "out.jsonl"
    base = ["judge", "--model", str(tiny_model), "--input", str(pairs), "--output", str(out), "--no-progress"]
    assert main([*base, "--max-new-tokens", "4"]) == 0
    before = out.read_text()
    assert main([*base, "--max-new-tokens", "8"]) == 2
    assert "max_new_tokens: 4 -> 8" in _err(capsys) and out.read_text() == before  # nothing mixed, nothing lost
    assert main([*base, "--max-new-tokens", "8", "--overwrite"]) == 0
    assert len(read_rows(out)) == 3
    capsys.readouterr()
    with RowWriter(out):  # another run holds the output
        assert main([*base, "--max-new-tokens", "8"]) == 2
    assert "being written by another process" in _err(capsys)
    assert main(["judge", "--model", str(tiny_model), "--input", str(pairs), "--output", str(pairs)]) == 2
    assert "--out must differ from --input" in _err(capsys)


def test_judge_all_failed_exits_non_zero_and_failed_rows_are_retried(
    tiny_model: Path, tiny_images: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = tmp_path / "gone"
    pairs = _image_pairs(tmp_path / "pairs.jsonl", tiny_images, 3, missing=gone)
    out = tmp_path / "out.jsonl"
    args = ["judge", "--model", str(tiny_model), "--input", str(pairs), "--output", str(out), "--no-progress",
            "--max-new-tokens", "4"]  # fmt: skip
    assert main(args) == 1
    first = json.loads(capsys.readouterr().out)
    assert first["errors"] == 3 and first["judged"] == 3
    gone.mkdir()
    for i in range(3):  # the media appear: the rerun judges the failed rows again
        Image.new("RGB", (32, 32), "red").save(gone / f"{i}.png")
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["judged"] == 3 and second["errors"] == 0
    rows = read_rows(out)
    assert len(rows) == 3 and all(r["error"] is None for r in rows)  # one line per pair, failed lines replaced


def test_judge_pointwise_in_batch_mode_scores_each_candidate(
    tiny_model: Path, tiny_images: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = _image_pairs(tmp_path / "pairs.jsonl", tiny_images, 2)
    out = tmp_path / "out.jsonl"
    rc = main(["judge", "--model", str(tiny_model), "--input", str(pairs), "--output", str(out), "--pointwise",
               "--max-new-tokens", "4", "--no-progress", "--max-error-rate", "1"])  # fmt: skip
    assert rc == 0
    rows = read_rows(out)
    assert [r["mode"] for r in rows] == ["pointwise", "pointwise"] and all(len(r["scores"]) == 2 for r in rows)


# --- eval ------------------------------------------------------------------------------------------


def test_eval_counts_undecodable_media_as_errors_and_exits_non_zero(
    tiny_model: Path, tiny_images: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    pairs = [PreferencePair("a", "image_generation", "x", (str(broken), str(tiny_images[0])), 1),
             PreferencePair("b", "image_generation", "y", (str(tiny_images[1]), str(broken)), 2)]  # fmt: skip
    write_pairs(pairs, tmp_path / "p.jsonl")
    args = ["eval", "pairs", "--data", str(tmp_path / "p.jsonl"), "--judge", str(tiny_model), "--out", str(tmp_path / "o"),
            "--max-new-tokens", "4", "--unparsed", "exclude", "--json", "--no-progress"]  # fmt: skip
    assert main(args) == 1
    assert "2 of 2 judgments failed" in _err(capsys)
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["errors"]["judgments"] == 2 and report["unparsed_judgments"] == 0 and report["n_scored"] == 0
    assert main([*args[:-2], "--seed", "1", "--json"]) == 2  # another seed: refused, naming it
    assert "seed: 0 -> 1" in _err(capsys)


def test_eval_names_bad_lines_and_refuses_duplicate_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_images: list[Path]) -> None:
    good = [PreferencePair(f"p{i}", "image_generation", "x", (str(tiny_images[0]), str(tiny_images[1])), 1).to_dict() for i in range(3)]
    lines = [json.dumps(good[0]).encode(), b"", b"\xff\xfe not utf-8", json.dumps(good[1]).encode(), b'{"id": "p9", "a": ' + b"[" * 3000 + b"]" * 3000 + b"}"]
    data = tmp_path / "p.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    args = ["eval", "pairs", "--data", str(data), "--judge", "baseline:first", "--order", "as-is", "--out", str(tmp_path / "o"), "--json"]
    assert main(args) == 1  # two records could not be read: named, left out, and the exit says so
    err = _err(capsys)
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["n_pairs"] == 2 and report["results"]["accuracy"] == 100.0
    assert report["errors"]["bad_records"][0].startswith("row p.jsonl:3: invalid UTF-8")
    assert report["errors"]["bad_records"][1].startswith("row p.jsonl:5:") and "nested" in report["errors"]["bad_records"][1]
    assert "could not be read" in err
    data.write_text("\n".join(json.dumps(r) for r in [good[0], good[1], good[0]]) + "\n")
    assert main([*args[:-2], str(tmp_path / "o2")]) == 2
    assert "duplicate id 'p0' (first at line 1)" in _err(capsys)


def test_vl_rewardbench_loader_names_the_file_line_and_field(shared_data: Path, tmp_path: Path) -> None:
    from unireward.eval.benchmarks import load_vl_rewardbench

    lines = (shared_data / "vl-rewardbench" / "data.jsonl").read_text().splitlines()[:4]
    broken = json.loads(lines[3])
    del broken["human_ranking"]
    path = tmp_path / "vlrb.jsonl"
    path.write_text("\n".join([lines[0], "", lines[1], lines[2], json.dumps(broken)]) + "\n")
    with pytest.raises(SchemaError, match=r"row vlrb.jsonl:5, field 'human_ranking': missing field"):
        load_vl_rewardbench(str(path))
    bad: list[SchemaError] = []
    assert len(load_vl_rewardbench(str(path), bad=bad)) == 3 and len(bad) == 1


# --- data ------------------------------------------------------------------------------------------


def test_convert_rejects_exact_duplicates_and_nan_scores(tmp_path: Path) -> None:
    from unireward.data.converters import get_converter
    from unireward.data.converters.base import run_conversion

    rec = {"id": "v1", "video": "clip.mp4", "prompt": "what happens?", "chosen": "a dog runs", "rejected": "a cat",
           "chosen_score": 4.0, "rejected_score": 2.0}  # fmt: skip
    rows = [rec, rec, {**rec, "chosen": "a dog runs fast"}, {**rec, "id": "v2", "chosen_score": math.nan}]
    src = tmp_path / "sgv.jsonl"
    src.write_bytes("\n".join(json.dumps(r) for r in rows).encode() + b"\n\xff{}\n")  # NaN as Python writes it; a bad byte
    out = tmp_path / "pairs.jsonl"
    report = run_conversion(get_converter("sharegptvideo-dpo"), src, out)
    rejects = {r["row"]: r["reason"] for r in read_rows(out.with_name(out.name + ".rejects.jsonl"))}
    assert report.written == 2 and [p.id for p in read_pairs(out)] == ["sgv-v1", "sgv-v1~1"]  # same id, other pair
    assert "exact duplicate of the pair from sgv.jsonl:1" in rejects["sgv.jsonl:2"]
    assert "non-finite number in meta.scores[" in rejects["sgv.jsonl:4"]
    assert rejects["sgv.jsonl:5"].startswith("invalid UTF-8")  # one bad line is one reject, not a crash


def test_pair_ids_refused_or_made_unique(tmp_path: Path, tiny_images: list[Path]) -> None:
    p = PreferencePair("a", "image_generation", "x", (str(tiny_images[0]), str(tiny_images[1])), 1)
    path = tmp_path / "p.jsonl"
    write_pairs([p, p, p], path)
    with pytest.raises(SchemaError, match=r"p.jsonl:2, field 'id': duplicate id 'a' \(first at line 1\)"):
        read_pairs(path, duplicates="refuse")
    assert [x.id for x in read_pairs(path, duplicates="rename")] == ["a", "a~2", "a~3"]


def test_a_video_given_as_frame_files_is_sampled_by_the_frame_budget(tmp_path: Path) -> None:
    from unireward.judge.request import load_pair_media
    from unireward.media import VisionBudget

    frames = []
    for i in range(120):
        f = tmp_path / f"f{i:03d}.png"
        Image.new("RGB", (64, 48), (2 * i, 0, 0)).save(f)
        frames.append(str(f))
    pair = PreferencePair("v", "video_generation", "a fade", (frames, str(tmp_path)), 1)
    listed, folder = load_pair_media(pair, None, VisionBudget(frames=8))
    assert len(listed) == len(folder) == 8 and listed.indices == folder.indices
    assert [im.getpixel((0, 0)) for im in listed] == [im.getpixel((0, 0)) for im in folder]


# --- training stages -------------------------------------------------------------------------------


def test_sft_refuses_a_final_model_trained_with_other_settings(tmp_path: Path, tiny_model: Path) -> None:
    from unireward.manifest import SettingsChanged
    from unireward.train.sft import SFTStageConfig, begin_stage, run_sft

    records = tmp_path / "sft.jsonl"
    records.write_text('{"pair": {}, "completion": "x"}\n')
    cfg = SFTStageConfig(model=str(tiny_model), train_file=str(records), output_dir=str(tmp_path / "run"), max_steps=1)
    assert begin_stage("sft", cfg) == "new"
    (tmp_path / "run" / "final").mkdir(parents=True)
    (tmp_path / "run" / "final" / "config.json").write_text("{}")
    assert run_sft(cfg) == tmp_path / "run" / "final"  # same settings: the trained model is reused
    other = SFTStageConfig(model=str(tiny_model), train_file=str(records), output_dir=str(tmp_path / "run"), max_steps=1,
                           learning_rate=1e-4)  # fmt: skip
    with pytest.raises(SettingsChanged, match="learning_rate: 2.5e-06 -> 0.0001"):
        run_sft(other)
    records.write_text('{"pair": {}, "completion": "y"}\n')
    with pytest.raises(SettingsChanged, match="train_file_fingerprint"):
        run_sft(cfg)


# --- distill and sample ----------------------------------------------------------------------------


class _Teacher(BaseHTTPRequestHandler):
    """The scripted teacher (always right) behind a real socket, with ways to misbehave."""

    mode: dict[str, str] = {}  # caption -> "fail" | "empty_think" | "bad_totals"
    status = 200
    served: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        from unireward.demo.teacher import ScriptedTeacher

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = "".join(p.get("text", "") for m in body["messages"] for p in m["content"] if isinstance(p, dict))
        self.served.append(text)
        how = next((v for k, v in self.mode.items() if f"[{k}]" in text), "ok")
        if self.status != 200 or how == "fail":
            return self._send(self.status if self.status != 200 else 500, {"error": {"message": "no"}})
        answer = ScriptedTeacher(accuracy=1.0).answer(body["messages"])
        if how == "empty_think":
            answer = re.sub(r"<think>.*?</think>", "<think> </think>", answer, flags=re.DOTALL)
        elif how == "bad_totals":
            one = "Image 1 is better" in answer
            answer = re.sub(r"Total score:\nImage 1: .*\nImage 2: .*\n", f"Total score:\nImage 1: {2 if one else 9}\nImage 2: {9 if one else 2}\n", answer)
        self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": "t",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}})  # fmt: skip

    def _send(self, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def teacher() -> Iterator[str]:
    _Teacher.mode, _Teacher.status, _Teacher.served = {}, 200, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Teacher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_distill_validates_tasks_and_key_filters_unsound_reasoning_and_keeps_its_output(
    teacher: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from unireward.demo.synthetic import SyntheticConfig, generate

    root = tmp_path / "syn"
    pairs = generate(root, SyntheticConfig(n_per_task={"image_generation": 6}, seed=2), "cold")
    out = tmp_path / "d"
    args = ["distill", str(root / "cold.jsonl"), "--out", str(out), "--base-url", teacher, "--media-root", str(root),
            "--max-retries", "0", "--timeout", "5"]  # fmt: skip
    assert main([*args, "--tasks", "image_gen"]) == 2 and "unknown task(s) ['image_gen']" in _err(capsys)
    assert main([*args, "--tasks", "video_generation"]) == 2 and "no pair of task(s) video_generation" in _err(capsys)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    remote = ["distill", str(root / "cold.jsonl"), "--out", str(tmp_path / "r"), "--base-url", "https://api.openai.com/v1"]
    assert main(remote) == 2 and "needs an API key: set $OPENAI_API_KEY" in _err(capsys)
    assert not _Teacher.served

    _Teacher.status = 401  # a refused key stops the run after its first request
    assert main([*args, "--tasks", "all"]) == 2 and "refused the request (HTTP 401)" in _err(capsys)
    assert len(_Teacher.served) == 1
    _Teacher.status = 200
    _Teacher.mode = {pairs[0].prompt: "empty_think", pairs[1].prompt: "bad_totals"}
    assert main([*args, "--tasks", "all"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["empty_reasoning"] == 1 and report["inconsistent_totals"] == 1 and report["kept"] == 4
    kept = (out / "cold_start.jsonl").read_text()
    assert main([*args, "--max-tokens", "99"]) == 2 and "max_tokens: 2048 -> 99" in _err(capsys)

    # --overwrite starts afresh; with the teacher down every pair fails and the exit status says so.
    _Teacher.mode = {p.prompt: "fail" for p in pairs}
    assert main([*args, "--overwrite", "--max-tokens", "99"]) == 1  # every pair failed
    assert json.loads(capsys.readouterr().out)["failed"] == 6 and (out / "cold_start.jsonl").read_text() == ""
    _Teacher.mode = {}
    assert main([*args, "--max-tokens", "99"]) == 0 and (out / "cold_start.jsonl").read_text() != ""
    assert kept


def test_distill_never_replaces_kept_records_with_none(teacher: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from unireward.demo.synthetic import SyntheticConfig, generate

    root = tmp_path / "syn"
    pairs = generate(root, SyntheticConfig(n_per_task={"image_generation": 3}, seed=4), "cold")
    args = ["distill", str(root / "cold.jsonl"), "--out", str(tmp_path / "d"), "--base-url", teacher,
            "--media-root", str(root), "--max-retries", "0"]  # fmt: skip
    _Teacher.mode = {pairs[0].prompt: "fail"}
    assert main([*args, "--limit", "2", "--max-error-rate", "0.5"]) == 0  # pair 2 kept, pair 1 failed
    before = (tmp_path / "d" / "cold_start.jsonl").read_text()
    assert before.count("\n") == 1
    assert main([*args, "--limit", "1"]) == 2  # only the failing pair selected: nothing would be kept
    assert "keeps its earlier records" in _err(capsys)
    assert (tmp_path / "d" / "cold_start.jsonl").read_text() == before


def test_sample_refuses_other_settings_and_duplicate_ids(tiny_model: Path, tiny_images: list[Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    pairs = _image_pairs(tmp_path / "pairs.jsonl", tiny_images, 2)
    args = ["sample", str(pairs), "--model", str(tiny_model), "--out", str(tmp_path / "s"), "-k", "2", "--max-new-tokens", "4"]
    assert main(args) == 0
    assert main([*args[:-1], "6"]) == 2 and "max_new_tokens: 4 -> 6" in _err(capsys)
    assert main([*args, "--judged-by", "any"]) == 0  # routing only: re-routed from the samples, no refusal
    dup = tmp_path / "dup.jsonl"
    dup.write_text(pairs.read_text() + pairs.read_text().splitlines()[0] + "\n")
    assert main(["sample", str(dup), "--model", str(tiny_model), "--out", str(tmp_path / "s2"), "-k", "2"]) == 2
    assert "duplicate id 'p0' (first at line 1)" in _err(capsys)
    assert main(["sample", str(dup), "--model", str(tiny_model), "--out", str(tmp_path / "s2"), "-k", "2",
                 "--max-new-tokens", "4", "--make-unique-ids"]) == 0  # fmt: skip
    assert len(read_rows(tmp_path / "s2" / "samples.jsonl")) == 3


def _with_bad_lines(path: Path) -> Path:
    """Insert, after the first pair, a line that is not JSON and a pair without its label."""
    lines = path.read_text().splitlines()
    unlabelled = json.loads(lines[1])
    del unlabelled["label"]
    path.write_text("\n".join([lines[0], '{"id": "broken", ', json.dumps(unlabelled), *lines[1:]]) + "\n")
    return path


def test_sample_names_and_skips_bad_lines_and_exits_non_zero(tiny_model: Path, tiny_images: list[Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    pairs = _with_bad_lines(_image_pairs(tmp_path / "pairs.jsonl", tiny_images, 3))
    args = ["sample", str(pairs), "--model", str(tiny_model), "--out", str(tmp_path / "s"), "-k", "2", "--max-new-tokens", "4"]
    assert main(args) == 1  # the three good pairs are sampled; the two bad lines fail the run
    captured = capsys.readouterr()
    stats = json.loads(captured.out)
    assert stats["bad_lines"][0].startswith("row pairs.jsonl:2: invalid JSON")
    assert stats["bad_lines"][1] == "row pairs.jsonl:3, field 'label': missing required field"
    assert stats["failed"] == 2 and stats["errors"] == 0 and stats["total_pairs"] == 3
    assert "skipping row pairs.jsonl:2: invalid JSON" in caplog.text and "2 of 5 pairs failed" in captured.err
    assert [r["id"] for r in read_rows(tmp_path / "s" / "samples.jsonl")] == ["p0", "p1", "p2"]
    assert json.loads((tmp_path / "s" / "sample_report.json").read_text())["bad_lines"] == stats["bad_lines"]
    assert main([*args, "--max-error-rate", "0.4"]) == 0  # 2 of 5 tolerated; nothing sampled again
    assert len(read_rows(tmp_path / "s" / "samples.jsonl")) == 3


def test_distill_names_and_skips_bad_lines_and_exits_non_zero(teacher: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    from unireward.demo.synthetic import SyntheticConfig, generate

    root = tmp_path / "syn"
    generate(root, SyntheticConfig(n_per_task={"image_generation": 3}, seed=2), "cold")
    pairs = _with_bad_lines(root / "cold.jsonl")
    args = ["distill", str(pairs), "--out", str(tmp_path / "d"), "--base-url", teacher, "--media-root", str(root),
            "--max-retries", "0"]  # fmt: skip
    assert main(args) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["bad_lines"][0].startswith("row cold.jsonl:2: invalid JSON")
    assert report["bad_lines"][1] == "row cold.jsonl:3, field 'label': missing required field"
    assert report["pairs"] == 3 and report["kept"] == 3 and report["failed"] == 0 and len(_Teacher.served) == 3
    assert "skipping row cold.jsonl:3, field 'label'" in caplog.text and "2 of 5 pairs failed" in captured.err
    assert main([*args, "--max-error-rate", "0.4"]) == 0 and len(_Teacher.served) == 3  # answers cached, not asked again
