"""Run manifests: the settings that shaped an output, written beside it, checked on every rerun.

A rerun with the same settings resumes (only missing or failed items are redone). A rerun with
different settings is refused with the keys that differ, unless the caller asks to overwrite,
in which case the old outputs are removed first. Settings hold what changes the content: the
model and a fingerprint of its files, prompt family, vision budget, sampling, the input data's
fingerprint and a hash of the code; never how fast or how verbosely it runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unireward.runs.rows import PathLike, replace_json

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
#: files of a model folder whose content shapes its output: weights, configs, tokenizer, chat template
_MODEL_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5", ".npz",
                   ".json", ".jinja", ".model", ".txt", ".tiktoken")  # fmt: skip
#: files of the package whose content shapes what it does: its code and its prompts and recipes
_CODE_SUFFIXES = (".py", ".txt", ".json", ".yaml", ".yml", ".jinja")
#: a hash is remembered only for a file last changed longer ago than this: within one tick of the
#: file system's clock a second write leaves size, mtime and inode as they were (git's "racy" files)
_SETTLED_NS = 2_000_000_000
_MAX_CACHED = 20_000


class SettingsChanged(ValueError):
    """An output holds results made with other settings."""


def code_version() -> str:
    """The package's version string (also recorded; what the code is, is :func:`code_fingerprint`)."""
    from unireward import __version__

    return __version__


def _sha256(path: PathLike) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def file_fingerprint(path: PathLike) -> str:
    """SHA-256 of a file's bytes (data files: every byte counts).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = p.write_text("x")
    >>> file_fingerprint(p)[:16]
    'sha256:2d711642b'
    """
    return _sha256(path)


def cache_dir() -> Path:
    """Where unireward keeps what it can recompute: ``$XDG_CACHE_HOME/unireward`` (``~/.cache/unireward``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "unireward"


_memo: dict[str, tuple[list[int], str]] = {}


def content_hash(path: PathLike, cache: PathLike | None = None) -> str:
    """SHA-256 of every byte of ``path``, remembered (in this process and in ``cache``, by default
    ``file-hashes.json`` under :func:`cache_dir`) for as long as its size, mtime, inode and device
    stay the same, so a 15 GB checkpoint is read once, not on every run. A file changed in the last
    two seconds is hashed every time (a write within the same clock tick would keep its mtime).
    """
    real = os.path.realpath(path)
    cache_file = Path(cache) if cache is not None else cache_dir() / "file-hashes.json"

    def signature() -> list[int]:
        st = os.stat(real)
        return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]

    sig = signature()
    known = _memo.get(real)
    if known is None:
        entry = _read_cache(cache_file).get(real)
        known = (entry["sig"], entry["digest"]) if isinstance(entry, dict) and "sig" in entry and "digest" in entry else None
    if known is not None and known[0] == sig:
        return known[1]
    digest = _sha256(real)
    if signature() == sig and time.time_ns() - sig[1] > _SETTLED_NS:
        _memo[real] = (sig, digest)
        _write_cache(cache_file, real, {"sig": sig, "digest": digest})
    return digest


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, key: str, entry: dict[str, Any]) -> None:
    """Add one entry (read, update, replace atomically; a lost race only costs a rehash later)."""
    data = _read_cache(path)
    data.pop(key, None)
    data[key] = entry
    for old in list(data)[: max(0, len(data) - _MAX_CACHED)]:
        del data[old]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_json(path, data)
    except OSError as e:  # a read-only home: hash again next time
        log.debug("cannot write the hash cache %s: %s", path, e)


def model_fingerprint(model: str, cache: PathLike | None = None) -> str | None:
    """A fingerprint of a local model folder: the content hash of each of its weight, config,
    tokenizer and chat-template files (see :func:`content_hash`; cached, so a large checkpoint is
    read once). ``None`` for a hub id or a served model name (nothing local to read).
    """
    root = Path(model)
    if not root.is_dir():
        return None
    h = hashlib.sha256()
    for p in sorted(root.iterdir()):
        if p.is_file() and p.suffix in _MODEL_SUFFIXES:
            h.update(f"{p.name}\0{content_hash(p, cache)}\0".encode())
    return "sha256:" + h.hexdigest()


_code: dict[str, str] = {}


def code_fingerprint(root: PathLike | None = None) -> str:
    """A hash of the package's sources: every code, prompt and recipe file under ``root`` (the
    installed ``unireward`` package by default, hashed once per process), by relative path and
    content. A rerun after any change to the code is refused rather than mixing rows of two versions.

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.py").write_text("x = 1")
    >>> before = code_fingerprint(root)
    >>> _ = (root / "a.py").write_text("x = 2")
    >>> code_fingerprint(root) != before
    True
    """
    if root is None:
        import unireward

        root = Path(unireward.__file__).parent
        if "" not in _code:
            _code[""] = code_fingerprint(root)
        return _code[""]
    base = Path(root)
    h = hashlib.sha256()
    files = sorted(p for p in base.rglob("*") if p.suffix in _CODE_SUFFIXES and "__pycache__" not in p.parts and p.is_file())
    for p in files:
        h.update(p.relative_to(base).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
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
    code_fingerprint: str = field(default_factory=code_fingerprint)

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("a manifest needs the command that made the output")
        self.settings = normalize(self.settings)

    def compared(self) -> dict[str, Any]:
        return {"command": self.command, "code_version": self.code_version, "code_fingerprint": self.code_fingerprint,
                **self.settings}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "code_version": self.code_version, "code_fingerprint": self.code_fingerprint,
                "settings": self.settings}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        return cls(command=d["command"], settings=d.get("settings") or {}, code_version=d.get("code_version", "?"),
                   code_fingerprint=d.get("code_fingerprint", "(not recorded)"))  # fmt: skip


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
