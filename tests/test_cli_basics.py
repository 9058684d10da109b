"""The ``unireward`` dispatcher: user errors are one JSON line on stderr and exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from unireward.cli import main


def _error(capsys: pytest.CaptureFixture[str]) -> dict:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return json.loads(err[0])


def test_tiny_model_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny"
    assert main(["tiny-model", str(out), "--hidden-size", "32", "--num-layers", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"family": "qwen2_5_vl", "path": str(out)}
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl" and config["text_config"]["hidden_size"] == 32
    from unireward.models import load_model

    _, processor, family = load_model(str(out))
    assert family.name == "qwen2_5_vl" and processor.tokenizer.padding_side == "left"


def test_media_info_on_real_videos(videoalign_videos: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(p) for p in videoalign_videos[:2]]
    assert main(["media-info", *paths, "--max-total-pixels", "160000"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["path"] for x in lines] == paths
    for x in lines:
        assert x["frames"] == 8
        ((w, h),) = x["sizes"]
        assert w * h <= 160_000 // 16 and w % 28 == 0 and h % 28 == 0


def test_bad_media_paths(tmp_path: Path, videoalign_videos: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(videoalign_videos[0].read_bytes()[:20_000])
    rnd = tmp_path / "random.png"
    rnd.write_bytes(os.urandom(3000))
    for path in (tmp_path / "missing.mp4", cut, rnd):
        assert main(["media-info", str(path)]) == 2
        err = _error(capsys)
        assert err["error"] == "MediaError" and str(path) in err["message"]


@pytest.mark.parametrize(
    "argv,kind",
    [
        (["no-such-command"], "UsageError"),
        (["tiny-model"], "UsageError"),
        (["tiny-model", "x", "--family", "llava"], "UsageError"),
        (["media-info", "a.png", "--frames", "many"], "UsageError"),
        (["media-info", "a.png", "--frames", "0"], "ValueError"),
    ],
)
def test_usage_errors_are_json(argv: list[str], kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = _error(capsys)
    assert err["error"] == kind and err["message"]


def test_unwritable_output_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["tiny-model", str(blocker / "sub")]) == 2
    assert _error(capsys)["error"] in ("FileExistsError", "NotADirectoryError")


def test_console_script_prints_json_not_a_traceback(tmp_path: Path) -> None:
    exe = shutil.which("unireward", path=str(Path(sys.executable).parent)) or shutil.which("unireward")
    cmd = [exe] if exe else [sys.executable, "-m", "unireward.cli"]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(1000))
    run = subprocess.run([*cmd, "media-info", str(bad)], capture_output=True, text=True)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert json.loads(run.stderr.strip().splitlines()[-1])["error"] == "MediaError"
    run = subprocess.run([*cmd, "--verbose", "media-info", str(bad)], capture_output=True, text=True)
    assert run.returncode != 0 and "Traceback" in run.stderr  # -v shows the full error
