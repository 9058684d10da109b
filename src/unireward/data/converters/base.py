"""What every source converter shares: reading the published files, media paths, rejects, reports.

A converter turns raw records of one public preference set into :class:`PreferencePair` objects.
A record that cannot be converted raises :class:`RowError`; the driver counts it, writes it to the
rejects file with the reason and goes on, so one bad row never stops a 100K-row conversion.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from unireward.data.schema import PreferencePair, SchemaError
from unireward.protocol.tasks import Task
from unireward.rows import BadLine, iter_rows, replacing

log = logging.getLogger(__name__)

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


class RowError(ValueError):
    """A raw record that cannot become a pair; the message is the reason written to the rejects file."""


class SourceUnavailable(RuntimeError):
    """The source is neither on disk nor reachable on the hub."""


@dataclass
class ConvertContext:
    """Where media live and where embedded media are written; fixed for one conversion.

    ``root``: folder that relative media paths in the source are resolved against.
    ``media_out``: folder that images embedded in parquet rows (``{"bytes": ...}``) are written to.
    ``balance``: for sources that always list the preferred candidate first (chosen/rejected
    layouts), put it second for about half the pairs, chosen by a hash of the id so that reruns
    agree, so a judge cannot learn "the first one wins".
    ``check_media``: reject rows whose media files do not exist.
    """

    root: Path | None = None
    media_out: Path | None = None
    balance: bool = True
    check_media: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self.root = Path(self.root) if self.root is not None else None
        self.media_out = Path(self.media_out) if self.media_out is not None else None

    def path(self, rel: Any, fld: str) -> str:
        """A media path from the source, joined to the root; checked when ``check_media`` is on."""
        if not isinstance(rel, str) or not rel.strip():
            raise RowError(f"{fld}: expected a media path, got {rel!r:.60}")
        rel = rel.strip()
        out = rel if self.root is None or "://" in rel or os.path.isabs(rel) else str(self.root / rel)
        if self.check_media and "://" not in out and not os.path.exists(out):
            raise RowError(f"{fld}: media file not found: {out}")
        return out

    def media(self, value: Any, fld: str, key: str) -> str:
        """A path for an image given as a path, a ``{"path", "bytes"}`` dict (parquet) or raw bytes.

        Embedded bytes are written once to ``media_out/<key>.<ext>`` (the name comes from the row
        id, so reruns overwrite rather than duplicate).
        """
        if isinstance(value, str):
            return self.path(value, fld)
        data = None
        if isinstance(value, dict):
            data = value.get("bytes")
            if not data:
                if value.get("path"):
                    return self.path(value["path"], fld)
                raise RowError(f"{fld}: image has neither bytes nor a path")
        elif isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif hasattr(value, "save"):  # a decoded PIL image from datasets
            buf = io.BytesIO()
            value.save(buf, format="PNG")
            data = buf.getvalue()
        else:
            raise RowError(f"{fld}: unsupported media value of type {type(value).__name__}")
        if self.media_out is None:
            raise RowError(f"{fld}: the image is embedded in the row; pass a media output folder to write it")
        ext = _sniff_ext(data)
        if ext is None:
            raise RowError(f"{fld}: embedded bytes are not a known image format")
        self.media_out.mkdir(parents=True, exist_ok=True)
        target = self.media_out / f"{_safe(key)}{ext}"
        if not target.exists():
            target.write_bytes(data)
        return str(target)

    def video(self, rel: Any, fld: str) -> str | list[str]:
        """A video path, or the sorted frame files when the path is a folder of frames."""
        path = self.path(rel, fld)
        if os.path.isdir(path):
            frames = sorted(str(Path(path) / f) for f in os.listdir(path) if f.lower().endswith(_IMAGE_EXT))
            if not frames:
                raise RowError(f"{fld}: frame folder {path} holds no images")
            return frames
        return path

    def place(self, key: str, chosen: Any, rejected: Any) -> tuple[tuple[Any, Any], int]:
        """Candidates and label for a chosen/rejected record (see ``balance``)."""
        if self.balance and stable_coin(key, self.seed):
            return (rejected, chosen), 2
        return (chosen, rejected), 1


def stable_coin(key: str, seed: int = 0) -> bool:
    """A fair coin that depends only on ``key`` and ``seed`` (reruns and machines agree).

    >>> stable_coin("pair-7") == stable_coin("pair-7")
    True
    >>> sum(stable_coin(str(i)) for i in range(1000)) in range(450, 551)
    True
    """
    return hashlib.sha256(f"{seed}:{key}".encode()).digest()[0] & 1 == 1


def _safe(key: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return keep[:120] or "item"


def _sniff_ext(data: bytes) -> str | None:
    """File extension from the magic bytes.

    >>> _sniff_ext(b"\\x89PNG\\r\\n\\x1a\\n...."), _sniff_ext(b"\\xff\\xd8\\xff\\xe0"), _sniff_ext(b"text")
    ('.png', '.jpg', None)
    """
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:3] == b"GIF":
        return ".gif"
    if data[:2] == b"BM":
        return ".bmp"
    return None


def read_records(path: str | os.PathLike[str]) -> Iterator[tuple[str, Any]]:
    """Raw records of a JSON array, JSONL, parquet or CSV file, each with a row reference.

    A JSONL line that is not valid JSON is yielded as a :class:`RowError` so the caller can
    reject it and go on.
    """
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        n = 0
        for batch in pf.iter_batches(batch_size=256):
            for rec in batch.to_pylist():
                n += 1
                yield f"{name}:{n}", rec
    elif suffix == ".csv":
        import csv

        with open(path, encoding="utf-8", newline="") as f:
            for n, rec in enumerate(csv.DictReader(f), start=2):  # line 1 is the header
                yield f"{name}:{n}", rec
    elif suffix == ".jsonl":
        yield from _json_lines(path)
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            # Several published ".json" files are really JSON lines (and a bad line is one reject).
            yield from _json_lines(path)
            return
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), [data])
        for n, rec in enumerate(data, start=1):
            yield f"{name}[{n - 1}]", rec


def _json_lines(path: Path) -> Iterator[tuple[str, Any]]:
    for item in iter_rows(path):
        if isinstance(item, BadLine):
            yield f"{path.name}:{item.line}", RowError(item.reason)
        else:
            yield f"{path.name}:{item.line}", item.data


@dataclass
class ConvertReport:
    source: str
    read: int = 0
    written: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "read": self.read, "written": self.written, "rejected": self.rejected,
            "labels": dict(self.labels), "reject_reasons": dict(self.reasons.most_common(20)),
        }  # fmt: skip


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0][:80]


def _jsonable(rec: Any) -> Any:
    """A raw record with binary payloads replaced, so rejects files stay small and valid JSON."""
    if isinstance(rec, dict):
        return {k: _jsonable(v) for k, v in rec.items()}
    if isinstance(rec, (list, tuple)):
        return [_jsonable(v) for v in rec]
    if isinstance(rec, (bytes, bytearray)):
        return f"<{len(rec)} bytes>"
    if isinstance(rec, (str, int, float, bool)) or rec is None:
        return rec
    return f"<{type(rec).__name__}>"


class Converter:
    """One public source. Subclasses set the class attributes and implement :meth:`convert_record`.

    ``files`` are the published file names looked for when the input is a folder, first match wins.
    ``hub_id``/``hub_config``/``hub_split`` locate the same data on the Hugging Face hub.
    """

    name: ClassVar[str] = ""
    task: ClassVar[Task]
    hub_id: ClassVar[str | None] = None
    hub_config: ClassVar[str | None] = None
    hub_split: ClassVar[str] = "train"
    files: ClassVar[tuple[str, ...]] = ()

    def locate(self, src: Path) -> list[Path]:
        """The data files of ``src`` (a file, or a folder holding the published files)."""
        if src.is_file():
            return [src]
        if src.is_dir():
            for pattern in self.files:
                found = sorted(p for p in src.glob(pattern) if p.is_file())
                if found:
                    return found
            raise FileNotFoundError(f"{self.name}: no {' or '.join(self.files)} under {src}")
        raise FileNotFoundError(f"{self.name}: {src} does not exist")

    def records(self, src: str | os.PathLike[str]) -> Iterator[tuple[str, Any]]:
        """Raw records from a local file/folder, or from the hub when ``src`` is ``hub:`` or the hub id."""
        text = str(src)
        if self.hub_id and text in ("hub", "hub:", f"hub:{self.hub_id}", self.hub_id):
            yield from self.hub_records()
            return
        for path in self.locate(Path(src)):
            yield from read_records(path)

    def hub_records(self) -> Iterator[tuple[str, Any]]:
        try:
            import datasets

            ds = datasets.load_dataset(self.hub_id, self.hub_config, split=self.hub_split)
        except Exception as e:  # offline, gated or renamed: say which and how to work around it
            raise SourceUnavailable(
                f"{self.name}: could not load {self.hub_id!r} from the hub ({type(e).__name__}: {str(e)[:200]}); "
                f"download it and pass the local folder instead"
            ) from e
        for n, rec in enumerate(ds):
            yield f"{self.hub_id}:{n}", rec

    def convert_record(self, ref: str, rec: dict[str, Any], ctx: ConvertContext) -> Iterable[PreferencePair]:
        raise NotImplementedError

    def convert_all(self, records: Iterable[tuple[str, Any]], ctx: ConvertContext) -> Iterator[tuple[str, Any]]:
        """Yield ``(ref, pair)`` or ``(ref, (RowError, raw))``; grouping sources override this."""
        for ref, rec in records:
            if isinstance(rec, RowError):
                yield ref, (rec, None)
                continue
            try:
                if not isinstance(rec, dict):
                    raise RowError(f"expected an object, got {type(rec).__name__}")
                for pair in self.convert_record(ref, rec, ctx):
                    yield ref, pair
            except (RowError, SchemaError) as e:
                yield ref, (RowError(str(e)), rec)
            except (KeyError, TypeError, ValueError, IndexError) as e:
                yield ref, (RowError(f"malformed record ({type(e).__name__}: {e})"), rec)

    def make(self, **kw: Any) -> PreferencePair:
        kw.setdefault("task", self.task)
        kw.setdefault("source", self.name)
        return PreferencePair(**kw)


def require(rec: dict[str, Any], *keys: str) -> list[Any]:
    """The values of ``keys``, or a :class:`RowError` naming the first missing or empty one."""
    out = []
    for k in keys:
        v = rec.get(k)
        if v is None or (isinstance(v, str) and not v.strip()):
            raise RowError(f"missing field {k!r}")
        out.append(v)
    return out


def run_conversion(
    converter: Converter,
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    ctx: ConvertContext | None = None,
    rejects: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> ConvertReport:
    """Convert ``src`` into pairs JSONL at ``out``; bad rows go to ``rejects`` (default ``<out>.rejects.jsonl``)."""
    ctx = ctx or ConvertContext()
    out = Path(out)
    rejects = Path(rejects) if rejects is not None else out.with_name(out.name + ".rejects.jsonl")
    report = ConvertReport(converter.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    rejects.parent.mkdir(parents=True, exist_ok=True)
    seen: dict[str, tuple[str, str]] = {}  # id -> (where it was first written, digest of the pair)
    with replacing(out) as fo, replacing(rejects) as fr:
        for ref, item in converter.convert_all(_counting(converter.records(src), report), ctx):
            if isinstance(item, PreferencePair):
                bad = non_finite(item.meta, "meta")
                digest = hashlib.sha256(json.dumps(item.to_dict(), sort_keys=True, default=str).encode()).hexdigest()
                if bad is not None:
                    item = (RowError(f"non-finite number in {bad}"), item.to_dict())
                elif item.id in seen and seen[item.id][1] == digest:
                    item = (RowError(f"exact duplicate of the pair from {seen[item.id][0]}"), item.to_dict())
            if isinstance(item, PreferencePair):
                if item.id in seen:  # ids must be unique for mixing and swap augmentation
                    new = f"{item.id}~{report.written}"
                    log.warning("%s: id %r already used by %s (a different pair); written as %r", ref, item.id, seen[item.id][0], new)
                    item.id = new
                seen[item.id] = (ref, digest)
                fo.write([item.to_dict()])
                report.written += 1
                report.labels[str(item.label)] += 1
            else:
                err, raw = item
                report.rejected += 1
                report.reasons[_reason_kind(str(err))] += 1
                fr.write([{"row": ref, "reason": str(err), "record": _jsonable(raw)}])
            if limit is not None and report.written >= limit:
                break
    return report


def non_finite(value: Any, where: str) -> str | None:
    """Where a NaN or infinite number hides in ``value`` (JSON has no such numbers), or ``None``.

    >>> non_finite({"scores": [4.0, float("nan")]}, "meta")
    'meta.scores[1]'
    >>> non_finite({"scores": [4, 5]}, "meta") is None
    True
    """
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if isinstance(value, dict):
        for k, v in value.items():
            found = non_finite(v, f"{where}.{k}")
            if found:
                return found
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = non_finite(v, f"{where}[{i}]")
            if found:
                return found
    return None


def _counting(records: Iterable[tuple[str, Any]], report: ConvertReport) -> Iterator[tuple[str, Any]]:
    for item in records:
        report.read += 1
        yield item
