"""Manifests see what changed: a byte flipped inside a large weight file, or any change to the
code, refuses a rerun naming the key; a touched but unchanged file resumes; a settled weight file
is hashed once and then read from the hash cache."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from unireward.cli import main
from unireward.data.schema import PreferencePair, write_pairs
from unireward.runs import manifest
from unireward.runs.manifest import (
    Manifest,
    SettingsChanged,
    begin_run,
    code_fingerprint,
    content_hash,
    model_fingerprint,
)
from unireward.runs.rows import append_rows

HOUR_NS = 3600 * 10**9


@pytest.fixture()
def hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A private hash cache, an empty in-process memo, and the list of files actually hashed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(manifest, "_memo", {})
    seen: list[str] = []
    real = manifest._sha256

    def counting(path: str) -> str:
        seen.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(manifest, "_sha256", counting)
    return seen


@pytest.fixture()
def big_model(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny judge with a 12 MB weight file (an extra tensor the model does not use), last
    written an hour ago, as a downloaded checkpoint would be."""
    import torch
    from safetensors.torch import load_file, save_file

    dst = tmp_path / "model"
    shutil.copytree(tiny_model, dst)
    weights = dst / "model.safetensors"
    tensors = load_file(weights)
    tensors["unused_padding"] = torch.arange(3_000_000, dtype=torch.float32)
    save_file(tensors, weights, metadata={"format": "pt"})
    assert weights.stat().st_size > 10 * 2**20
    for p in dst.iterdir():
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - HOUR_NS))
    return dst


def _pair_file(tmp_path: Path) -> Path:
    img = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    Image.new("RGB", (512, 512), "red").save(img[0], quality=90)
    Image.new("RGB", (512, 512), "blue").save(img[1], quality=90)
    path = tmp_path / "pairs.jsonl"
    write_pairs([PreferencePair("p0", "image_generation", "a red square", (str(img[0]), str(img[1])), 1)], path)
    return path


def _flip_middle_byte(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0xFF]))


def test_a_byte_flipped_in_a_large_weight_file_refuses_the_rerun(big_model: Path, tmp_path: Path, hashes: list[str],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "out.jsonl"
    args = ["judge", "--model", str(big_model), "--input", str(_pair_file(tmp_path)), "--output", str(out),
            "--max-new-tokens", "2", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert hashes.count("model.safetensors") == 1
    cache = json.loads((tmp_path / "cache" / "unireward" / "file-hashes.json").read_text())
    assert str((big_model / "model.safetensors").resolve()) in cache  # settled: remembered

    manifest._memo.clear()  # as a new process would start
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["skipped"] == 1
    assert hashes.count("model.safetensors") == 1  # read from the cache, not hashed again

    before = out.read_text()
    _flip_middle_byte(big_model / "model.safetensors")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "was made with other settings (model_fingerprint: model_fingerprint: 'sha256:" in err
    assert out.read_text() == before and hashes.count("model.safetensors") == 2


def test_touching_a_weight_file_rehashes_it_and_resumes(big_model: Path, tmp_path: Path, hashes: list[str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    weights = big_model / "model.safetensors"
    first = model_fingerprint(str(big_model))
    assert model_fingerprint(str(big_model)) == first and hashes.count("model.safetensors") == 1
    os.utime(weights, ns=(time.time_ns(), time.time_ns() - HOUR_NS // 2))  # touched, same bytes
    assert model_fingerprint(str(big_model)) == first and hashes.count("model.safetensors") == 2

    out = tmp_path / "out.jsonl"
    args = ["judge", "--model", str(big_model), "--input", str(_pair_file(tmp_path)), "--output", str(out),
            "--max-new-tokens", "2", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    os.utime(weights)  # now: too fresh to remember, hashed on every run until it settles
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["skipped"] == 1
    assert main(args) == 0 and hashes.count("model.safetensors") == 4


def test_a_file_rewritten_within_one_clock_tick_is_not_taken_from_the_cache(tmp_path: Path, hashes: list[str]) -> None:
    p = tmp_path / "w.safetensors"
    p.write_bytes(b"a" * 1000)
    first = content_hash(p)
    p.write_bytes(b"b" * 1000)  # same size and inode, perhaps the same mtime
    assert content_hash(p) != first


def test_the_code_fingerprint_follows_every_source_and_template_file(tmp_path: Path) -> None:
    import unireward

    pkg = tmp_path / "unireward"
    shutil.copytree(Path(unireward.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    base = code_fingerprint(pkg)
    assert code_fingerprint(pkg) == base
    (pkg / "__pycache__").mkdir(exist_ok=True)
    (pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")  # compiled files are not sources
    assert code_fingerprint(pkg) == base
    template = next((pkg / "protocol" / "templates").rglob("*.txt"))
    template.write_text(template.read_text() + " ")
    changed = code_fingerprint(pkg)
    assert changed != base
    (pkg / "runs" / "job.py").write_text((pkg / "runs" / "job.py").read_text() + "\n# edited\n")
    assert code_fingerprint(pkg) not in (base, changed)

    out = tmp_path / "out.jsonl"
    assert begin_run(out, Manifest("judge", {"model": "m"}, code_fingerprint=base), [out]) == "new"
    append_rows(out, [{"key": "1"}])
    assert begin_run(out, Manifest("judge", {"model": "m"}, code_fingerprint=base), [out]) == "resume"
    with pytest.raises(SettingsChanged, match=r"\(code_fingerprint: code_fingerprint: 'sha256:"):
        begin_run(out, Manifest("judge", {"model": "m"}, code_fingerprint=changed), [out])
    assert Manifest("judge", {}).code_fingerprint == code_fingerprint()  # the installed package's, by default
