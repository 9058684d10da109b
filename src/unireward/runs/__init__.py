"""Resumable runs: row files (:mod:`~unireward.runs.rows`), the manifest that says which settings
made an output (:mod:`~unireward.runs.manifest`), and the one job loop that plans, skips what is
done, runs the rest chunk by chunk and says what failed (:mod:`~unireward.runs.job`)."""

from unireward.runs.job import Chunk, ChunkRunner, Emit, Item, Job, JobResult, JobSpec, LocalRunner

__all__ = ["Chunk", "ChunkRunner", "Emit", "Item", "Job", "JobResult", "JobSpec", "LocalRunner"]
