"""A group's work on ``/v1/rewards`` is bounded and withdrawn with its client, against a real tiny-model
server on 127.0.0.1.

Regression: 1,000 text candidates with ``both_orders`` (999,000 pairs) were accepted and kept the CPU
busy (RSS 1.9 -> 6.6 GB) after the client left while the gauges read 0; 64 candidates (2,016 pairs)
got no answer in 60 s.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from serve_util import data_url, running

from unireward.judge import Judge, JudgeOptions, TransformersBackend
from unireward.serve import ServerLimits, create_app
from unireward.serve.protocol import RewardsResponse

BATCH = 4
LIMITS = ServerLimits(max_new_tokens=4000, max_queue=12, max_group_pairs=30)  # 16 generations admitted at once


@pytest.fixture(scope="module")
def backend(tiny_model: Path) -> TransformersBackend:
    b = TransformersBackend.load(str(tiny_model))
    b.model.generation_config.min_new_tokens = 4000  # every answer runs to max_tokens: rows stay busy
    return b


@pytest.fixture(scope="module")
def url(backend: TransformersBackend) -> Iterator[str]:
    app = create_app(Judge(backend, JudgeOptions(max_new_tokens=8)), LIMITS, model_name="g", batch_size=BATCH)
    with running(app) as u:
        yield u


def _group(n: int, **kw: object) -> dict:
    ref = data_url(Image.new("RGB", (56, 56), "red"))
    return {"task": "image_understanding", "prompt": "what colour is it?", "reference": ref,
            "candidates": [f"answer {i}" for i in range(n)], **kw}  # fmt: skip


def _metrics(url: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("unireward_") and "{" not in line:
            name, value = line.split()
            out[name.removeprefix("unireward_")] = float(value)
    return out


def _until(url: str, check, timeout: float = 60.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        m = _metrics(url)
        if check(m):
            return m
        assert time.monotonic() < deadline, m
        time.sleep(0.05)


def _error(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert {"message", "type", "code"} <= set(err)
    for w in words:
        assert w in err["message"], (w, err["message"])


def test_a_group_above_the_pair_limit_is_a_413_naming_it(url: str) -> None:
    for n, both, pairs in ((1000, True, 999_000), (64, False, 2016)):
        r = httpx.post(url + "/v1/rewards", json=_group(n, both_orders=both, max_tokens=2), timeout=30)
        _error(r, 413, f"{pairs} pairs", "--max-group-pairs")
    # within the pair limit but more than the server admits at once (12 queued + a batch of 4): never fits
    _error(httpx.post(url + "/v1/rewards", json=_group(8, max_tokens=2), timeout=30), 413, "28 generations", "--max-queue")
    # the old spelling of both_orders counts the same
    _error(httpx.post(url + "/v1/rewards", json=_group(8, swap=True), timeout=30), 413, "56 pairs (both orders)")
    m = _metrics(url)
    assert m["admitted_rows"] == 0 and m["queue_depth"] == 0 and m["batch_size_count"] == 0  # nothing ran


def test_a_groups_pairs_count_against_the_queue_and_leave_with_its_client(url: str, backend: TransformersBackend) -> None:
    """A group of 5 (10 pairs) holds 10 of the 16 places: a second such group gets 429 while it runs.
    When its client leaves, its queued pairs are withdrawn, its running batch stops at the next token,
    and every gauge returns to 0 only once the work has stopped."""
    body = json.dumps(_group(5, max_tokens=4000)).encode()
    host, port = url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)))
    client.sendall(b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip
    m = _until(url, lambda m: m["running_requests"] == BATCH)
    assert m["admitted_rows"] == 10 and m["active_requests"] == 1 and m["queue_depth"] == 10 - BATCH
    r = httpx.post(url + "/v1/rewards", json=_group(5, max_tokens=2), timeout=30)
    _error(r, 429, "queue is full", "--max-queue")
    assert int(r.headers["retry-after"]) >= 1
    before = _metrics(url)
    client.close()
    m = _until(url, lambda m: m["admitted_rows"] == 0)
    assert m["queue_depth"] == 0 and m["running_requests"] == 0 and m["active_requests"] == 0
    assert m["cancelled_total"] - before["cancelled_total"] == 10  # 6 withdrawn from the queue + 4 stopped mid-batch
    assert m["generated_tokens_total"] < BATCH * 4000  # the running batch did not run to its end
    # the server is free again: a small group is answered, in the wire schema the client reads
    r = httpx.post(url + "/v1/rewards", json=_group(3, max_tokens=2, min_tokens=0), timeout=120)
    assert r.status_code == 200, r.text
    out = RewardsResponse.model_validate(r.json())
    assert len(out.rewards) == 3 and len(out.judgments) == 3
