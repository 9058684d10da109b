"""One resumable job: the loop that ``judge --input``, ``sample`` and ``distill`` share.

A job has a *plan* (every item of the input, each with a unique key) and one row file. Running it:

1. locks the row file (:func:`~unireward.runs.rows.exclusive`) and checks the manifest
   (:func:`~unireward.runs.manifest.begin_run`): same settings resume, others are refused;
2. skips the items whose row is already there and finished (a failed row is done again);
3. cuts what is left into chunks and hands them to a **chunk runner**, which returns each chunk's
   rows through ``emit``; every ``emit`` is appended and flushed through the one row writer;
4. keeps one row per item, in plan order (a retried row replaces its failed one);
5. reports how many items failed, so the exit status can say so.

The chunk runner is the one part that decides *how* chunks are run. :class:`LocalRunner` (the
default) runs them one after another in this process; any callable ``runner(chunks, emit)`` can
take its place — a pool of workers, an async client, a Ray actor pool — as long as it calls
``emit`` from one thread at a time with rows that carry their item's key. Rows, manifest, resume,
ordering and the exit status stay here whatever the runner.

>>> import tempfile, pathlib
>>> from unireward.runs.manifest import Manifest
>>> out = pathlib.Path(tempfile.mkdtemp()) / "squares.jsonl"
>>> spec = JobSpec("square", out, Manifest("square", {"power": 2}), chunk_size=2)
>>> plan = [Item(str(n), n) for n in range(5)]
>>> work = lambda: lambda chunk: [{"key": it.key, "value": it.value ** 2} for it in chunk.items]
>>> result = Job(spec, plan, work=work).run()
>>> [r["value"] for r in result.rows], result.ran, result.failed
([0, 1, 4, 9, 16], 5, 0)
>>> Job(spec, plan, work=work).run().skipped  # a rerun finds everything done
5
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from unireward.runs.manifest import Manifest, begin_run
from unireward.runs.rows import PathLike, RowWriter, exclusive, read_rows, replace_rows

log = logging.getLogger(__name__)

Row = dict[str, Any]
Emit = Callable[[Sequence[Row]], None]


@dataclass(frozen=True)
class Item:
    """One planned unit of work: its key in the row file and the value a chunk runner works on.

    ``row`` is for an item whose row is known without running it (an input line that is not a
    valid item, written as an error row); such items never reach the chunk runner.
    """

    key: str
    value: Any = None
    row: Row | None = None


@dataclass(frozen=True)
class Chunk:
    """Items handed to a chunk runner together.

    ``start`` is where the chunk begins: the offset of its slice in the plan when chunks are fixed
    (:attr:`JobSpec.fixed_chunks`; a seed derived from it is the same in a resumed run), else its
    offset in what was left to do.
    """

    index: int
    start: int
    items: tuple[Item, ...]

    @property
    def values(self) -> list[Any]:
        return [it.value for it in self.items]


class ChunkRunner(Protocol):
    """How chunks are run: consume ``chunks`` and pass every result row to ``emit``.

    Rows may come in any order and in any grouping; each must carry its item's key. ``emit`` must
    not be called from two threads at once. An item left without a row counts as failed (and is
    done again by the next run).
    """

    def __call__(self, chunks: Iterator[Chunk], emit: Emit) -> None: ...


class LocalRunner:
    """Run chunks in this process, in order. ``load`` is called once, before the first chunk, and
    returns the function that turns one chunk into its rows (so a model is loaded only when there
    is work to do)."""

    def __init__(self, load: Callable[[], Callable[[Chunk], Sequence[Row]]]):
        self.load = load

    def __call__(self, chunks: Iterator[Chunk], emit: Emit) -> None:
        work: Callable[[Chunk], Sequence[Row]] | None = None
        for chunk in chunks:
            if work is None:
                work = self.load()
            emit(work(chunk))


def has_error(row: Row) -> bool:
    """The default failure test: the row carries an ``error``.

    >>> has_error({"key": "a", "error": None}), has_error({"key": "a", "error": "timeout"})
    (False, True)
    """
    return row.get("error") is not None


@dataclass
class JobSpec:
    """What a job writes and how it resumes.

    ``rows`` is the row file. ``manifest_at`` is the output whose manifest is checked (the row file
    itself by default; a folder for commands that write several files), and ``produced`` the files
    that decide whether there is anything to resume (``--overwrite`` deletes them). ``failed``
    says whether a row failed; ``retry`` whether a rerun does it again (by default: the failed
    ones). ``progress`` names a progress bar on stderr (empty: none).
    """

    command: str
    rows: Path
    manifest: Manifest
    manifest_at: Path | None = None
    produced: Sequence[PathLike] = ()
    key: str = "key"
    required: tuple[str, ...] = ()
    chunk_size: int = 16
    fixed_chunks: bool = False
    overwrite: bool = False
    max_error_rate: float = 0.0
    progress: str = ""
    unit: str = "item"
    failed: Callable[[Row], bool] = has_error
    retry: Callable[[Row], bool] | None = None

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("a job needs the command that runs it")
        if self.chunk_size < 1:
            raise ValueError(f"chunk size must be >= 1, got {self.chunk_size}")
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise ValueError(f"--max-error-rate must be between 0 and 1, got {self.max_error_rate}")
        self.rows = Path(self.rows)
        self.manifest_at = Path(self.manifest_at) if self.manifest_at is not None else self.rows
        self.produced = tuple(Path(p) for p in self.produced) or (self.rows,)

    def redo(self, row: Row) -> bool:
        return (self.retry or self.failed)(row)


@dataclass
class JobResult:
    """What a run found and did. ``rows`` holds the one row of each planned item that has one, in
    plan order; ``extra`` the rows of keys the plan does not hold (kept in the file)."""

    command: str
    output: Path
    state: str
    total: int
    skipped: int
    ran: int
    rows: list[Row]
    failed: int
    missing: int
    bad_input: list[str] = field(default_factory=list)
    extra: list[Row] = field(default_factory=list)
    max_error_rate: float = 0.0
    unit: str = "item"

    def exit_status(self, where: str | None = None) -> int:
        """1 when more than ``max_error_rate`` of the items (and unreadable input lines) failed,
        said on stderr with where to look; else 0."""
        total = self.total + len(self.bad_input)
        if self.failed <= self.max_error_rate * total:
            return 0
        parts = []
        if self.failed > len(self.bad_input):
            parts.append(f"see {where or f'the error field in {self.output}'}; rerun the same command to retry them")
        if self.bad_input:
            parts.append(f"{len(self.bad_input)} input line(s) could not be read, named above")
        print(f"unireward {self.command}: {self.failed} of {total} {self.unit}s failed ({'; '.join(parts)}); "
              "allow some with --max-error-rate", file=sys.stderr)  # fmt: skip
        return 1


class Job:
    """A planned job; :meth:`run` does what is left of it. ``work`` is the default runner's chunk
    function factory (see :class:`LocalRunner`); ``bad_input`` names input lines that are not
    items (``file:line: reason``): they count as failed, are not written and are not retried."""

    def __init__(
        self,
        spec: JobSpec,
        plan: Sequence[Item],
        work: Callable[[], Callable[[Chunk], Sequence[Row]]] | None = None,
        bad_input: Sequence[str] = (),
    ):
        self.spec = spec
        self.plan = list(plan)
        self.work = work
        self.bad_input = [str(b) for b in bad_input]
        self._index = {it.key: i for i, it in enumerate(self.plan)}
        if len(self._index) < len(self.plan):
            dup = next(k for k, n in Counter(it.key for it in self.plan).items() if n > 1)
            raise ValueError(f"{spec.command}: key {dup!r} is planned twice; every item needs its own key")

    def run(self, runner: ChunkRunner | None = None, finish: Callable[[JobResult], Any] | None = None) -> JobResult:
        """Do every item not yet done with ``runner`` (default: :class:`LocalRunner` over ``work``).
        ``finish`` is called with the result while the row file is still locked (to write what is
        derived from the rows)."""
        spec = self.spec
        if runner is None:
            if self.work is None:
                raise ValueError(f"{spec.command}: give a chunk runner or the work of the local one")
            runner = LocalRunner(self.work)
        spec.rows.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(spec.rows):
            state = begin_run(spec.manifest_at, spec.manifest, produced=spec.produced, overwrite=spec.overwrite)
            done = {str(r[spec.key]) for r in self._read() if not spec.redo(r)}
            todo = [it for it in self.plan if it.key not in done]
            if todo:
                self._execute(runner, todo, done)
            result = self._settle(state, skipped=len(self.plan) - len(todo), ran=len(todo))
            if finish is not None:
                finish(result)
        return result

    def _read(self) -> list[Row]:
        return read_rows(self.spec.rows, required=(self.spec.key, *self.spec.required))

    def _chunks(self, todo: list[Item], done: set[str], write: Emit) -> Iterator[Chunk]:
        size = self.spec.chunk_size
        if self.spec.fixed_chunks:
            slices = ((start, [it for it in self.plan[start : start + size] if it.key not in done])
                      for start in range(0, len(self.plan), size))  # fmt: skip
        else:
            slices = ((start, todo[start : start + size]) for start in range(0, len(todo), size))
        for index, (start, items) in enumerate(slices):
            ready = [it.row for it in items if it.row is not None]
            if ready:
                write(ready)
            work = tuple(it for it in items if it.row is None)
            if work:
                yield Chunk(index, start, work)

    def _execute(self, runner: ChunkRunner, todo: list[Item], done: set[str]) -> None:
        spec = self.spec
        bar = None
        if spec.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(self.plan), initial=len(self.plan) - len(todo), desc=spec.progress, unit=spec.unit, file=sys.stderr)
        with RowWriter(spec.rows, lock=False) as writer:

            def emit(rows: Sequence[Row]) -> None:
                rows = list(rows)
                for r in rows:
                    if str(r.get(spec.key)) not in self._index:
                        raise ValueError(f"{spec.command}: a chunk runner returned a row for {r.get(spec.key)!r}, which is not planned")
                writer.write(rows)
                if bar is not None:
                    bar.update(len(rows))

            try:
                runner(self._chunks(todo, done, emit), emit)
            finally:
                if bar is not None:
                    bar.close()

    def _settle(self, state: str, skipped: int, ran: int) -> JobResult:
        """One row per key (a finished row is never replaced by a failed one), planned keys in plan
        order and the others after them; the file is rewritten only when it differs from that."""
        spec = self.spec
        rows = self._read()
        latest: dict[str, Row] = {}
        for r in rows:
            k = str(r[spec.key])
            if k not in latest or spec.redo(latest[k]) or not spec.redo(r):
                latest[k] = r
        planned = [latest[it.key] for it in self.plan if it.key in latest]
        extra = [r for k, r in latest.items() if k not in self._index]
        canonical = planned + extra
        if len(canonical) != len(rows) or any(a is not b for a, b in zip(canonical, rows, strict=True)):
            replace_rows(spec.rows, canonical)
        n_failed = sum(spec.failed(r) for r in planned)
        missing = len(self.plan) - len(planned)
        return JobResult(
            command=spec.command, output=spec.rows, state=state, total=len(self.plan), skipped=skipped, ran=ran,
            rows=planned, failed=n_failed + missing + len(self.bad_input), missing=missing, bad_input=self.bad_input,
            extra=extra, max_error_rate=spec.max_error_rate, unit=spec.unit,
        )  # fmt: skip
