"""Row files: the one place that reads and writes JSON-lines files of results, records and pairs.

Long runs append one row per finished item, get killed, and are run again. Three things keep that
safe: :class:`RowWriter` holds an exclusive lock (a second writer is refused, the lock dies with
its process), repairs a half-written last line before appending, and writes each batch in one
flushed call; :func:`replace_rows` / :func:`replace_text` swap a whole file in atomically; and
:func:`iter_rows` reads on past a bad line, reporting it as ``file:line: reason``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: Deeper JSON than this is refused: real rows are a few levels deep, and Python's decoder and
#: every recursive walk over a row would otherwise fail with a RecursionError mid-run.
MAX_DEPTH = 64


class RowFileLocked(RuntimeError):
    """Another process is writing this file."""


@dataclass(frozen=True)
class BadLine:
    """One line that could not be read, with where and why.

    >>> str(BadLine("out.jsonl", 3, "invalid JSON (Expecting value)"))
    'out.jsonl:3: invalid JSON (Expecting value)'
    """

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Row:
    """A decoded JSON object and the 1-based line it came from."""

    line: int
    data: dict[str, Any]


def depth(obj: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of a decoded JSON value, counted up to ``limit + 1`` (iteratively).

    >>> depth(1), depth([]), depth({"a": [1, {"b": 2}]})
    (0, 1, 3)
    """
    deepest, stack = 0, [(obj, 1)]
    while stack:
        cur, d = stack.pop()
        if isinstance(cur, dict):
            cur = list(cur.values())
        elif not isinstance(cur, list):
            continue
        deepest = max(deepest, d)
        if deepest > limit:
            break
        stack.extend((v, d + 1) for v in cur)
    return deepest


def parse_line(raw: bytes) -> dict[str, Any]:
    """Decode one line into a JSON object, or raise ``ValueError`` with the reason in words.

    >>> parse_line(b'{"id": "a"}\\n')
    {'id': 'a'}
    >>> parse_line(b'\\xff{"id": "a"}')
    Traceback (most recent call last):
    ...
    ValueError: invalid UTF-8 at byte 0
    >>> parse_line(b'[1]')
    Traceback (most recent call last):
    ...
    ValueError: expected a JSON object, got list
    >>> parse_line(b'{"a": ' + b'[' * 100 + b']' * 100 + b'}')
    Traceback (most recent call last):
    ...
    ValueError: JSON nested deeper than 64 levels
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8 at byte {e.start}") from None
    try:
        obj = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if depth(obj) > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return obj


def check_fields(row: dict[str, Any], required: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first missing field.

    >>> check_fields({"id": "a"}, ("id", "text"))
    Traceback (most recent call last):
    ...
    ValueError: missing field 'text'
    """
    for key in required:
        if key not in row:
            raise ValueError(f"missing field {key!r}")


def iter_rows(
    path: PathLike, required: Sequence[str] = (), check: Callable[[dict[str, Any]], None] | None = None
) -> Iterator[Row | BadLine]:
    """Every line of ``path`` as a :class:`Row`, or a :class:`BadLine` saying what is wrong with it.

    Blank lines are skipped; a leading byte-order mark is ignored. ``required`` fields must be
    present and ``check`` may raise ``ValueError`` for rows of the wrong shape. A last line without
    its newline that does not parse is reported as torn (a writer killed mid-line). A missing file
    reads as empty.
    """
    p = Path(path)
    if not p.exists():
        return
    name = str(p)
    with open(p, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                row = parse_line(raw)
                check_fields(row, required)
                if check is not None:
                    check(row)
            except ValueError as e:
                torn = not raw.endswith(b"\n")
                yield BadLine(name, n, f"torn last line, {e}" if torn else str(e))
                continue
            yield Row(n, row)


def read_rows(
    path: PathLike,
    required: Sequence[str] = (),
    check: Callable[[dict[str, Any]], None] | None = None,
    bad: list[BadLine] | None = None,
) -> list[dict[str, Any]]:
    """The good rows of ``path``; each bad line is logged as a warning (and appended to ``bad``)."""
    rows = []
    for item in iter_rows(path, required, check):
        if isinstance(item, BadLine):
            log.warning("skipping %s", item)
            if bad is not None:
                bad.append(item)
        else:
            rows.append(item.data)
    return rows


def dumps(row: dict[str, Any]) -> str:
    """One row as one line (no raw newlines can appear inside: JSON escapes them).

    >>> dumps({"id": "a", "text": "x\\ny"})
    '{"id": "a", "text": "x\\\\ny"}\\n'
    """
    return json.dumps(row, ensure_ascii=False) + "\n"


def repair_tail(path: PathLike) -> bool:
    """Make ``path`` end on a line boundary before appending; True when something was changed.

    A last line without a newline is kept (newline added) when it is a whole JSON object, and cut
    off otherwise: it is what a writer killed mid-line leaves behind.
    """
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return False
    with open(p, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return False
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - (1 << 16))
        while True:  # find the start of the last line without reading the whole file
            f.seek(start)
            chunk = f.read(size - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0 or start == 0:
                cut = start + cut + 1
                break
            start = max(0, start - (1 << 16))
        f.seek(cut)
        tail = f.read()
        try:
            parse_line(tail)
        except ValueError:
            log.warning("%s: dropping a torn last line (%d bytes) left by an interrupted write", p, len(tail))
            f.truncate(cut)
        else:
            f.write(b"\n")
        f.flush()
        os.fsync(f.fileno())
    return True


@contextlib.contextmanager
def exclusive(path: PathLike) -> Iterator[None]:
    """Hold ``<path>.lock`` for the block; a second holder is refused at once, naming the first.

    The lock is an ``flock`` on an open file, so the kernel drops it when the holder dies, even
    by ``kill -9``; the lock file itself may stay and is harmless.
    """
    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            raise RowFileLocked(f"{path} is being written by another process (pid {holder}); wait for it or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


class RowWriter:
    """Append rows to a JSONL file under an exclusive lock; use as a context manager.

    Each :meth:`write` call is one ``write`` + flush (+ fsync), so a killed run loses at most the
    batch in flight and leaves at most one torn line, which the next writer repairs.
    """

    def __init__(self, path: PathLike, fsync: bool = True, lock: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.lock = lock  # False when the caller already holds :func:`exclusive` for this path
        self._lock: contextlib.AbstractContextManager[None] | None = None
        self._f: Any = None

    def __enter__(self) -> RowWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = exclusive(self.path) if self.lock else contextlib.nullcontext()
        self._lock.__enter__()
        try:
            repair_tail(self.path)
            self._f = open(self.path, "a", encoding="utf-8")
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def write(self, rows: Iterable[dict[str, Any]]) -> int:
        text = "".join(dumps(r) for r in rows)
        if text:
            self._f.write(text)
            self._f.flush()
            if self.fsync:
                os.fsync(self._f.fileno())
        return text.count("\n")

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._f is not None:
                self._f.close()
        finally:
            if self._lock is not None:
                self._lock.__exit__(*exc)


def append_rows(path: PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Append rows (locked, tail repaired, flushed); returns how many."""
    with RowWriter(path) as w:
        return w.write(rows)


class _Sink:
    def __init__(self, f: Any):
        self._f = f
        self.count = 0

    def write(self, rows: Iterable[dict[str, Any]]) -> int:
        text = "".join(dumps(r) for r in rows)
        self._f.write(text)
        n = text.count("\n")
        self.count += n
        return n


@contextlib.contextmanager
def replacing(path: PathLike) -> Iterator[_Sink]:
    """Stream rows into a temporary file that replaces ``path`` atomically when the block ends
    without an error (on an error ``path`` is left as it was)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield _Sink(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace_text(path: PathLike, text: str) -> None:
    """Write ``path`` atomically: readers see the old file or the new one, never a part."""
    with replacing(path) as sink:
        sink._f.write(text)


def replace_rows(path: PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write all rows to ``path`` atomically; returns how many."""
    with replacing(path) as sink:
        return sink.write(rows)


def replace_json(path: PathLike, obj: Any) -> None:
    """Write one JSON document (reports, manifests) atomically."""
    replace_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def has_rows(path: PathLike) -> bool:
    """Whether ``path`` exists and holds a non-blank line."""
    p = Path(path)
    if not p.exists():
        return False
    with open(p, "rb") as f:
        return any(line.strip() for line in f)
