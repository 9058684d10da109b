"""Run manifests: the settings that shaped an output, written beside it, checked on every rerun.

A rerun with the same settings resumes (only missing or failed items are redone). A rerun with
different settings is refused with the keys that differ, unless the caller asks to overwrite,
in which case the old outputs are removed first. Settings hold what changes the content: the
model and a fingerprint of its files, prompt family, vision budget, sampling, the input data's
fingerprint and the code version; never how fast or how verbosely it runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unireward.runs.rows import PathLike, replace_json

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_SAMPLE = 1 << 20  # bytes hashed at each end of a weight file


class SettingsChanged(ValueError):
    """An output holds results made with other settings."""


def code_version() -> str:
    from unireward import __version__

    return __version__


def file_fingerprint(path: PathLike) -> str:
    """SHA-256 of a file's bytes (data files: every byte counts).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = p.write_text("x")
    >>> file_fingerprint(p)[:16]
    'sha256:2d711642b'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def model_fingerprint(model: str) -> str | None:
    """A fingerprint of a local model folder: its config/tokenizer/index JSON files in full, and each
    weight file's size plus its first and last MiB (cheap on 15 GB checkpoints, and retrained
    weights differ there). ``None`` for a hub id or a served model name (nothing local to read).
    """
    root = Path(model)
    if not root.is_dir():
        return None
    h = hashlib.sha256()
    for p in sorted(root.iterdir()):
        if not p.is_file():
            continue
        if p.suffix == ".json":
            h.update(p.name.encode() + b"\0" + p.read_bytes())
        elif p.suffix in (".safetensors", ".bin", ".pt"):
            size = p.stat().st_size
            h.update(f"{p.name}\0{size}\0".encode())
            with open(p, "rb") as f:
                h.update(f.read(_SAMPLE))
                if size > 2 * _SAMPLE:
                    f.seek(size - _SAMPLE)
                    h.update(f.read(_SAMPLE))
    return "sha256:" + h.hexdigest()


def model_settings(model: str, **extra: Any) -> dict[str, Any]:
    """``{"model": ..., "model_fingerprint": ...}`` plus ``extra``."""
    return {"model": str(model), "model_fingerprint": model_fingerprint(str(model)), **extra}


def normalize(obj: Any) -> Any:
    """Settings as plain JSON values (tuples become lists, dataclasses dicts), so a manifest read
    back from disk compares equal to the one built in memory.

    >>> normalize({"a": (1, 2), "b": {"c": None}})
    {'a': [1, 2], 'b': {'c': None}}
    """
    return json.loads(json.dumps(obj, default=_default, sort_keys=True))


def _default(x: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.asdict(x)
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    if hasattr(x, "value"):  # enums
        return x.value
    return str(x)


def differing_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys whose values differ (missing on one side counts), sorted.

    >>> differing_keys({"model": "a", "seed": 0}, {"model": "b", "seed": 0, "frames": 8})
    ['frames', 'model']
    """
    return sorted(k for k in set(old) | set(new) if old.get(k, _MISSING) != new.get(k, _MISSING))


_MISSING = object()


def describe_change(old: dict[str, Any], new: dict[str, Any], keys: Iterable[str]) -> str:
    """``key: old -> new`` for each key, values shortened.

    >>> describe_change({"model": "a"}, {"model": "b"}, ["model"])
    "model: 'a' -> 'b'"
    """

    def short(v: Any) -> str:
        return "(unset)" if v is _MISSING else f"{v!r:.60}"

    return "; ".join(f"{k}: {short(old.get(k, _MISSING))} -> {short(new.get(k, _MISSING))}" for k in keys)


@dataclass
class Manifest:
    """The manifest of one output: which command made it and the settings that shape it."""

    command: str
    settings: dict[str, Any]
    code_version: str = field(default_factory=code_version)

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("a manifest needs the command that made the output")
        self.settings = normalize(self.settings)

    def compared(self) -> dict[str, Any]:
        return {"command": self.command, "code_version": self.code_version, **self.settings}

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "code_version": self.code_version, "settings": self.settings}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        return cls(command=d["command"], settings=d.get("settings") or {}, code_version=d.get("code_version", "?"))


def manifest_path(output: PathLike) -> Path:
    """Where the manifest of ``output`` lives: ``<dir>/manifest.json`` for a folder output,
    ``<file>.manifest.json`` beside a file output.

    >>> str(manifest_path("runs/judged.jsonl"))
    'runs/judged.jsonl.manifest.json'
    """
    p = Path(output)
    if p.suffix in (".jsonl", ".json", ".csv"):
        return p.with_name(p.name + ".manifest.json")
    return p / MANIFEST_NAME


def read_manifest(output: PathLike) -> Manifest | None:
    path = manifest_path(output)
    if not path.exists():
        return None
    try:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as e:
        raise SettingsChanged(f"{path}: unreadable run manifest ({e}); use --overwrite or another output") from None


def begin_run(
    output: PathLike,
    manifest: Manifest,
    produced: Iterable[PathLike] = (),
    overwrite: bool = False,
) -> str:
    """Check ``output`` against ``manifest`` before any work; returns ``"new"``, ``"resume"`` or ``"overwrite"``.

    ``produced`` are the files (or folders) the run writes; they decide whether there is anything
    to resume. Same settings: ``"resume"``. Different settings, or results without a manifest:
    :class:`SettingsChanged` naming the keys, unless ``overwrite``, which deletes ``produced`` and
    starts afresh. The manifest is written before the first result, so a killed run is resumable.
    """
    produced = [Path(p) for p in produced]
    existing = [p for p in produced if p.exists() and (p.is_dir() or p.stat().st_size > 0)]
    old = read_manifest(output) if existing or manifest_path(output).exists() else None
    state = "new"
    if old is not None:
        before, now = old.compared(), manifest.compared()
        keys = differing_keys(before, now)
        if not keys:
            return "resume" if existing else "new"
        if not existing:  # nothing made under the old settings: just record the new ones
            replace_json(manifest_path(output), manifest.to_dict())
            return "new"
        if not overwrite:
            raise SettingsChanged(
                f"{output} was made with other settings ({', '.join(keys)}: {describe_change(before, now, keys)}); "
                "rerun with the same settings to resume, pass --overwrite to start again, or choose another output"
            )
        state = "overwrite"
    elif existing:
        if not overwrite:
            raise SettingsChanged(
                f"{output} holds results without a run manifest ({', '.join(map(str, existing))}); "
                "their settings are unknown: pass --overwrite to start again or choose another output"
            )
        state = "overwrite"
    if state == "overwrite":
        for p in existing:
            log.warning("--overwrite: removing %s", p)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)  # every rank of a distributed run may get here
            else:
                p.unlink(missing_ok=True)
    replace_json(manifest_path(output), manifest.to_dict())
    return state
