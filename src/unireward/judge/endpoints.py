"""Several OpenAI-compatible endpoints behind one client: least-in-flight dispatch, failover, health.

A fleet of independent servers (one ``vllm serve`` or ``unireward serve`` per GPU) is how dense
models scale past one engine. :class:`EndpointPool` has the interface of
:class:`~unireward.judge.openai_http.ChatClient` (``chat_many``, ``achat``, ``model``,
``base_url``), so the HTTP judge backend, distillation and the reward gateway use it unchanged:

- each request goes to the healthy endpoint with the fewest requests in flight (ties: the one
  used least), as verl's reward router does;
- a request that fails in a way worth retrying (connection error, timeout, 408/409/425/429, 5xx, a
  malformed answer) is retried on *another* endpoint at once, and after every endpoint has been
  tried, again after a backoff; other 4xx answers are final;
- an endpoint that refuses connections, or fails ``fail_threshold`` requests in a row, is taken
  out; a background check (``GET {base_url}/models`` every ``health_interval`` seconds) takes out
  endpoints that stop answering and puts back those that answer again. With every endpoint out,
  requests still go to the one that failed longest ago, so a fleet restart does not fail a job.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from unireward.judge.openai_http import (
    ChatClient,
    ChatError,
    ChatResponse,
    backoff_delay,
    gather_chats,
    run_sync,
)

log = logging.getLogger(__name__)


def normalize_urls(urls: str | Sequence[str]) -> list[str]:
    """Base URLs from one URL, several, or a comma-separated list; trailing slashes dropped, repeats refused.

    >>> normalize_urls("http://a:8000/v1/, http://b:8000/v1")
    ['http://a:8000/v1', 'http://b:8000/v1']
    >>> normalize_urls(["http://a/v1", "http://a/v1/"])
    Traceback (most recent call last):
    ...
    ValueError: endpoint http://a/v1 is given twice
    """
    items = [urls] if isinstance(urls, str) else list(urls)
    out: list[str] = []
    for item in items:
        for url in str(item).split(","):
            url = url.strip().rstrip("/")
            if not url:
                continue
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint {url!r} must start with http:// or https://")
            if url in out:
                raise ValueError(f"endpoint {url} is given twice")
            out.append(url)
    if not out:
        raise ValueError("give at least one endpoint URL")
    return out


@dataclass
class Endpoint:
    """One server of the pool and what it has done."""

    url: str
    client: ChatClient
    in_flight: int = 0
    requests: int = 0  #: attempts sent here
    ok: int = 0
    failed: int = 0
    #: requests that failed here and were sent on to another endpoint
    rerouted: int = 0
    healthy: bool = True
    consecutive_failures: int = 0
    last_error: str | None = None
    down_since: float | None = None
    taken_out: int = 0
    put_back: int = 0

    def summary(self) -> dict[str, Any]:
        return {"url": self.url, "healthy": self.healthy, "requests": self.requests, "ok": self.ok,
                "failed": self.failed, "rerouted": self.rerouted, "in_flight": self.in_flight,
                "taken_out": self.taken_out, "put_back": self.put_back, "last_error": self.last_error}  # fmt: skip


def pick(endpoints: Sequence[Endpoint], exclude: set[str] = frozenset()) -> Endpoint:  # type: ignore[assignment]
    """The endpoint for the next request: healthy and not yet tried by it, fewest in flight, then
    fewest sent; with none healthy, the one that went down longest ago.

    >>> a, b = Endpoint("a", None, in_flight=2), Endpoint("b", None, in_flight=1)  # type: ignore[arg-type]
    >>> pick([a, b]).url, pick([a, b], exclude={"b"}).url
    ('b', 'a')
    >>> b.healthy = False; b.down_since = 5.0
    >>> pick([a, b]).url
    'a'
    >>> a.healthy = False; a.down_since = 9.0
    >>> pick([a, b]).url
    'b'
    """
    fresh = [e for e in endpoints if e.url not in exclude] or list(endpoints)
    healthy = [e for e in fresh if e.healthy]
    if healthy:
        return min(healthy, key=lambda e: (e.in_flight, e.requests))
    return min(fresh, key=lambda e: (e.down_since or 0.0, e.in_flight))


class EndpointPool:
    """A :class:`ChatClient` look-alike over several base URLs (see the module docstring).

    ``concurrency`` is per endpoint: two servers take twice the requests in flight.
    ``max_retries`` counts attempts after the first, across endpoints.
    """

    def __init__(
        self,
        base_urls: str | Sequence[str],
        model: str,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        health_interval: float = 5.0,
        fail_threshold: int = 3,
    ):
        urls = normalize_urls(base_urls)
        if max_retries < 0 or health_interval <= 0 or fail_threshold < 1:
            raise ValueError("max_retries must be >= 0, health_interval > 0 and fail_threshold >= 1")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.health_interval = health_interval
        self.fail_threshold = fail_threshold
        self.concurrency = concurrency
        # each endpoint's own client does no retries: the pool decides where a retry goes
        self.endpoints = [
            Endpoint(u, ChatClient(u, model, api_key=api_key, concurrency=concurrency, timeout=timeout, max_retries=0,
                                   backoff=backoff))  # fmt: skip
            for u in urls
        ]
        self.base_url = ",".join(urls)
        self._lock = threading.Lock()
        # endpoints are chosen when a request can start, not when it is queued: a pool-wide slot first
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
        self._stop = threading.Event()
        self._checker: threading.Thread | None = None

    # ------------------------------------------------------------ health

    def _take_out(self, ep: Endpoint, why: str) -> None:
        if ep.healthy:
            ep.healthy = False
            ep.down_since = time.monotonic()
            ep.taken_out += 1
            log.warning("endpoint %s taken out: %s", ep.url, why)

    def _put_back(self, ep: Endpoint) -> None:
        if not ep.healthy:
            ep.healthy = True
            ep.down_since = None
            ep.consecutive_failures = 0
            ep.put_back += 1
            log.warning("endpoint %s put back", ep.url)

    def probe(self, ep: Endpoint) -> bool:
        """One health check: ``GET {url}/models`` answers 200 within the health interval."""
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            r = httpx.get(ep.url + "/models", headers=headers, timeout=min(10.0, self.health_interval * 2))
            ok, why = r.status_code == 200, f"health check answered HTTP {r.status_code}"
        except httpx.HTTPError as e:
            ok, why = False, f"health check failed ({type(e).__name__})"
        with self._lock:
            if ok:
                self._put_back(ep)
            else:
                ep.last_error = why
                self._take_out(ep, why)
        return ok

    def check_health(self) -> list[bool]:
        """Probe every endpoint now (the background check does this every ``health_interval`` s)."""
        return [self.probe(ep) for ep in self.endpoints]

    def start_health_checks(self) -> None:
        """Start the background check now (requests start it anyway)."""
        self._ensure_checker()

    def _ensure_checker(self) -> None:
        if self._checker is None or not self._checker.is_alive():
            with self._lock:
                if self._checker is None or not self._checker.is_alive():
                    self._stop.clear()
                    self._checker = threading.Thread(target=self._check_loop, name="unireward-health", daemon=True)
                    self._checker.start()

    def _check_loop(self) -> None:
        while not self._stop.wait(self.health_interval):
            for ep in self.endpoints:
                if self._stop.is_set():
                    return
                self.probe(ep)

    def close(self) -> None:
        """Stop the background health check."""
        self._stop.set()

    # ------------------------------------------------------------ requests

    async def achat(self, messages: list[dict[str, Any]], **gen: Any) -> ChatResponse:
        self._ensure_checker()
        name = gen.pop("request_name", "request")
        loop = asyncio.get_running_loop()
        if loop not in self._slots:
            self._slots[loop] = asyncio.Semaphore(self.concurrency * len(self.endpoints))
        async with self._slots[loop]:
            return await self._attempts(messages, name, gen)

    async def _attempts(self, messages: list[dict[str, Any]], name: str, gen: dict[str, Any]) -> ChatResponse:
        tried: set[str] = set()
        errors: list[str] = []
        for attempt in range(self.max_retries + 1):
            with self._lock:
                ep = pick(self.endpoints, tried)
                ep.in_flight += 1
                ep.requests += 1
            tried.add(ep.url)
            try:
                resp = await ep.client.achat(messages, request_name=name, **dict(gen))
            except ChatError as e:
                retryable = e.status is None or e.status in (408, 409, 425, 429) or e.status >= 500
                with self._lock:
                    ep.in_flight -= 1
                    ep.last_error = str(e)
                    if not retryable or attempt >= self.max_retries:
                        ep.failed += 1
                    else:
                        ep.rerouted += 1
                    if e.status != 429:  # a busy server is not a broken one
                        ep.consecutive_failures += 1
                        refused = e.status is None and "Connection" in str(e)
                        if refused or ep.consecutive_failures >= self.fail_threshold:
                            self._take_out(ep, str(e))
                errors.append(f"{ep.url}: {e}")
                if not retryable or attempt >= self.max_retries:
                    raise ChatError(f"{name}: failed on {len(tried)} endpoint(s) after {attempt + 1} attempts: "
                                    + " | ".join(errors[-3:]), status=e.status, attempts=attempt + 1) from None  # fmt: skip
                if len(tried) >= len(self.endpoints):  # every endpoint tried once: back off, then start over
                    await asyncio.sleep(backoff_delay(attempt, self.backoff))
                    tried = set()
                continue
            except BaseException:
                with self._lock:
                    ep.in_flight -= 1
                raise
            with self._lock:
                ep.in_flight -= 1
                ep.ok += 1
                ep.consecutive_failures = 0
            return resp
        raise AssertionError("unreachable")

    async def achat_many(self, batch: list[list[dict[str, Any]]], **gen: Any) -> list[ChatResponse | ChatError]:
        return await gather_chats(self.achat, batch, **gen)

    def chat_many(self, batch: list[list[dict[str, Any]]], **gen: Any) -> list[ChatResponse | ChatError]:
        """Run ``batch`` across the endpoints; results in input order, a failed item as a :class:`ChatError`."""

        async def run() -> list[ChatResponse | ChatError]:
            try:
                return await self.achat_many(batch, **gen)
            finally:  # the loop dies with asyncio.run: close each endpoint's connections of this loop
                loop = asyncio.get_running_loop()
                for ep in self.endpoints:
                    entry = ep.client._per_loop.pop(loop, None)
                    if entry is not None:
                        await entry[0].close()

        return run_sync(run())

    def summary(self) -> list[dict[str, Any]]:
        """Per-endpoint counts, for run summaries, ``/health`` and ``/metrics``."""
        with self._lock:
            return [ep.summary() for ep in self.endpoints]


def make_client(base_urls: str | Sequence[str], model: str, **kwargs: Any) -> ChatClient | EndpointPool:
    """A plain :class:`ChatClient` for one URL, an :class:`EndpointPool` for several."""
    urls = normalize_urls(base_urls)
    if len(urls) == 1:
        kwargs = {k: v for k, v in kwargs.items() if k not in ("health_interval", "fail_threshold")}
        return ChatClient(urls[0], model, **kwargs)
    return EndpointPool(urls, model, **kwargs)


def endpoint_summary(client: Any) -> list[dict[str, Any]] | None:
    """Per-endpoint counts of a client (an :class:`EndpointPool`, or anything with a backend holding one)."""
    for obj in (client, getattr(client, "client", None), getattr(getattr(client, "backend", None), "client", None)):
        if isinstance(obj, EndpointPool):
            return obj.summary()
    return None
