"""Merges the rows of concurrent requests into shared ``generate`` calls, with cancellation.

One worker thread takes whatever is queued with the same sampling parameters (up to ``max_batch``
rows) and runs it through the backend in one call. A request whose client has gone is dropped from
the queue before it costs anything, and a running batch whose every request has gone (or a server
that is draining past its bound) stops at the next generated token. Every row answered "cancelled"
(withdrawn from the queue, failed at shutdown, or stopped or discarded mid-batch) counts once in
``unireward_cancelled_total``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from unireward.judge.backends import Backend, BatchingBackend, Generation, SamplingParams

log = logging.getLogger("unireward.serve")


class Cancelled(Exception):
    """The request was withdrawn (client disconnected or server draining) before it finished."""


@dataclass
class Scope:
    """The work of one HTTP request; cancelling it withdraws every row it queued."""

    cancelled: bool = False
    tickets: list[Ticket] = field(default_factory=list)


@dataclass(eq=False)
class Ticket:
    messages: list[dict[str, Any]]
    params: SamplingParams
    scope: Scope
    future: Future = field(default_factory=Future)


class Scheduler:
    def __init__(self, backend: Backend, max_batch: int = 16, max_wait_s: float = 0.005, metrics: Any = None):
        # the server does its own cross-request batching: unwrap a batching wrapper around the model
        self.backend = backend.inner if isinstance(backend, BatchingBackend) else backend
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.metrics = metrics
        self.batch_seconds = 1.0  # moving average, for Retry-After
        self._cv = threading.Condition()
        self._queue: deque[Ticket] = deque()
        self._running: list[Ticket] = []
        self._abort = False
        self._closed = False
        _install_stop_hook(self.backend, self._should_stop)
        self._worker = threading.Thread(target=self._loop, name="unireward-scheduler", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------ callers

    def submit(self, messages_list: list[list[dict[str, Any]]], params: SamplingParams, scope: Scope) -> list[Future]:
        tickets = [Ticket(m, params, scope) for m in messages_list]
        with self._cv:
            if scope.cancelled or self._closed:
                for t in tickets:
                    t.future.set_exception(Cancelled("request withdrawn"))
            else:
                scope.tickets.extend(tickets)
                self._queue.extend(tickets)
                self._cv.notify()
        return [t.future for t in tickets]

    def cancel(self, scope: Scope) -> None:
        """Withdraw a request: its queued rows leave the queue now; running rows stop if the batch allows."""
        with self._cv:
            scope.cancelled = True
            dropped = [t for t in self._queue if t.scope is scope]
            for t in dropped:
                self._queue.remove(t)
                t.future.set_exception(Cancelled("client disconnected"))
        if dropped and self.metrics is not None:
            self.metrics.cancel(len(dropped))

    def close(self, abort_running: bool = True) -> None:
        """Fail everything queued and stop the running batch (the end of a drain)."""
        with self._cv:
            self._closed = True
            self._abort = abort_running
            failed = len(self._queue)
            while self._queue:
                self._queue.popleft().future.set_exception(Cancelled("server shutting down"))
            self._cv.notify()
        if failed and self.metrics is not None:
            self.metrics.cancel(failed)

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        return len(self._running)

    def view(self, scope: Scope) -> Backend:
        """A backend whose calls go through this scheduler on behalf of ``scope`` (for a :class:`Judge`)."""
        return _ScopedBackend(self, scope)

    # ------------------------------------------------------------ worker

    def _should_stop(self) -> bool:
        running = self._running  # only this scheduler's own batch is ever stopped
        return bool(running) and (self._abort or all(t.scope.cancelled for t in running))

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed and not self._queue:
                    return
            time.sleep(self.max_wait_s)  # let concurrent callers join the batch
            with self._cv:
                if not self._queue:
                    continue
                params = self._queue[0].params
                take = [t for t in self._queue if t.params == params][: self.max_batch]
                for t in take:
                    self._queue.remove(t)
                self._running = take
            start = time.monotonic()
            try:
                outs: list[Generation | Exception] = self.backend.generate([t.messages for t in take], params)
            except Exception as e:  # one failed call answers its rows, the worker lives on
                log.exception("generate failed")
                outs = [e] * len(take)
            elapsed = time.monotonic() - start
            self.batch_seconds = 0.8 * self.batch_seconds + 0.2 * elapsed
            if self.metrics is not None:
                self.metrics.batch(len(take))
                for out in outs:
                    if isinstance(out, Generation):
                        self.metrics.tokens(out.prompt_tokens, sum(out.completion_tokens))
            with self._cv:
                self._running = []
            stopped = 0
            for t, out in zip(take, outs, strict=True):
                if self._abort:  # stopped part-way by a drain: not an answer
                    t.future.set_exception(Cancelled("server shutting down"))
                    stopped += 1
                elif t.scope.cancelled:
                    t.future.set_exception(Cancelled("client disconnected"))
                    stopped += 1
                else:
                    t.future.set_result(out)
            if stopped and self.metrics is not None:
                self.metrics.cancel(stopped)


class _ScopedBackend(Backend):
    def __init__(self, scheduler: Scheduler, scope: Scope):
        self.scheduler = scheduler
        self.scope = scope
        self.name = scheduler.backend.name
        self.budget = scheduler.backend.budget

    def generate(self, messages_list: list[list[dict[str, Any]]], params: SamplingParams) -> list[Generation | Exception]:
        futures = self.scheduler.submit(messages_list, params, self.scope)
        out: list[Generation | Exception] = []
        for f in futures:
            try:
                out.append(f.result())
            except Exception as e:
                out.append(e)
        return out


def _install_stop_hook(backend: Backend, should_stop: Any) -> None:
    """Let ``should_stop()`` end a running transformers ``generate`` at the next token."""
    model = getattr(backend, "model", None)
    if model is None or getattr(model, "_unireward_stop_hook", False):
        if model is not None:
            model._unireward_stop_checks.append(should_stop)
        return
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    checks = [should_stop]

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stop = any(check() for check in checks)
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    original = model.generate

    def generate(*args: Any, stopping_criteria: Any = None, **kwargs: Any) -> Any:
        crit = StoppingCriteriaList(list(stopping_criteria or []) + [_Stop()])
        return original(*args, stopping_criteria=crit, **kwargs)

    # The backend owns generate(); the server only adds a stop check to it.
    model.generate = generate
    model._unireward_stop_hook = True
    model._unireward_stop_checks = checks
