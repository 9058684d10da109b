"""Prometheus text-format metrics for ``GET /metrics`` (no client library needed)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    """Counters, gauges read on demand, and the batch-size histogram."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = defaultdict(int)  # (route, status)
        self.rejections: dict[str, int] = defaultdict(int)  # reason
        self.batch_sizes: dict[int, int] = defaultdict(int)  # bucket upper bound -> count
        self.batch_sum = 0
        self.batch_count = 0
        self.generated_tokens = 0
        self.prompt_tokens = 0
        self.cancelled = 0
        self.gauges: dict[str, Callable[[], float]] = {}
        #: counters kept elsewhere (the backend's vision encodings, the media cache's hits), read on demand
        self.counters: dict[str, Callable[[], float]] = {}

    def request(self, route: str, status: int) -> None:
        with self._lock:
            self.requests[(route, str(status))] += 1

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejections[reason] += 1

    def batch(self, size: int) -> None:
        with self._lock:
            self.batch_sum += size
            self.batch_count += 1
            for b in _BATCH_BUCKETS:
                if size <= b:
                    self.batch_sizes[b] += 1

    def tokens(self, prompt: int, generated: int) -> None:
        with self._lock:
            self.prompt_tokens += prompt
            self.generated_tokens += generated

    def cancel(self, n: int = 1) -> None:
        with self._lock:
            self.cancelled += n

    def render(self) -> str:
        """The exposition text.

        >>> m = Metrics(); m.batch(3); m.reject("queue_full"); m.gauges["queue_depth"] = lambda: 2
        >>> text = m.render()
        >>> 'unireward_rejections_total{reason="queue_full"} 1' in text, "unireward_queue_depth 2" in text
        (True, True)
        >>> 'unireward_batch_size_bucket{le="4"} 1' in text
        True
        >>> m.counters["media_cache_hits_total"] = lambda: 5
        >>> "unireward_media_cache_hits_total 5" in m.render()
        True
        """
        p = "unireward_"
        out: list[str] = []
        with self._lock:
            out += [f"# TYPE {p}requests_total counter"]
            out += [f'{p}requests_total{{route="{r}",status="{s}"}} {n}' for (r, s), n in sorted(self.requests.items())]
            out += [f"# TYPE {p}rejections_total counter"]
            out += [f'{p}rejections_total{{reason="{r}"}} {n}' for r, n in sorted(self.rejections.items())]
            out += [f"# TYPE {p}batch_size histogram"]
            out += [f'{p}batch_size_bucket{{le="{b}"}} {self.batch_sizes.get(b, 0)}' for b in _BATCH_BUCKETS]
            out += [f'{p}batch_size_bucket{{le="+Inf"}} {self.batch_count}',
                    f"{p}batch_size_sum {self.batch_sum}", f"{p}batch_size_count {self.batch_count}"]  # fmt: skip
            for name, value in (("generated_tokens_total", self.generated_tokens),
                                ("prompt_tokens_total", self.prompt_tokens), ("cancelled_total", self.cancelled)):  # fmt: skip
                out += [f"# TYPE {p}{name} counter", f"{p}{name} {value}"]
        for name, read in sorted(self.counters.items()):
            out += [f"# TYPE {p}{name} counter", f"{p}{name} {read():g}"]
        for name, read in sorted(self.gauges.items()):
            out += [f"# TYPE {p}{name} gauge", f"{p}{name} {read():g}"]
        return "\n".join(out) + "\n"
