"""The benchmark scripts still run (tiny sizes; the numbers they print are not checked here, only that
each writes its JSON and Markdown with the machine and every run recorded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def run(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=timeout, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def written(out: Path, name: str) -> dict:
    result = json.loads((out / f"{name}.json").read_text())
    md = (out / f"{name}.md").read_text()
    m = result["machine"]
    assert m["cores"] >= 1 and m["load_before"] >= 0 and m["load_after"] >= 0
    assert f"load average {m['load_before']:.2f} before" in md
    for label, t in result["timings"].items():
        assert len(t["runs_s"]) == result["repeats"] and t["min_s"] <= t["median_s"] <= t["max_s"], label
        assert f"| {label} |" in md
    return result


def test_harness_records_runs_load_and_warns_when_busy(tmp_path: Path, monkeypatch) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import _harness
    finally:
        sys.path.remove(str(BENCH))
    monkeypatch.setattr(_harness, "load_average", lambda: 5.0)
    monkeypatch.setattr(_harness, "cores", lambda: 2)
    bench = _harness.Bench("unit", repeats=3, out=str(tmp_path))
    calls = []
    slow, fast = bench.alternate({"slow": lambda: calls.append("s"), "fast": lambda: calls.append("f")})
    assert calls == ["s", "f"] * 3  # round-robin, so load bursts hit both sides of a ratio
    ratio = bench.ratio("slow / fast", slow, fast)
    assert len(ratio.values) == 3
    result = bench.finish()
    assert len(result["warnings"]) == 2 and "exceeds the 2 cores" in result["warnings"][0]
    assert "WARNING" in (tmp_path / "unit.md").read_text()
    assert written(tmp_path, "unit")["ratios"]["slow / fast"]["median"] > 0


def test_convert_llava_memory_benchmark_runs(tmp_path: Path) -> None:
    proc = run("convert_llava_memory.py", "--hidden", "64", "--layers", "1", "--shards", "2", "--vision-layers", "1",
               "--keep", str(tmp_path / "keep"), "--repeats", "1", "--out", str(tmp_path))  # fmt: skip
    out = json.loads(proc.stdout)
    assert out["same_tensors"] is True and out["shards"] == 2
    assert out["ours"]["peak_rss_gb"] > 0 and out["load_everything"]["peak_rss_gb"] > 0
    written(tmp_path, "convert_llava_memory")


def test_judge_throughput_runs_and_keeps_its_summary_lines(tmp_path: Path) -> None:
    proc = run("judge_throughput.py", "--pairs", "3", "--max-new-tokens", "6", "--group", "2", "--repeats", "2",
               "--out", str(tmp_path), "--json-out", str(tmp_path / "flat.json"))  # fmt: skip
    assert "identical greedy outputs 3/3" in proc.stdout and "speed-up x" in proc.stdout
    assert "G=2 samples of one prompt:" in proc.stdout
    result = written(tmp_path, "judge_throughput_tiny")
    assert result["values"]["identical_greedy_outputs"] == "3/3"
    assert set(result["ratios"]) == {"batched vs official", "G=2 one call vs sequential",
                                     "G=2 one call vs num_return_sequences"}
    assert result["values"]["identical_greedy_group_rows"] == "2/2" and "identical greedy rows 2/2" in proc.stdout
    assert json.loads((tmp_path / "flat.json").read_text())["identical_outputs"] == "3/3"


def test_video_decode_benchmark_runs(tmp_path: Path) -> None:
    run("video_decode.py", "--videos", "144p:3", "--methods", "unireward", "unireward-sequential", "--repeats", "2",
        "--cache", str(tmp_path / "videos"), "--out", str(tmp_path))  # fmt: skip
    result = written(tmp_path, "video_decode")
    assert result["values"]["videos"]["144p:3"]["frames"] == 90
    assert result["values"]["rss_mb"]["unireward 144p:3s"]["peak"] > 0
    assert "unireward-sequential / unireward, 144p:3s" in result["ratios"]


def test_tie_metric_benchmark_runs(tmp_path: Path) -> None:
    run("tie_metric.py", "--n", "400", "--repeats", "3", "--out", str(tmp_path))
    result = written(tmp_path, "tie_metric")
    acc = result["values"]["accuracy"]
    assert acc["continuous"]["same"] and acc["discrete"]["same"] and acc["single"]["exact"] >= acc["single"]["videoalign"]


def test_gpu_benchmarks_run_in_their_reduced_form(tmp_path: Path) -> None:
    """The GPU command's judge, video and LoRA GRPO parts at toy sizes on the CPU, with its summary."""
    proc = run("gpu_all.py", "--reduced", "--out", str(tmp_path), timeout=900)
    summary = json.loads(proc.stdout)
    assert summary["ok"] and summary["reduced"] and set(summary["parts"]) == {"judge", "group", "video", "grpo"}
    parts = summary["parts"]
    assert parts["judge"]["identical_greedy_outputs"] == "2/2" and parts["judge"]["pairs_speedup"] > 0
    assert parts["group"]["identical_rewards"] == "1/1"
    assert parts["group"]["vision_encoded_per_group"] == {"official": 56.0, "grouped": 8.0}
    assert parts["video"]["median_s"]["unireward 144p:2s"] > 0
    assert parts["grpo"]["step_s"] > 0
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    for name in ("judge_throughput_tiny", "group_rewards_tiny", "video_decode", "grpo_step_tiny"):
        written(tmp_path, name)


def test_grpo_step_benchmark_refuses_a_single_step() -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "grpo_step.py"), "--steps", "1"], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 2 and "--steps must be >= 2" in proc.stderr


def test_train_memory_benchmark_runs(tmp_path: Path) -> None:
    run("train_memory.py", "--sizes", "4,8", "--steps", "1", "--image-size", "32", "--repeats", "1", "--work", str(tmp_path / "w"),
        "--out", str(tmp_path))  # fmt: skip
    result = written(tmp_path, "train_memory")
    values = result["values"]
    for mode in ("eager", "streaming"):
        for n in (4, 8):
            assert values[f"{mode} {n} pairs peak_mb"] >= values[f"{mode} {n} pairs baseline_mb"] > 0
        assert f"{mode} growth of the peak above baseline, 4 -> 8 pairs" in values
