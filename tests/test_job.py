"""The resumable job loop on its own: resume, retry, one row per item in plan order, fixed chunks,
the exit status, and a chunk runner other than the local one (threads, results out of order)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from unireward.manifest import SettingsChanged
from unireward.rows import RowWriter, read_rows
from unireward.runs import Chunk, Item, Job, JobSpec
from unireward.runs.job import Emit
from unireward.runs.manifest import Manifest


def _spec(out: Path, **kw) -> JobSpec:
    return JobSpec("square", out, Manifest("square", {"power": 2}), **kw)


def _plan(n: int) -> list[Item]:
    return [Item(f"k{i}", i) for i in range(n)]


class Flaky:
    """Squares numbers; the values in ``fail`` come back as error rows; remembers what it was given."""

    def __init__(self, fail: set[int] = frozenset()):  # type: ignore[assignment]
        self.fail, self.seen, self.loads = set(fail), [], 0

    def __call__(self):
        self.loads += 1

        def work(chunk: Chunk) -> list[dict]:
            self.seen.append((chunk.start, chunk.values))
            return [{"key": it.key, "value": None if it.value in self.fail else it.value**2,
                     "error": "boom" if it.value in self.fail else None} for it in chunk.items]  # fmt: skip

        return work


def test_resume_retries_failed_rows_and_keeps_one_row_per_item_in_plan_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    flaky = Flaky(fail={1, 3})
    first = Job(_spec(out, chunk_size=2), _plan(5), work=flaky).run()
    assert (first.ran, first.skipped, first.failed) == (5, 0, 2)
    assert first.exit_status() == 1 and "2 of 5 items failed" in capsys.readouterr().err
    assert flaky.seen == [(0, [0, 1]), (2, [2, 3]), (4, [4])]

    fixed = Flaky()
    second = Job(_spec(out, chunk_size=2), _plan(5), work=fixed).run()
    assert fixed.seen == [(0, [1, 3])]  # only the failed items, chunked over what was left
    assert (second.ran, second.skipped, second.failed, second.exit_status()) == (2, 3, 0, 0)
    rows = read_rows(out)
    assert [r["key"] for r in rows] == ["k0", "k1", "k2", "k3", "k4"]  # the retried rows took their places
    assert [r["value"] for r in rows] == [0, 1, 4, 9, 16] and all(r["error"] is None for r in rows)

    idle = Flaky()
    third = Job(_spec(out, chunk_size=2), _plan(5), work=idle).run()
    assert idle.loads == 0 and third.ran == 0 and third.skipped == 5  # nothing to do: nothing loaded
    assert read_rows(out) == rows


def test_fixed_chunks_keep_their_offsets_when_resumed(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    Job(_spec(out), _plan(0), work=Flaky()).run()  # the manifest of a run ...
    with RowWriter(out) as w:  # ... killed after items 0, 1 and 4
        w.write([{"key": "k0", "value": 0}, {"key": "k1", "value": 1}, {"key": "k4", "value": 16}])
    got = Flaky()
    Job(_spec(out, chunk_size=2, fixed_chunks=True), _plan(6), work=got).run()
    assert got.seen == [(2, [2, 3]), (4, [5])]  # the chunks of an uninterrupted run, less what was done
    assert [r["value"] for r in read_rows(out)] == [0, 1, 4, 9, 16, 25]


def test_other_settings_are_refused_and_ready_rows_are_written_without_running(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    plan = [Item("k0", 0), Item("row 2", row={"key": "row 2", "error": "row p.jsonl:2: invalid JSON"}), Item("k2", 2)]
    got = Flaky()
    result = Job(_spec(out), plan, work=got).run()
    assert got.seen == [(0, [0, 2])] and result.failed == 1
    assert [r["key"] for r in read_rows(out)] == ["k0", "row 2", "k2"]
    other = JobSpec("square", out, Manifest("square", {"power": 3}))
    with pytest.raises(SettingsChanged, match="power: 2 -> 3"):
        Job(other, plan, work=Flaky()).run()
    with pytest.raises(ValueError, match="'k0' is planned twice"):
        Job(_spec(out), [Item("k0"), Item("k0")], work=Flaky())


def test_bad_input_counts_against_the_error_rate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = ["row p.jsonl:3: invalid JSON (Expecting value at column 1)"]
    result = Job(_spec(tmp_path / "a.jsonl"), _plan(3), work=Flaky(), bad_input=bad).run()
    assert result.failed == 1 and result.bad_input == bad
    assert result.exit_status() == 1
    assert "1 of 4 items failed (1 input line(s) could not be read" in capsys.readouterr().err
    tolerant = Job(_spec(tmp_path / "b.jsonl", max_error_rate=0.25), _plan(3), work=Flaky(), bad_input=bad).run()
    assert tolerant.exit_status() == 0


class ThreadPoolRunner:
    """Another engine behind the same seam: chunks run on worker threads and their rows come back
    last chunk first (each chunk is awaited before the next is submitted, so the order is fixed
    whatever the load), and emit is called from this thread only."""

    def __init__(self, workers: int = 3):
        self.workers = workers
        self.threads: set[str] = set()
        self.emitted: list[str] = []

    def __call__(self, chunks: Iterator[Chunk], emit: Emit) -> None:
        def work(chunk: Chunk) -> list[dict]:
            self.threads.add(threading.current_thread().name)
            return [{"key": it.key, "value": it.value**2, "error": None} for it in chunk.items]

        with ThreadPoolExecutor(self.workers) as pool:
            for chunk in reversed(list(chunks)):
                rows = pool.submit(work, chunk).result()
                self.emitted += [r["key"] for r in rows]
                emit(rows)


def test_a_runner_that_returns_rows_out_of_order_or_loses_some(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    runner = ThreadPoolRunner()
    result = Job(_spec(out, chunk_size=2), _plan(6)).run(runner)
    assert runner.threads and threading.current_thread().name not in runner.threads
    assert runner.emitted == ["k4", "k5", "k2", "k3", "k0", "k1"]
    file_keys = [json.loads(line)["key"] for line in out.read_text().splitlines()]
    assert file_keys == [f"k{i}" for i in range(6)]  # written as they came, kept in plan order
    assert [r["value"] for r in result.rows] == [0, 1, 4, 9, 16, 25] and result.failed == 0

    def loses_odd(chunks: Iterator[Chunk], emit: Emit) -> None:
        for c in chunks:
            emit([{"key": it.key, "value": it.value, "error": None} for it in c.items if it.value % 2 == 0])

    lossy = Job(_spec(tmp_path / "l.jsonl"), _plan(4)).run(loses_odd)
    assert (lossy.failed, lossy.missing) == (2, 2)  # an item left without a row failed ...
    again = Job(_spec(tmp_path / "l.jsonl"), _plan(4), work=Flaky()).run()
    assert again.ran == 2 and again.failed == 0  # ... and the next run does it

    def stranger(chunks: Iterator[Chunk], emit: Emit) -> None:
        emit([{"key": "nobody", "value": 0}])

    with pytest.raises(ValueError, match="'nobody', which is not planned"):
        Job(_spec(tmp_path / "s.jsonl"), _plan(1)).run(stranger)
