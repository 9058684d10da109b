"""kill -9 at random points, then rerun: the output equals an uninterrupted run's, with no line
twice and none torn. Each seed's run is a real process killed with SIGKILL; it is forked from a
server that imported the libraries once (so twenty kills cost no twenty interpreter starts), and
the rerun and the reference run in this process."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from unireward.cli import main
from unireward.data.schema import PreferencePair, write_pairs

SEEDS = range(5)
_PRELOAD = ["torch", "torchvision", "transformers", "transformers.models.qwen2_5_vl.modeling_qwen2_5_vl",
            "transformers.models.qwen2_5_vl.processing_qwen2_5_vl", "transformers.models.qwen2_vl.image_processing_qwen2_vl",
            "unireward.cli", "unireward.judge.backends", "unireward.eval.runner", "unireward.train.sample",
            "unireward.train.distill"]  # fmt: skip


@pytest.fixture(scope="module")
def forker() -> multiprocessing.context.ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    # One thread per killed run: on a busy machine idle OpenMP workers only spin.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        warm = ctx.Process(target=time.sleep, args=(0,))  # starts the fork server with that environment
        warm.start()
        warm.join()
    return ctx


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_at_random(ctx: multiprocessing.context.ForkServerContext, args: list[str], watch: Path, seed: int, total: int) -> int:
    """Run ``unireward ARGS`` in a new process and SIGKILL it once ``watch`` holds a random number of
    lines (plus a random few milliseconds, so the kill may land mid-write); returns the lines then."""
    rng = random.Random(seed)
    target, extra = rng.randrange(total), rng.random() * 0.05
    proc = ctx.Process(target=main, args=(args,))
    proc.start()
    try:
        deadline = time.monotonic() + 120
        while proc.is_alive() and _lines(watch) < target and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(extra)
    finally:
        proc.kill()  # SIGKILL
        proc.join(timeout=30)
    return _lines(watch)


def _rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "torn last line"
    return [json.loads(line) for line in text.splitlines()]


def _same(got: Path, want: Path, key: str) -> None:
    rows, ref = _rows(got), _rows(want)
    keys = [json.dumps(r[key], sort_keys=True) for r in rows]
    assert len(keys) == len(set(keys)), "a row written twice"
    assert rows == ref


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory, tiny_images: list[Path]) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    write_pairs([PreferencePair(f"p{i}", "image_generation", f"square {i}",
                                (str(tiny_images[i % 4]), str(tiny_images[(i + 1) % 4])), 1 + i % 2)
                 for i in range(4)], path)  # fmt: skip
    return path


def test_judge_killed_anywhere_resumes_to_the_same_output(forker: multiprocessing.context.ForkServerContext, tiny_model: Path, pairs_file: Path, tmp_path: Path) -> None:
    def args(out: Path) -> list[str]:
        return ["judge", "--model", str(tiny_model), "--input", str(pairs_file), "--output", str(out),
                "--max-new-tokens", "8", "--chunk-size", "1", "--no-progress"]  # fmt: skip

    assert main(args(tmp_path / "ref.jsonl")) == 0
    for seed in SEEDS:
        out = tmp_path / f"out{seed}.jsonl"
        kill_at_random(forker, args(out), out, seed, 4)
        assert main(args(out)) == 0
        _same(out, tmp_path / "ref.jsonl", "key")


def test_eval_killed_anywhere_resumes_to_the_same_predictions(forker: multiprocessing.context.ForkServerContext, tiny_model: Path, pairs_file: Path, tmp_path: Path) -> None:
    def args(out: Path) -> list[str]:
        return ["eval", "pairs", "--data", str(pairs_file), "--judge", str(tiny_model), "--out", str(out), "--order", "as-is",
                "--batch-size", "1", "--max-new-tokens", "8", "--json", "--no-progress"]  # fmt: skip

    assert main(args(tmp_path / "ref")) == 0
    for seed in SEEDS:
        out = tmp_path / f"run{seed}"
        kill_at_random(forker, args(out), out / "predictions.jsonl", seed, 4)
        assert main(args(out)) == 0
        _same(out / "predictions.jsonl", tmp_path / "ref" / "predictions.jsonl", "key")
        assert json.loads((out / "report.json").read_text())["results"] == json.loads((tmp_path / "ref" / "report.json").read_text())["results"]


def test_sample_killed_anywhere_resumes_to_the_same_samples(forker: multiprocessing.context.ForkServerContext, tiny_model: Path, pairs_file: Path, tmp_path: Path) -> None:
    def args(out: Path) -> list[str]:
        return ["sample", str(pairs_file), "--model", str(tiny_model), "--out", str(out), "-k", "2",
                "--max-new-tokens", "8", "--chunk-size", "1"]  # fmt: skip

    assert main(args(tmp_path / "ref")) == 0
    for seed in SEEDS:
        out = tmp_path / f"run{seed}"
        kill_at_random(forker, args(out), out / "samples.jsonl", seed, 4)
        assert main(args(out)) == 0
        for name in ("samples.jsonl", "rs_sft.jsonl", "grpo.jsonl"):
            _same(out / name, tmp_path / "ref" / name, "id" if name == "samples.jsonl" else "pair")


class _SlowTeacher(BaseHTTPRequestHandler):
    """The scripted teacher (always right, so answers do not depend on arrival order), a little slow."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        from unireward.demo.teacher import ScriptedTeacher

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(0.01)
        answer = ScriptedTeacher(accuracy=1.0).answer(body["messages"])
        data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "t",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_distill_killed_anywhere_resumes_to_the_same_cold_start_set(forker: multiprocessing.context.ForkServerContext, tmp_path: Path) -> None:
    from unireward.demo.synthetic import SyntheticConfig, generate

    root = tmp_path / "syn"
    generate(root, SyntheticConfig(n_per_task={"image_generation": 8}, seed=5), "cold")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowTeacher)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def args(out: Path) -> list[str]:
        return ["distill", str(root / "cold.jsonl"), "--out", str(out), "--base-url", f"http://127.0.0.1:{server.server_address[1]}/v1",
                "--media-root", str(root), "--concurrency", "1"]  # fmt: skip

    try:
        assert main(args(tmp_path / "ref")) == 0
        for seed in SEEDS:
            out = tmp_path / f"run{seed}"
            kill_at_random(forker, args(out), out / "teacher_cache.jsonl", seed, 8)
            assert main(args(out)) == 0
            _same(out / "cold_start.jsonl", tmp_path / "ref" / "cold_start.jsonl", "completion")
            cache = _rows(out / "teacher_cache.jsonl")
            assert sorted(r["id"] for r in cache) == sorted(r["id"] for r in _rows(tmp_path / "ref" / "teacher_cache.jsonl"))
    finally:
        server.shutdown()
