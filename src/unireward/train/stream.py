"""Training sets read lazily, so memory follows the batch and not the data.

A record file becomes an Arrow file on disk holding one JSON string per usable record (written in
batches, memory-mapped when read: the rows are indexed on disk); the dataset's transform builds each
row's prompt and loads and sizes its media through the one vision budget only when the trainer asks
for that row. TRL sees the same columns as from an in-memory dataset (``prompt``, ``images``, and
``completion`` for SFT or ``label``/``task``/``pair_id`` for GRPO), in the same order, with the same pixels.

A record whose media file is missing is left out when the index is built (named in ``errors``); one
whose media fails to decode at training time is dropped from its batch with a warning naming it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unireward.data.schema import PreferencePair
from unireward.media import MediaError, VisionBudget, resolve
from unireward.rows import BadLine, iter_rows
from unireward.train.records import prompt_row

log = logging.getLogger(__name__)

_BATCH = 1024  # records per Arrow batch while indexing: bounds the indexer's memory


def _media_paths(pair: PreferencePair) -> Iterator[str]:
    refs = list(pair.candidates) if pair.task.is_generation else [pair.reference]
    for ref in refs:
        for item in ref if isinstance(ref, list) else [ref]:
            if isinstance(item, str):
                yield item


def _usable(data: dict[str, Any], kind: str, media_root: str | None) -> str | None:
    """Why a record cannot be trained on, or None."""
    pair = PreferencePair.from_dict(data["pair"])
    if kind == "grpo" and pair.label_text is None:
        return "a tie has no verdict to reward"
    for ref in _media_paths(pair):
        path = resolve(ref, media_root)
        if not os.path.exists(path):
            return f"media file not found: {path}"
    return None


def build_index(train_file: str | os.PathLike[str], out: str | os.PathLike[str], kind: str, media_root: str | None,
                errors: list[str]) -> int:  # fmt: skip
    """Write the Arrow index of ``train_file``'s usable records to ``out``; returns how many."""
    import pyarrow as pa

    required = ("pair", "completion") if kind == "sft" else ("pair",)
    schema = pa.schema([("record", pa.large_string())])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    batch: list[str] = []
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for item in iter_rows(train_file, required=required):
            if isinstance(item, BadLine):
                errors.append(str(item))
                continue
            try:
                why = _usable(item.data, kind, media_root)
            except (KeyError, TypeError, ValueError) as e:
                why = f"not a pair ({e})"
            if why is not None:
                errors.append(f"{train_file}:{item.line}: {why}")
                continue
            batch.append(json.dumps(item.data, ensure_ascii=False))
            if len(batch) == _BATCH:
                writer.write_batch(pa.record_batch([pa.array(batch, pa.large_string())], schema=schema))
                n += len(batch)
                batch = []
        if batch:
            writer.write_batch(pa.record_batch([pa.array(batch, pa.large_string())], schema=schema))
            n += len(batch)
    os.replace(tmp, out)
    return n


def make_transform(kind: str, media_root: str | None, budget: VisionBudget, family: str | None) -> Any:
    """The dataset transform: JSON records in, TRL rows out (media loaded and sized here)."""

    def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {"prompt": [], "images": []}
        cols.update({"completion": []} if kind == "sft" else {"label": [], "task": [], "pair_id": []})
        for raw in batch["record"]:
            rec = json.loads(raw)
            pair = PreferencePair.from_dict(rec["pair"])
            try:
                row = prompt_row(pair, media_root, budget, family)
            except MediaError as e:
                log.warning("leaving %s out of its batch: %s", pair.id, e)
                continue
            cols["prompt"].append(row["prompt"])
            cols["images"].append(row["images"])
            if kind == "sft":
                cols["completion"].append([{"role": "assistant", "content": [{"type": "text", "text": rec["completion"]}]}])
            else:
                cols["label"].append(pair.label_text)
                cols["task"].append(pair.task.value)
                cols["pair_id"].append(pair.id)  # the position_consistency reward finds a pair's other order by it
        if not cols["prompt"]:
            raise MediaError(f"every record of a batch failed to load its media ({[json.loads(r)['pair'].get('id') for r in batch['record']]})")
        return cols

    return transform


def lazy_dataset(
    train_file: str | os.PathLike[str],
    index_path: str | os.PathLike[str],
    kind: str,
    media_root: str | None,
    budget: VisionBudget,
    family: str | None = None,
    errors: list[str] | None = None,
    main_process_first: Any = None,
) -> Any:
    """A ``datasets.Dataset`` over ``train_file`` whose rows load their media on access.

    ``kind`` is ``"sft"`` (prompt/completion rows) or ``"grpo"`` (prompt/label rows; ties left out).
    ``main_process_first`` is a context manager factory (``TrainingArguments.main_process_first``):
    the main process writes the index, the others then read it."""
    from contextlib import nullcontext

    from datasets import Dataset

    if kind not in ("sft", "grpo"):
        raise ValueError("kind must be 'sft' or 'grpo'")
    errors = errors if errors is not None else []
    ctx = main_process_first(desc="indexing training records") if main_process_first else nullcontext()
    with ctx:
        if _is_main():
            build_index(train_file, index_path, kind, media_root, errors)
        ds = Dataset.from_file(str(index_path))
    return ds.with_transform(make_transform(kind, media_root, budget, family))


def _is_main() -> bool:
    return int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))) == 0
