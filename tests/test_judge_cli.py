"""``unireward judge``: one pair to JSON, and a resumable file run that survives being killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unireward.cli import main
from unireward.protocol import parse_judgment

REPO = Path(__file__).resolve().parents[1]


def test_single_video_pair_prints_json(tiny_model: Path, videoalign_videos: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = videoalign_videos[:2]
    rc = main(["judge", "--model", str(tiny_model), "--task", "video_generation", "--prompt", "a dog runs",
               "--candidate", str(a), "--candidate", str(b), "--max-new-tokens", "8"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    for key in ("winner", "status", "think", "answer", "totals", "dimensions", "text"):
        assert key in out
    # a random model's 8 tokens name no verdict; the status is the parser's reading of that text
    assert out["error"] is None and out["status"] == parse_judgment(out["text"], "video_generation").status != "ok"


def test_single_pair_missing_file_is_reported(tiny_model: Path, tiny_images: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["judge", "--model", str(tiny_model), "--task", "image_generation", "--prompt", "x",
               "--candidate", str(tiny_images[0]), "--candidate", "no/such.png", "--max-new-tokens", "4"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["status"] == "invalid" and "no/such.png" in out["error"]


def test_cli_rejects_wrong_arguments(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["judge", "--model", str(tiny_model), "--task", "image_generation", "--prompt", "x", "--candidate", "a.png"])
    assert rc == 2 and "--candidate" in capsys.readouterr().err


def _write_pairs(path: Path, videos: list[Path], images: list[Path], n: int) -> list[str]:
    rows = []
    for i in range(n):
        if i in (0, n - 1):  # video pairs are the slow ones: one early, one late
            cands = [str(videos[(2 * i) % len(videos)]), str(videos[(2 * i + 1) % len(videos)])]
            rows.append({"id": f"v{i}", "task": "video_generation", "prompt": f"clip {i}", "candidates": cands, "label": 1})
        else:
            rows.append({"id": f"i{i}", "task": "image_generation", "prompt": f"square {i}",
                         "candidates": [str(images[i % 4]), str(images[(i + 1) % 4])], "label": 2})  # fmt: skip
    rows.append({"id": "broken", "task": "image_generation", "prompt": "x", "candidates": ["gone.png", str(images[0])], "label": 1})
    rows.append({"id": "i1", "task": "image_generation", "prompt": "same id again", "candidates": [str(images[0]), str(images[1])], "label": 1})
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, '{"id": "nojson", ')  # a malformed row
    path.write_text("\n".join(lines) + "\n")
    return [r["id"] for r in rows]


def test_file_run_killed_midway_then_rerun_gives_each_pair_once(
    tiny_model: Path, videoalign_videos: list[Path], tiny_images: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = tmp_path / "pairs.jsonl"
    out = tmp_path / "out.jsonl"
    _write_pairs(pairs, videoalign_videos, tiny_images, 10)
    args = ["judge", "--model", str(tiny_model), "--input", str(pairs), "--output", str(out),
            "--max-new-tokens", "24", "--chunk-size", "1", "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "unireward.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_text().count("\n") >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    first = out.read_text()
    n_first = first.count("\n")
    assert 2 <= n_first < 13
    with open(out, "a") as f:  # the kill may also land mid-line: simulate the worst case
        f.write('{"key": "half-writ')

    assert main(args) == 1  # two rows failed: a missing image and a row that is not JSON
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["total"] == 13 and summary["errors"] == 2
    retried = sum(json.loads(line)["key"] == "broken" for line in first.splitlines())  # failed rows are redone
    assert summary["skipped"] == n_first - retried
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 13  # every pair exactly once
    assert "i1" in keys and "i1#1" in keys  # repeated ids are kept apart
    by_key = {r["key"]: r for r in rows}
    assert by_key["broken"]["status"] == "invalid" and "gone.png" in by_key["broken"]["error"]
    assert by_key["row pairs.jsonl:4"]["error"].startswith("row pairs.jsonl:4")
    assert by_key["v0"]["error"] is None and by_key["v0"]["label"] == 1
    assert by_key["v9"]["error"] is None

    assert main([*args, "--max-error-rate", "0.2"]) == 0  # a third run retries only the failed media row
    assert json.loads(capsys.readouterr().out)["judged"] == 1
    assert len(out.read_text().splitlines()) == 13
