"""Row files and run manifests: bad lines reported and skipped, torn tails repaired, one writer,
atomic replacement, and reruns that resume only under the same settings."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unireward.manifest import Manifest, SettingsChanged, begin_run, manifest_path, model_fingerprint
from unireward.rows import (
    BadLine,
    RowFileLocked,
    RowWriter,
    append_rows,
    iter_rows,
    read_rows,
    replace_rows,
    replacing,
)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_each_bad_line_is_named_and_reading_goes_on(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "r.jsonl",
        b'{"id": "a"}\n'
        b'\xff\xfe{"id": "b"}\n'  # invalid UTF-8
        b'{"id": \n'  # invalid JSON
        b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n"  # deep enough to break Python's decoder
        b'{"x": ' + b"[" * 80 + b"]" * 80 + b"}\n"  # decodes, but deeper than any real row
        b"[1, 2]\n"  # not an object
        b'{"other": 1}\n'  # wrong fields
        b"\n"
        b'{"id": "c"}\n'
        b'{"id": "d", "te',  # torn last line
    )
    items = list(iter_rows(p, required=("id",)))
    good = [i.data["id"] for i in items if not isinstance(i, BadLine)]
    bad = {i.line: i.reason for i in items if isinstance(i, BadLine)}
    assert good == ["a", "c"]
    assert bad[2].startswith("invalid UTF-8") and bad[3].startswith("invalid JSON")
    assert "nested deeper" in bad[4] and "nested deeper" in bad[5]
    assert bad[6] == "expected a JSON object, got list" and bad[7] == "missing field 'id'"
    assert bad[10].startswith("torn last line")
    assert str(next(i for i in items if isinstance(i, BadLine))).startswith(f"{p}:2: ")
    found: list[BadLine] = []
    assert [r["id"] for r in read_rows(p, required=("id",), bad=found)] == ["a", "c"] and len(found) == 7


def test_append_repairs_a_torn_tail_and_keeps_a_whole_last_row(tmp_path: Path) -> None:
    p = _write(tmp_path / "o.jsonl", b'{"id": "a"}\n{"id": "b", "te')
    append_rows(p, [{"id": "c"}])
    assert p.read_text() == '{"id": "a"}\n{"id": "c"}\n'
    _write(p, b'{"id": "a"}\n{"id": "b"}')  # whole row, only the newline missing: kept
    append_rows(p, [{"id": "c"}])
    assert [r["id"] for r in read_rows(p)] == ["a", "b", "c"]
    _write(p, b'{"half')  # a torn first line
    append_rows(p, [{"id": "z"}])
    assert p.read_text() == '{"id": "z"}\n'


def test_a_second_writer_is_refused_and_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    p = tmp_path / "o.jsonl"
    with RowWriter(p) as w:
        w.write([{"id": "a"}])
        with pytest.raises(RowFileLocked, match="another process"):
            append_rows(p, [{"id": "b"}])
    code = (
        "import sys, time\nfrom unireward.rows import RowWriter\n"
        f"w = RowWriter({str(p)!r}).__enter__()\nprint('locked', flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(RowFileLocked, match=f"pid {proc.pid}"):
            append_rows(p, [{"id": "b"}])
        proc.kill()  # kill -9: the kernel releases the lock
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 5
    append_rows(p, [{"id": "b"}])
    assert time.monotonic() < deadline and [r["id"] for r in read_rows(p)] == ["a", "b"]


def test_replace_is_atomic_and_leaves_the_old_file_on_error(tmp_path: Path) -> None:
    p = tmp_path / "cold.jsonl"
    replace_rows(p, [{"id": "a"}])
    with pytest.raises(RuntimeError), replacing(p) as sink:
        sink.write([{"id": "b"}])
        raise RuntimeError("killed midway")
    assert read_rows(p) == [{"id": "a"}] and [x.name for x in tmp_path.iterdir()] == ["cold.jsonl"]


def test_manifest_resumes_same_settings_and_names_the_keys_that_differ(tmp_path: Path) -> None:
    out = tmp_path / "judged.jsonl"
    m = Manifest("judge", {"model": "a", "frames": 8, "tasks": ("x",)})
    assert begin_run(out, m, [out]) == "new"
    assert json.loads(manifest_path(out).read_text())["settings"]["tasks"] == ["x"]
    append_rows(out, [{"key": "1"}])
    assert begin_run(out, Manifest("judge", {"model": "a", "frames": 8, "tasks": ["x"]}), [out]) == "resume"
    other = Manifest("judge", {"model": "b", "frames": 16, "tasks": ["x"]})
    with pytest.raises(SettingsChanged, match=r"frames, model: frames: 8 -> 16; model: 'a' -> 'b'"):
        begin_run(out, other, [out])
    assert read_rows(out) == [{"key": "1"}]  # nothing lost by the refusal
    assert begin_run(out, other, [out], overwrite=True) == "overwrite" and not out.exists()
    assert begin_run(out, other, [out]) == "new"


def test_results_without_a_manifest_are_not_resumed_blindly(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    append_rows(out / "predictions.jsonl", [{"key": "1"}])
    with pytest.raises(SettingsChanged, match="without a run manifest"):
        begin_run(out, Manifest("eval", {"judge": "x"}), [out / "predictions.jsonl"])


def test_model_fingerprint_sees_retrained_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"a" * 100)
    before = model_fingerprint(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"b" * 100)
    assert before != model_fingerprint(str(tmp_path)) and model_fingerprint("org/hub-id") is None
